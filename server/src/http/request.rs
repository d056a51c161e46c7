//! Turns an HTTP request into a [`Request`]: method to operation, path, token
//! header, namespace and wrapping checks, body (JSON or form, size-, time- and
//! budget-limited) and query fields.

use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, Method};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::core::CoreError;
use crate::crypto::SecretString;
use crate::logical::{Operation, Request};

/// Body limit on the paths served without a token (login, enrolment, init,
/// unseal): their bodies are a few fields, and anyone may send them.
pub const TOKEN_LESS_MAX_BODY: usize = 64 * 1024;

/// JSON budget on the token-less paths: a login is a handful of fields, and
/// parsing any such body then allocates at most its length plus ~260 KiB.
pub const TOKEN_LESS_MAX_JSON_VALUES: usize = 1024;

/// Default JSON budget: structural tokens (`[`, `{`, `,`, `:` outside strings)
/// in one body. Each costs the parser at most ~260 bytes (a `Value` and its
/// slot in a doubling `Vec`, or an `IndexMap` entry), so a body allocates at
/// most its own length in strings plus 64 Ki x 260 B = ~16 MiB.
pub const DEFAULT_MAX_JSON_VALUES: usize = 64 * 1024;

/// How one body may be read.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// bytes
    pub max_bytes: usize,
    /// JSON structural tokens (or form fields)
    pub max_values: usize,
    /// the whole body must arrive within this
    pub read_timeout: Duration,
}

/// What the HTTP layer does with a request's body.
#[derive(Debug)]
pub enum BodyAdmission {
    /// Read it within these limits.
    Read(BodyLimits),
    /// Do not read it: the request has no usable token and its path needs one.
    /// The core refuses (and audits) the request without its data.
    Withhold,
}

/// Builds the core request. `path` is already percent-decoded and without `/v1/`.
#[allow(clippy::too_many_arguments)]
pub async fn parse(
    id: String,
    remote_addr: Option<std::net::IpAddr>,
    method: &Method,
    path: String,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    admission: BodyAdmission,
) -> Result<Request, ApiError> {
    if let Some(ns) = headers.get("x-vault-namespace") {
        let ns = ns.to_str().unwrap_or("?").trim().trim_matches('/');
        if !ns.is_empty() && ns != "root" {
            return Err(CoreError::Namespace(ns.chars().take(64).collect()).into());
        }
    }
    if headers.contains_key("x-vault-wrap-ttl") {
        return Err(CoreError::WrappingUnsupported.into());
    }
    let query: Vec<(String, String)> = match query {
        // The query is bounded by the header limits; the same budget keeps its
        // pairs from costing many times its length.
        Some(q) if q.bytes().filter(|b| *b == b'&').count() >= DEFAULT_MAX_JSON_VALUES => {
            return Err(ApiError::TooComplex(DEFAULT_MAX_JSON_VALUES))
        }
        Some(q) => serde_urlencoded::from_str(q).unwrap_or_default(),
        None => Vec::new(),
    };
    let query_flag = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let operation = match *method {
        Method::GET | Method::HEAD => {
            // Vault reads the flag as Go's ParseBool does (hvac sends "True").
            if query_flag("list")
                .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "True" | "TRUE"))
            {
                Operation::List
            } else {
                Operation::Read
            }
        }
        Method::POST | Method::PUT => Operation::Update,
        Method::PATCH => Operation::Patch,
        Method::DELETE => Operation::Delete,
        _ if method.as_str() == "LIST" => Operation::List,
        _ => return Err(ApiError::Method),
    };

    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut data = match admission {
        BodyAdmission::Read(limits) => {
            read_body(headers, body, limits, content_type.as_deref()).await?
        }
        BodyAdmission::Withhold => Map::new(),
    };
    if matches!(operation, Operation::Read | Operation::List) {
        for (k, v) in &query {
            if k != "list" {
                data.entry(k.clone())
                    .or_insert_with(|| Value::String(v.clone()));
            }
        }
    }
    let list_after = query_flag("after").map(str::to_owned);
    let list_limit = match query_flag("limit") {
        None | Some("") => None,
        Some(l) => Some(
            l.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::BadBody("'limit' must be a positive integer".into()))?,
        ),
    };
    Ok(Request {
        id,
        operation,
        path,
        data,
        content_type,
        client_token: token_from(headers),
        list_after,
        list_limit,
        mfa_header: headers
            .get("x-vault-mfa")
            .and_then(|v| v.to_str().ok())
            .map(SecretString::from),
        connection: crate::logical::ConnectionInfo {
            remote_addr,
            ..Default::default()
        },
        unauthenticated_metrics: false,
    })
}

