//! Single-use and counted values under concurrency, on both backends: requests
//! are released together by a barrier, and exactly one (or exactly N) may win.

use std::sync::Arc;

use coffer_tests::totp::{code, enrol, mfa_requirement, seconds_left_in_step};
use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};

const PW: &str = "correct horse battery staple";
/// What an admin sets at creation; enrolment replaces it with [`PW`].
const ADMIN_PW: &str = "admin-chosen first password";
const CONTENDERS: usize = 24;

/// Sends `CONTENDERS` requests built by `make`, all released at once.
async fn race(
    s: &Arc<TestServer>,
    make: impl Fn(usize) -> (String, String, Option<String>, Option<Value>),
) -> Vec<(u16, Value)> {
    let start = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
    let mut tasks = Vec::new();
    for i in 0..CONTENDERS {
        let (method, path, token, body) = make(i);
        let (s, start) = (s.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            s.call(&method, &path, token.as_deref(), body).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn tokens_issued(answers: &[(u16, Value)]) -> usize {
    answers
        .iter()
        .filter(|(st, body)| {
            *st == 200
                && body["auth"]["client_token"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
        })
        .count()
}

/// A server with userpass, a generous lockout and rate limit (so that only the
/// property under test decides), and an enrolled user.
async fn with_user(
    backend: Backend,
    user: &str,
) -> Option<(Arc<TestServer>, String, Vec<u8>, Vec<String>, Vec<String>)> {
    let s = TestServer::start(backend).await?;
    let (keys, root) = s.ready().await;
    let r = Some(root.as_str());
    let (st, body) = s
        .call(
            "POST",
            "sys/auth/userpass",
            r,
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/config",
            r,
            Some(json!({"lockout_threshold": 1000, "login_rate_per_minute": 100000})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = s
        .call(
            "POST",
            &format!("auth/userpass/users/{user}"),
            r,
            Some(json!({"password": ADMIN_PW})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let enrolled = enrol(&s, &root, user, ADMIN_PW, PW).await;
    Some((Arc::new(s), root, enrolled.secret, enrolled.recovery, keys))
}

async fn set_lockout_threshold(s: &TestServer, root: &str, threshold: u64) {
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/config",
            Some(root),
            Some(json!({ "lockout_threshold": threshold })),
        )
        .await;
    assert_eq!(st, 204, "{body}");
}

/// How many answers carry `text` in their errors.
fn answers_saying(answers: &[(u16, Value)], text: &str) -> usize {
    answers
        .iter()
        .filter(|(_, b)| b.to_string().contains(text))
        .count()
}

/// Codes of this test stay inside one 30-second step.
async fn fresh_step() {
    if seconds_left_in_step() < 15 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
}

async fn one_totp_code_gives_one_token(backend: Backend) {
    let Some((s, _, secret, _, _)) = with_user(backend, "alice").await else {
        return;
    };
    fresh_step().await;
    let current = code(&secret, 0);
    let answers = race(&s, |_| {
        (
            "POST".into(),
            "auth/userpass/login/alice".into(),
            None,
            Some(json!({"password": PW, "totp": current})),
        )
    })
    .await;
    assert_eq!(tokens_issued(&answers), 1, "{answers:?}");
    // The losers were told the code is spent, not that it was wrong (or, on a
    // loaded machine, that the bounded password-hashing pool was full: 503).
    let replays = answers
        .iter()
        .filter(|(st, b)| *st == 403 && b.to_string().contains("already been used"))
        .count();
    let busy = answers.iter().filter(|(st, _)| *st == 503).count();
    assert_eq!(replays + busy, CONTENDERS - 1, "{answers:?}");
}

async fn one_recovery_code_gives_one_token(backend: Backend) {
    let Some((s, root, _, recovery, _)) = with_user(backend, "bob").await else {
        return;
    };
    let spent = recovery[0].clone();
    let answers = race(&s, |_| {
        (
            "POST".into(),
            "auth/userpass/login/bob".into(),
            None,
            Some(json!({"password": PW, "totp": spent})),
        )
    })
    .await;
    assert_eq!(tokens_issued(&answers), 1, "{answers:?}");
    let (_, user) = s
        .call("GET", "auth/userpass/users/bob", Some(&root), None)
        .await;
    assert_eq!(user["data"]["recovery_codes_left"], 9, "{user}");
}

async fn one_mfa_request_gives_one_token(backend: Backend) {
    let Some((s, _, secret, recovery, _)) = with_user(backend, "carol").await else {
        return;
    };
    fresh_step().await;
    let (st, first) = s
        .call(
            "POST",
            "auth/userpass/login/carol",
            None,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(st, 200, "{first}");
    let (request_id, method_id) = mfa_requirement(&first);
    // Every contender holds a credential that would be accepted on its own, so
    // only the single use of the request id can stop the rest.
    let mut credentials = recovery.clone();
    credentials.push(code(&secret, 0));
    let answers = race(&s, |i| {
        let credential = credentials[i % credentials.len()].clone();
        (
            "POST".into(),
            "sys/mfa/validate".into(),
            None,
            Some(json!({
                "mfa_request_id": request_id,
                "mfa_payload": { method_id.clone(): [credential] }
            })),
        )
    })
    .await;
    assert_eq!(tokens_issued(&answers), 1, "{answers:?}");
}

async fn concurrent_wrong_codes_get_only_the_lockout_budget(backend: Backend) {
    let Some((s, root, secret, _, _)) = with_user(backend, "dave").await else {
        return;
    };
    set_lockout_threshold(&s, &root, 5).await;
    fresh_step().await;
    // A code that is certainly wrong now: far from the current step.
    let wrong = code(&secret, 1000);
    let answers = race(&s, |_| {
        (
            "POST".into(),
            "auth/userpass/login/dave".into(),
            None,
            Some(json!({"password": PW, "totp": wrong})),
        )
    })
    .await;
    let evaluated = answers_saying(&answers, "invalid username, password or code");
    let locked = answers_saying(&answers, "locked out");
    assert_eq!(evaluated, 5, "{answers:?}");
    assert_eq!(locked, CONTENDERS - 5, "{answers:?}");
    // Locked now, even with the right code.
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/login/dave",
            None,
            Some(json!({"password": PW, "totp": code(&secret, 0)})),
        )
        .await;
    assert_eq!(st, 403, "{body}");
    assert!(body.to_string().contains("locked out"), "{body}");
}

async fn a_use_limited_token_is_used_exactly_n_times(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let s = Arc::new(s);
    for uses in [1u64, 3] {
        let (st, created) = s
            .call(
                "POST",
                "auth/token/create",
                Some(&root),
                Some(json!({"policies": ["default"], "num_uses": uses})),
            )
            .await;
        assert_eq!(st, 200, "{created}");
        let token = created["auth"]["client_token"].as_str().unwrap().to_owned();
        let answers = race(&s, |_| {
            (
                "GET".into(),
                "auth/token/lookup-self".into(),
                Some(token.clone()),
                None,
            )
        })
        .await;
        let served = answers.iter().filter(|(st, _)| *st == 200).count();
        assert_eq!(served as u64, uses, "{answers:?}");
        assert!(
            answers.iter().all(|(st, _)| *st == 200 || *st == 403),
            "{answers:?}"
        );
    }
}

/// Replacing a factor checks the password too: concurrent wrong passwords on
/// the enrolment path get no more evaluations than the lockout allows.
async fn concurrent_wrong_passwords_on_enrolment_get_only_the_lockout_budget(backend: Backend) {
    let Some((s, root, secret, _, _)) = with_user(backend, "gina").await else {
        return;
    };
    set_lockout_threshold(&s, &root, 5).await;
    let current = code(&secret, 0);
    let answers = race(&s, |i| {
        (
            "POST".into(),
            "auth/userpass/totp/enroll/gina".into(),
            None,
            Some(json!({"password": format!("wrong password number {i}"), "code": current})),
        )
    })
    .await;
    let evaluated = answers_saying(&answers, "invalid username, password or code");
    let locked = answers_saying(&answers, "locked out");
    assert_eq!(evaluated, 5, "{answers:?}");
    assert_eq!(locked, CONTENDERS - 5, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_on_enrolment_get_only_the_lockout_budget_sqlite() {
    concurrent_wrong_passwords_on_enrolment_get_only_the_lockout_budget(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_on_enrolment_get_only_the_lockout_budget_postgres() {
    concurrent_wrong_passwords_on_enrolment_get_only_the_lockout_budget(Backend::Postgres).await;
}

/// The code that confirmed an enrolment is spent: logging in with it says so,
/// and (not being a guess) it does not count toward the lockout.
async fn the_confirming_code_is_spent_but_not_a_failure(backend: Backend) {
    fresh_step().await;
    let Some((s, root, secret, _, _)) = with_user(backend, "erin").await else {
        return;
    };
    // The harness confirmed with the previous step's code.
    let confirming = code(&secret, -1);
    set_lockout_threshold(&s, &root, 1).await;
    let login = |totp: String| {
        let s = s.clone();
        async move {
            s.call(
                "POST",
                "auth/userpass/login/erin",
                None,
                Some(json!({"password": PW, "totp": totp})),
            )
            .await
        }
    };
    let (st, body) = login(confirming).await;
    assert_eq!(st, 403, "{body}");
    assert!(
        body.to_string()
            .contains("already been used; wait for the next one"),
        "{body}"
    );
    // With a lockout of one failure, a counted replay would have locked erin out.
    let (st, body) = login(code(&secret, 0)).await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_confirming_code_is_spent_but_not_a_failure_sqlite() {
    the_confirming_code_is_spent_but_not_a_failure(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_confirming_code_is_spent_but_not_a_failure_postgres() {
    the_confirming_code_is_spent_but_not_a_failure(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_totp_code_gives_one_token_sqlite() {
    one_totp_code_gives_one_token(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_totp_code_gives_one_token_postgres() {
    one_totp_code_gives_one_token(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_recovery_code_gives_one_token_sqlite() {
    one_recovery_code_gives_one_token(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_recovery_code_gives_one_token_postgres() {
    one_recovery_code_gives_one_token(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_mfa_request_gives_one_token_sqlite() {
    one_mfa_request_gives_one_token(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_mfa_request_gives_one_token_postgres() {
    one_mfa_request_gives_one_token(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_get_only_the_lockout_budget_sqlite() {
    concurrent_wrong_codes_get_only_the_lockout_budget(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_get_only_the_lockout_budget_postgres() {
    concurrent_wrong_codes_get_only_the_lockout_budget(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_use_limited_token_is_used_exactly_n_times_sqlite() {
    a_use_limited_token_is_used_exactly_n_times(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_use_limited_token_is_used_exactly_n_times_postgres() {
    a_use_limited_token_is_used_exactly_n_times(Backend::Postgres).await;
}

/// Two `cofferd` nodes on one PostgreSQL: the guarantees hold across processes,
/// because they come from conditional writes in storage, not from locks in one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_use_holds_across_two_nodes_on_one_postgres() {
    let Some((first, root, secret, _, keys)) = with_user(Backend::Postgres, "frank").await else {
        return;
    };
    let second = first.second_node();
    second.unseal(&keys).await;
    let nodes = [first.clone(), Arc::new(second)];
    let on_nodes = |make: &dyn Fn(usize) -> (String, String, Option<String>, Option<Value>)| {
        let start = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
        let mut tasks = Vec::new();
        for i in 0..CONTENDERS {
            let (method, path, token, body) = make(i);
            let (node, start) = (nodes[i % 2].clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                node.call(&method, &path, token.as_deref(), body).await
            }));
        }
        tasks
    };
    async fn collect(tasks: Vec<tokio::task::JoinHandle<(u16, Value)>>) -> Vec<(u16, Value)> {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    // One TOTP code, half the logins on each node: one token.
    fresh_step().await;
    let current = code(&secret, 0);
    let answers = collect(on_nodes(&|_| {
        (
            "POST".into(),
            "auth/userpass/login/frank".into(),
            None,
            Some(json!({"password": PW, "totp": current})),
        )
    }))
    .await;
    assert_eq!(tokens_issued(&answers), 1, "{answers:?}");

    // A one-use token, used on both nodes at once: one request served.
    let (_, created) = first
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"policies": ["default"], "num_uses": 1})),
        )
        .await;
    let token = created["auth"]["client_token"].as_str().unwrap().to_owned();
    let answers = collect(on_nodes(&|_| {
        (
            "GET".into(),
            "auth/token/lookup-self".into(),
            Some(token.clone()),
            None,
        )
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|(st, _)| *st == 200).count(),
        1,
        "{answers:?}"
    );

    // KV v2: a check-and-set write has one winner, and unconditional writes lose
    // no version, whichever node they reach.
    let (st, _) = first
        .call(
            "POST",
            "secret/data/shared",
            Some(&root),
            Some(json!({"data": {"n": "0"}})),
        )
        .await;
    assert_eq!(st, 200);
    let root_ref = root.clone();
    let answers = collect(on_nodes(&|i| {
        (
            "POST".into(),
            "secret/data/shared".into(),
            Some(root_ref.clone()),
            Some(json!({"options": {"cas": 1}, "data": {"n": i.to_string()}})),
        )
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|(st, _)| *st == 200).count(),
        1,
        "{answers:?}"
    );
    let answers = collect(on_nodes(&|i| {
        (
            "POST".into(),
            "secret/data/shared".into(),
            Some(root_ref.clone()),
            Some(json!({"data": {"n": i.to_string()}})),
        )
    }))
    .await;
    assert!(answers.iter().all(|(st, _)| *st == 200), "{answers:?}");
    let mut versions: Vec<u64> = answers
        .iter()
        .map(|(_, b)| b["data"]["version"].as_u64().unwrap())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(
        versions.len(),
        CONTENDERS,
        "every write got its own version"
    );
    let (_, meta) = first
        .call("GET", "secret/metadata/shared", Some(&root), None)
        .await;
    assert_eq!(
        meta["data"]["current_version"],
        2 + CONTENDERS as u64,
        "{meta}"
    );
}
