//! Turns an HTTP request into a [`Request`]: method to operation, path, token
//! header, namespace and wrapping checks, body (JSON or form, size-limited) and query fields.

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::core::CoreError;
use crate::crypto::SecretString;
use crate::logical::{Operation, Request};

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
    max_body: usize,
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
    let query: Vec<(String, String)> = query
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    let query_flag = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let operation = match *method {
        Method::GET | Method::HEAD => {
            if query_flag("list").is_some_and(|v| v == "true" || v == "1") {
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
    let mut data = read_body(headers, body, max_body, content_type.as_deref()).await?;
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
        remote_addr,
        unauthenticated_metrics: false,
    })
}

/// `X-Vault-Token`, else `Authorization: Bearer`.
fn token_from(headers: &HeaderMap) -> Option<SecretString> {
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
    max_body: usize,
    content_type: Option<&str>,
) -> Result<Map<String, Value>, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(ApiError::TooLarge);
    }
    let bytes = axum::body::to_bytes(body, max_body)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let bytes = zeroize::Zeroizing::new(bytes.to_vec());
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let json = serde_json::from_slice::<Value>(&bytes);
    let is_form = content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| {
            c.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    // Vault reads JSON whatever the Content-Type (curl -d sends a form type), so
    // JSON wins; a real form body is accepted when it is not JSON.
    if is_form && json.is_err() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| ApiError::BadBody("failed to parse form body".into()))?;
        return Ok(pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect());
    }
    match json {
        Ok(Value::Object(m)) => Ok(m),
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

    #[tokio::test]
    async fn bodies_parse_or_fail_clearly() {
        let h = HeaderMap::new();
        let m = read_body(&h, Body::from("{\"a\":1}"), 100, None)
            .await
            .unwrap();
        assert_eq!(m.get("a"), Some(&Value::from(1)));
        assert!(read_body(&h, Body::from(""), 100, None)
            .await
            .unwrap()
            .is_empty());
        let err = read_body(&h, Body::from("{\"secret\": \"hunter2\""), 100, None)
            .await
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(matches!(
            read_body(&h, Body::from("[1]"), 100, None).await,
            Err(ApiError::BadBody(_))
        ));
        assert!(matches!(
            read_body(&h, Body::from("x".repeat(200)), 100, None).await,
            Err(ApiError::TooLarge)
        ));
        let form = read_body(
            &h,
            Body::from("a=1&b=two"),
            100,
            Some("application/x-www-form-urlencoded"),
        )
        .await
        .unwrap();
        assert_eq!(form.get("b"), Some(&Value::from("two")));
    }
}
