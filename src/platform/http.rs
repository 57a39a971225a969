//! The one place adapters send requests: adds the bearer, classifies failures, bounds what is read.

use reqwest::{RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::error::{
    Idempotency, PlatformError, Result, TransportFailure, classify_status, classify_transport,
    parse_retry_after,
};
use super::sanitize::{message_from_body, sanitize_message};

/// Largest response body we read; platform answers are small, anything bigger is a misbehaving server.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A successful answer's body bytes.
pub(crate) struct Answer {
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| PlatformError::Retriable {
            retry_after: None,
            message: sanitize_message(&format!("unreadable response: {e}")),
        })
    }
}

/// Sends with `Authorization: Bearer`, returns 2xx answers and classifies everything else.
pub(crate) async fn send(
    req: RequestBuilder,
    token: &SecretString,
    idempotency: Idempotency,
) -> Result<Answer> {
    let req = req.bearer_auth(token.expose_secret());
    let resp = req.send().await.map_err(|e| transport(&e, idempotency))?;
    read(resp, idempotency).await
}

async fn read(resp: Response, idempotency: Idempotency) -> Result<Answer> {
    let status = resp.status();
    let retry_after = parse_retry_after(
        resp.headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
    );
    let body = match resp.bytes().await {
        Ok(b) => b,
        // A success status already tells the outcome; only the body is lost.
        Err(_) if status.is_success() => Default::default(),
        Err(e) => return Err(transport(&e, idempotency)),
    };
    let body = body[..body.len().min(MAX_BODY)].to_vec();
    if status.is_success() {
        return Ok(Answer { body });
    }
    let mut message = message_from_body(&body);
    if message.is_empty() {
        message = format!("HTTP {}", status.as_u16());
    }
    Err(classify_status(status, retry_after, message))
}

fn transport(e: &reqwest::Error, idempotency: Idempotency) -> PlatformError {
    let kind = if e.is_connect() {
        TransportFailure::Connect
    } else {
        TransportFailure::AfterSend
    };
    // reqwest errors carry the URL, never headers; strip the URL's query anyway (it may hold filters).
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    let url = e
        .url()
        .map(|u| format!(" ({}{})", u.origin().ascii_serialization(), u.path()))
        .unwrap_or_default();
    classify_transport(kind, idempotency, sanitize_message(&format!("{what}{url}")))
}

/// A string at a JSON pointer (numbers are rendered as text, since ids are sometimes numeric).
pub(crate) fn str_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An answer that lacked what we needed. The request succeeded, so for creates this is an
/// "outcome unknown" (the job likely exists), for reads it is worth a retry.
pub(crate) fn missing(what: &str, idempotency: Idempotency) -> PlatformError {
    let message = format!("response lacks {what}");
    match idempotency {
        Idempotency::Create => PlatformError::OutcomeUnknown { message },
        Idempotency::Idempotent => PlatformError::Retriable {
            retry_after: None,
            message,
        },
    }
}

/// Percent-encodes one path segment (names and ids come from users and platforms).
pub(crate) fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
