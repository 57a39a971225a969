//! HTTP plumbing shared by the adapters: sending with the bearer, classifying answers into
//! [`RemoteError`] classes, and keeping platform messages short and clean.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};

use super::RemoteError;

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
    let resp = req
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", token.expose_secret()),
        )
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
    let message = if crate::auth::egress::refused(e) {
        format!("cannot connect: {}", crate::auth::egress::REFUSED)
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

/// The platform's own message from an error body (`message`, `detail`, `error_description`, or plain
/// text), cut short and stripped of anything that is not printable.
pub fn message_of(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => [
            "message",
            "error_description",
            "detail",
            "error",
            "description",
        ]
        .iter()
        .find_map(|k| match v.get(*k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(items) => items
                .first()
                .and_then(|i| i.get("msg"))
                .and_then(|m| m.as_str())
                .map(str::to_string),
            _ => None,
        })
        .unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    sanitize(&text)
}

/// At most 200 printable characters, with anything token-like (long unbroken base64/JWT runs) masked.
pub fn sanitize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let masked: Vec<String> = cleaned
        .split_whitespace()
        .map(|w| {
            if w.len() >= 32
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.=+/".contains(c))
            {
                "[redacted]".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let mut out = masked.join(" ");
    if out.chars().count() > 200 {
        out = out.chars().take(197).collect::<String>() + "...";
    }
    out
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

    #[test]
    fn messages_are_extracted_short_and_clean() {
        assert_eq!(
            message_of(br#"{"code":400,"message":"bad image"}"#),
            "bad image"
        );
        assert_eq!(
            message_of(br#"{"detail":[{"loc":["body"],"msg":"field required","type":"x"}]}"#),
            "field required"
        );
        assert_eq!(
            message_of(br#"{"error":"invalid_client","error_description":"Invalid client"}"#),
            "Invalid client"
        );
        assert_eq!(
            message_of(b"Too many requests, please try again later."),
            "Too many requests, please try again later."
        );
        let long = "x ".repeat(300);
        assert!(message_of(long.as_bytes()).chars().count() <= 200);
        let leak = "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl refused";
        assert_eq!(sanitize(leak), "token [redacted] refused");
        assert_eq!(sanitize("line\nbreak\u{7}"), "line break");
    }
}
