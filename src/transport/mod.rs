//! The outbound HTTP layer under `auth` and `platform`: the baseline client (egress guard, no
//! redirects, timeouts) and the platform-neutral reading of error answers.

pub mod egress;

use std::sync::Arc;
use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client builder with what every outbound request gets: names resolved through [`egress`],
/// redirects not followed, timeouts, our user agent. TLS and plain-http choices are the caller's.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(egress::GuardedResolver))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("jobrelay/", env!("CARGO_PKG_VERSION")))
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
