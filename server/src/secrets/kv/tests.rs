use crate::clock::UnixTime;
use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::barrier::Barrier;
use crate::crypto::random_array;
use crate::logical::{Operation, ResponseBody};
use crate::storage::{MigrationMode, Storage};

const SEC: i128 = 1_000_000_000;

async fn view() -> View {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(storage));
    barrier
        .initialize(&random_array::<32>().unwrap(), UnixTime::from_nanos(0))
        .await
        .unwrap();
    View::new(barrier, "logical/test/")
}

fn req(op: Operation, data: Value, after: Option<&str>, limit: Option<u32>) -> Request {
    Request {
        id: "t".into(),
        operation: op,
        path: String::new(),
        data: data.as_object().cloned().unwrap_or_default(),
        content_type: None,
        client_token: None,
        list_after: after.map(str::to_owned),
        list_limit: limit,
        mfa_header: None,
        connection: Default::default(),
        unauthenticated_metrics: false,
    }
}

fn data_of(r: &Response) -> Value {
    match &r.body {
        ResponseBody::Envelope { data: Some(d), .. } => d.clone(),
        other => panic!("{other:?}"),
    }
}

async fn put(v: &View, path: &str, data: Value, now: UnixTime) -> Result<Response, LogicalError> {
    handle(
        v,
        &req(Operation::Update, json!({ "data": data }), None, None),
        &format!("data/{path}"),
        now,
    )
    .await
}

#[tokio::test]
async fn delete_version_after_hides_versions_once_due() {
    let v = view().await;
    handle(
        &v,
        &req(
            Operation::Update,
            json!({"delete_version_after": "10s"}),
            None,
            None,
        ),
        "config",
        UnixTime::from_nanos(0),
    )
    .await
    .unwrap();
    put(&v, "a", json!({"k": 1}), UnixTime::from_nanos(100 * SEC))
        .await
        .unwrap();
    let read = |now| {
        let v = v.clone();
        async move {
            handle(
                &v,
                &req(Operation::Read, json!({}), None, None),
                "data/a",
                now,
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(read(UnixTime::from_nanos(105 * SEC)).await.status, 200);
    let late = read(UnixTime::from_nanos(111 * SEC)).await;
    assert_eq!(late.status, 404);
    assert_eq!(data_of(&late)["data"], Value::Null);
}

#[tokio::test]
async fn cas_zero_means_must_not_exist() {
    let v = view().await;
    let write = |cas: u64| {
        req(
            Operation::Update,
            json!({"data": {"x": 1}, "options": {"cas": cas}}),
            None,
            None,
        )
    };
    handle(&v, &write(0), "data/new", UnixTime::from_nanos(1))
        .await
        .unwrap();
    let again = handle(&v, &write(0), "data/new", UnixTime::from_nanos(2)).await;
    assert!(matches!(again, Err(LogicalError::InvalidRequest(_))));
}

#[tokio::test]
async fn listing_skips_large_subfolders_and_paginates() {
    let v = view().await;
    for i in 0..600 {
        put(
            &v,
            &format!("big/{i:04}"),
            json!({"i": i}),
            UnixTime::from_nanos(1),
        )
        .await
        .unwrap();
    }
    for name in ["a", "c", "d/x"] {
        put(&v, name, json!({}), UnixTime::from_nanos(1))
            .await
            .unwrap();
    }
    let list = |after: Option<&'static str>, limit: Option<u32>| {
        let v = v.clone();
        async move {
            let r = handle(
                &v,
                &req(Operation::List, json!({}), after, limit),
                "metadata/",
                UnixTime::from_nanos(1),
            )
            .await
            .unwrap();
            data_of(&r)["keys"].clone()
        }
    };
    assert_eq!(list(None, None).await, json!(["a", "big/", "c", "d/"]));
    assert_eq!(list(Some("big/"), Some(1)).await, json!(["c"]));
    assert_eq!(list(Some("a"), Some(2)).await, json!(["big/", "c"]));
}

#[tokio::test]
async fn bad_paths_and_bodies_are_refused() {
    let v = view().await;
    assert!(matches!(
        put(&v, "../etc", json!({}), UnixTime::from_nanos(1)).await,
        Err(LogicalError::InvalidRequest(_))
    ));
    assert!(matches!(
        put(&v, "x/../y", json!({}), UnixTime::from_nanos(1)).await,
        Err(LogicalError::InvalidRequest(_))
    ));
    let no_data = handle(
        &v,
        &req(Operation::Update, json!({"other": 1}), None, None),
        "data/x",
        UnixTime::from_nanos(1),
    )
    .await;
    assert!(matches!(no_data, Err(LogicalError::InvalidRequest(m)) if m == "no data provided"));
    let unknown = handle(
        &v,
        &req(Operation::Read, json!({}), None, None),
        "nope/x",
        UnixTime::from_nanos(1),
    )
    .await;
    assert!(matches!(unknown, Err(LogicalError::NotFound)));
}
