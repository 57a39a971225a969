//! Sending for the platforms: where a platform is ([`Endpoint`]), and sending with the bearer,
//! classifying answers into [`RemoteError`] classes.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, header};
use secrecy::SecretString;

use super::RemoteError;
use crate::transport::{egress, message_of};

/// Where a platform's API is, and the HTTP client (the ApiClient's TLS settings, egress guard) to reach it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub http: reqwest::Client,
    pub base_url: String,
}

impl Endpoint {
    pub fn new(http: reqwest::Client, base_url: impl Into<String>) -> Self {
        Endpoint {
            http,
            base_url: base_url.into(),
        }
    }

    /// The URL of `path` (which starts with `/`) under the base URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.trim_end_matches('/'))
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }
}

/// A successful answer.
pub struct Answer {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

/// Sends `req` with the bearer token. `creates`: the request may change state remotely, so a failure
/// after it was sent means the outcome is unknown (never "retry blindly").
pub async fn send(
    req: RequestBuilder,
    token: &SecretString,
    creates: bool,
) -> Result<Answer, RemoteError> {
    let resp = crate::transport::with_bearer(req, token)
        .send()
        .await
        .map_err(|e| transport_error(&e, creates))?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| transport_error(&e, creates))?;
    if status.is_success() {
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
        };
        return Ok(Answer { status, body });
    }
    Err(classify(status, retry_after, &message_of(&bytes)))
}

fn transport_error(e: &reqwest::Error, creates: bool) -> RemoteError {
    // A connect error means nothing reached the platform; anything later may have been applied.
    let message = if egress::refused(e) {
        format!("cannot connect: {}", egress::REFUSED)
    } else if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "connection failed".to_string()
    };
    if creates && !e.is_connect() {
        RemoteError::OutcomeUnknown { message }
    } else {
        RemoteError::Retriable {
            message,
            retry_after: None,
        }
    }
}

/// Pure: HTTP status → error class.
pub fn classify(status: StatusCode, retry_after: Option<Duration>, message: &str) -> RemoteError {
    let message = message.to_string();
    match status.as_u16() {
        401 => RemoteError::Auth { message },
        404 => RemoteError::NotFound,
        409 => RemoteError::Conflict { message },
        408 | 429 | 500..=599 => RemoteError::Retriable {
            message: format!("HTTP {}: {message}", status.as_u16()),
            retry_after,
        },
        _ => RemoteError::Permanent {
            message: format!("HTTP {}: {message}", status.as_u16()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert!(matches!(
            classify(s(401), None, ""),
            RemoteError::Auth { .. }
        ));
        assert_eq!(classify(s(404), None, ""), RemoteError::NotFound);
        assert!(matches!(
            classify(s(409), None, ""),
            RemoteError::Conflict { .. }
        ));
        for c in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(s(c), None, ""), RemoteError::Retriable { .. }),
                "{c}"
            );
        }
        for c in [400, 403, 405, 422] {
            assert!(
                matches!(classify(s(c), None, ""), RemoteError::Permanent { .. }),
                "{c}"
            );
        }
        let ra = Some(Duration::from_secs(7));
        assert_eq!(
            classify(s(429), ra, "slow").requeue_after(),
            Duration::from_secs(7)
        );
    }
}