/// Whether the body may hold anything (a request without a length or with
/// `Content-Length: 0` has none, and needs no token check before it is "read").
pub fn may_have_body(body: &Body) -> bool {
    body.size_hint().exact() != Some(0)
}

/// `X-Vault-Token`, else `Authorization: Bearer`.
pub fn token_from(headers: &HeaderMap) -> Option<SecretString> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        let t = t.trim();
        if !t.is_empty() {
            return Some(SecretString::from(t));
        }
    }
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| SecretString::from(token.trim()))
}

async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
    content_type: Option<&str>,
) -> Result<Map<String, Value>, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(ApiError::TooLarge);
    }
    let capacity = declared.map_or(0, |n| n as usize);
    let bytes = tokio::time::timeout(
        limits.read_timeout,
        collect(body, limits.max_bytes, capacity),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout)??;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if structural_tokens(&bytes, limits.max_values) > limits.max_values {
        return Err(ApiError::TooComplex(limits.max_values));
    }
    if is_form(&bytes, content_type) {
        return parse_form(&bytes, limits.max_values);
    }
    let json = serde_json::from_slice::<Value>(&bytes);
    match json {
        Ok(Value::Object(m)) => Ok(m),
        // `bao write -f` sends `null`: Vault reads it as a request without fields.
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(ApiError::BadBody(
            "failed to parse JSON input: the body must be a JSON object".into(),
        )),
        // serde's message names the position only, never the content.
        Err(e) => Err(ApiError::BadBody(format!(
            "failed to parse JSON input: {} at line {} column {}",
            classify(&e),
            e.line(),
            e.column()
        ))),
    }
}

/// Vault's rule: a body is a form when its media type says so and it does not
/// start like a JSON object or array (curl `-d '{...}'` sends JSON with the
/// form type, and stays JSON).
fn is_form(bytes: &[u8], content_type: Option<&str>) -> bool {
    let declared = content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| {
            c.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    declared
        && !matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        )
}

/// A form body's fields, as strings. A key given more than once is joined with
/// commas, as Vault does (every list field reads comma-separated strings).
fn parse_form(bytes: &[u8], max_values: usize) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().filter(|b| **b == b'&').count() >= max_values {
        return Err(ApiError::TooComplex(max_values));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
        .map_err(|_| ApiError::BadBody("failed to parse form body".into()))?;
    let mut out = Map::new();
    for (k, v) in pairs {
        match out.get_mut(&k) {
            Some(Value::String(prev)) => {
                let v = zeroize::Zeroizing::new(v);
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                out.insert(k, Value::String(v));
            }
        }
    }
    Ok(out)
}

