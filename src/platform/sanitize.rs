//! Turning platform responses into short, safe messages: trimmed, one line, bounded, and with
//! anything that looks like a credential replaced. Messages end up in RemoteJob status and events,
//! which many people can read.

/// Longest message we keep, in characters.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// Sanitizes a message: collapses whitespace, redacts token-like words, truncates.
pub fn sanitize_message(raw: &str) -> String {
    let mut out = String::new();
    let mut redact_next = false;
    for word in raw.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        if redact_next || looks_like_secret(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        // "Bearer xyz", "token: xyz", "password=xyz": the next word is the secret.
        let lower = word.to_ascii_lowercase();
        redact_next = lower == "bearer"
            || lower == "basic"
            || lower.ends_with("token:")
            || lower.ends_with("secret:");
    }
    truncate_chars(&out, MAX_MESSAGE_CHARS)
}

/// JWTs, long opaque strings and `key=value` pairs whose key names a secret.
fn looks_like_secret(word: &str) -> bool {
    let w =
        word.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | '{' | '}'));
    let lower = w.to_ascii_lowercase();
    for key in [
        "token",
        "secret",
        "password",
        "authorization",
        "apikey",
        "api_key",
    ] {
        if let Some(pos) = lower.find(key) {
            let rest = &lower[pos + key.len()..];
            if rest.starts_with('=')
                || rest.starts_with("\":")
                || rest.starts_with(':') && rest.len() > 1
            {
                return true;
            }
        }
    }
    if w.starts_with("eyJ") && w.len() > 20 {
        return true;
    }
    // Long runs of token alphabet with both letters and digits: API keys, hashes, base64 blobs.
    let tokenish = w
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '='));
    let has_digit = w.chars().any(|c| c.is_ascii_digit());
    let has_alpha = w.chars().any(|c| c.is_ascii_alphabetic());
    let uuid_like = w.len() == 36 && w.chars().filter(|c| *c == '-').count() == 4;
    tokenish && has_digit && has_alpha && w.len() >= 32 && !uuid_like
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// The platform's message from an error body: JSON `message`/`error_description`/`detail`/`error`
/// when present, else the first line of a text body. Never the whole body.
pub fn message_from_body(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let pick = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let detail = match v.get("detail") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.get("msg").and_then(|m| m.as_str()))
                .next()
                .map(str::to_string),
            _ => None,
        };
        let text = pick("message")
            .or_else(|| pick("error_description"))
            .or(detail)
            .or_else(|| pick("error"));
        let code = v.get("code").and_then(|c| c.as_str());
        return match (code, text) {
            (Some(c), Some(t)) => sanitize_message(&format!("{c}: {t}")),
            (_, Some(t)) => sanitize_message(&t),
            (Some(c), None) => sanitize_message(c),
            (None, None) => String::new(),
        };
    }
    let text = String::from_utf8_lossy(body);
    sanitize_message(text.lines().find(|l| !l.trim().is_empty()).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl";
        let cases: &[(&str, &str)] = &[
            ("  hello\n  world ", "hello world"),
            (&format!("bad token {jwt}"), "bad token [redacted]"),
            (
                "Authorization: Bearer abc",
                "Authorization: Bearer [redacted]",
            ),
            ("password=hunter2 wrong", "[redacted] wrong"),
            ("key 0123456789abcdef0123456789abcdef01", "key [redacted]"),
            (
                "job 123e4567-e89b-12d3-a456-426614174000 ok",
                "job 123e4567-e89b-12d3-a456-426614174000 ok",
            ),
            (
                "Job alice~my-job already exists.",
                "Job alice~my-job already exists.",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize_message(raw), *want, "{raw}");
        }
        let long = "x ".repeat(500);
        assert_eq!(sanitize_message(&long).chars().count(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn body_messages() {
        let cases: &[(&[u8], &str)] = &[
            (
                br#"{"code":409,"message":"Resource with this name already exists"}"#,
                "Resource with this name already exists",
            ),
            (
                br#"{"code":"ConflictJobError","message":"Job a~b already exists."}"#,
                "ConflictJobError: Job a~b already exists.",
            ),
            (
                br#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#,
                "Invalid client credentials",
            ),
            (
                br#"{"detail":[{"loc":["body"],"msg":"field required","type":"missing"}]}"#,
                "field required",
            ),
            (
                b"Too many requests, please try again later.\nmore",
                "Too many requests, please try again later.",
            ),
            (b"", ""),
        ];
        for (body, want) in cases {
            assert_eq!(message_from_body(body), *want);
        }
    }
}