/// Reads the body frame by frame into one zeroizing buffer (sized from
/// `Content-Length` up front), refusing it as soon as it passes `max`.
async fn collect(
    mut body: Body,
    max: usize,
    capacity: usize,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ApiError> {
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(capacity.min(max)));
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame =
            frame.map_err(|_| ApiError::BadBody("failed to read the request body".into()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(ApiError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// Counts `[`, `{`, `,` and `:` outside JSON strings, stopping once past
/// `limit`. Every value the parser allocates (and every object key) is
/// introduced by one of them, bar the outermost: a cheap upper bound on what
/// parsing will allocate, checked before parsing.
fn structural_tokens(bytes: &[u8], limit: usize) -> usize {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' | b',' | b':' => {
                count += 1;
                if count > limit {
                    return count;
                }
            }
            _ => {}
        }
    }
    count
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "invalid data",
        serde_json::error::Category::Io => "read error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_and_vault_token_headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(token_from(&h).unwrap().expose(), "abc");
        h.insert("x-vault-token", HeaderValue::from_static("xyz"));
        assert_eq!(token_from(&h).unwrap().expose(), "xyz");
        let mut basic = HeaderMap::new();
        basic.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert!(token_from(&basic).is_none());
    }

    fn limits(max_bytes: usize) -> BodyLimits {
        BodyLimits {
            max_bytes,
            max_values: 8,
            read_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn bodies_parse_or_fail_clearly() {
        let h = HeaderMap::new();
        let m = read_body(&h, Body::from("{\"a\":1}"), limits(100), None)
            .await
            .unwrap();
        assert_eq!(m.get("a"), Some(&Value::from(1)));
        assert!(read_body(&h, Body::from(""), limits(100), None)
            .await
            .unwrap()
            .is_empty());
        let err = read_body(
            &h,
            Body::from("{\"secret\": \"hunter2\""),
            limits(100),
            None,
        )
        .await
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(matches!(
            read_body(&h, Body::from("[1]"), limits(100), None).await,
            Err(ApiError::BadBody(_))
        ));
        assert!(matches!(
            read_body(&h, Body::from("x".repeat(200)), limits(100), None).await,
            Err(ApiError::TooLarge)
        ));
        let form = read_body(
            &h,
            Body::from("a=1&b=two"),
            limits(100),
            Some("application/x-www-form-urlencoded"),
        )
        .await
        .unwrap();
        assert_eq!(form.get("b"), Some(&Value::from("two")));
    }

    #[tokio::test]
    async fn null_is_an_empty_request_and_forms_follow_vaults_rule() {
        let h = HeaderMap::new();
        const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");
        for body in ["null", " null\n"] {
            let m = read_body(&h, Body::from(body), limits(100), Some("application/json"))
                .await
                .unwrap();
            assert!(m.is_empty(), "{body:?}");
        }
        // A form-typed body that starts like JSON is JSON (curl -d '{...}').
        let m = read_body(&h, Body::from(" {\"a\":\"x=y\"}"), limits(100), FORM)
            .await
            .unwrap();
        assert_eq!(m.get("a"), Some(&Value::from("x=y")));
        // Anything else with the form type is a form, as in Vault, and a key
        // given twice is joined with a comma.
        let m = read_body(
            &h,
            Body::from("meta=team%3Dpayments&meta=env%3Dprod&policies=a%2Cb"),
            limits(100),
            FORM,
        )
        .await
        .unwrap();
        assert_eq!(m.get("meta"), Some(&Value::from("team=payments,env=prod")));
        assert_eq!(m.get("policies"), Some(&Value::from("a,b")));
        let m = read_body(&h, Body::from("5"), limits(100), FORM)
            .await
            .unwrap();
        assert_eq!(m.get("5"), Some(&Value::from("")));
        // Without the form type, a form-looking body is bad JSON.
        assert!(matches!(
            read_body(&h, Body::from("a=1"), limits(100), None).await,
            Err(ApiError::BadBody(_))
        ));
        assert!(matches!(
            read_body(&h, Body::from("true"), limits(100), None).await,
            Err(ApiError::BadBody(_))
        ));
    }

    #[tokio::test]
    async fn the_json_budget_counts_structure_not_strings() {
        let h = HeaderMap::new();
        // Eight tokens: { : [ , , , , ]... within the budget of 8.
        let ok = read_body(&h, Body::from(r#"{"a":[1,2,3,4,5]}"#), limits(100), None).await;
        assert!(ok.is_ok(), "{ok:?}");
        // Commas, brackets and colons inside strings cost nothing.
        let ok = read_body(
            &h,
            Body::from(r#"{"a":"[[[,,,:::]]]{{{,,,"}"#),
            limits(100),
            None,
        )
        .await;
        assert!(ok.is_ok(), "{ok:?}");
        let over = read_body(
            &h,
            Body::from("{\"a\":[[],[],[],[],[]]}"),
            limits(100),
            None,
        )
        .await;
        assert!(matches!(over, Err(ApiError::TooComplex(8))), "{over:?}");
        let form = read_body(
            &h,
            Body::from("a&a&a&a&a&a&a&a&a&a"),
            limits(100),
            Some("application/x-www-form-urlencoded"),
        )
        .await;
        assert!(matches!(form, Err(ApiError::TooComplex(8))), "{form:?}");
        // An escaped quote does not end the string.
        assert_eq!(structural_tokens(br#"{"a":"\",,,,,,,,"}"#, 100), 2);
    }

    #[test]
    fn the_default_budget_bounds_what_parsing_allocates() {
        // Per token: a Value and its slot in a Vec that may double, or an
        // object entry (hash, key, value) plus its index slot.
        let per_value = 2 * std::mem::size_of::<Value>();
        let per_entry = 2 * (8 + std::mem::size_of::<String>() + std::mem::size_of::<Value>()) + 16;
        let worst = per_value.max(per_entry);
        assert!(worst <= 260, "{worst} bytes per token");
        assert!(DEFAULT_MAX_JSON_VALUES * worst <= 17 * 1024 * 1024);
    }
}
