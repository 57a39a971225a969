//! The one filter for remote-derived text (error bodies, platform messages and state words) before it
//! goes into status, events or logs: the exact values of the credentials and bearers the operator
//! holds are removed, anything token-like is masked (JWTs, long base64/hex runs — also inside words,
//! URLs and JSON), control characters become spaces, and the result is at most
//! [`MESSAGE_MAX`] characters.
//!
//! The credentials and bearers are registered per ApiClient by the token service
//! ([`remember_secrets`], [`remember_bearer`]) before any request carries them, so every message
//! built anywhere (token sources, platform adapters) is cleaned of them without threading them
//! through each call. They stay `SecretString`s here too.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use secrecy::{ExposeSecret, SecretString};

/// The longest message kept (characters).
pub const MESSAGE_MAX: usize = 200;
/// What a removed value is replaced with.
pub const REDACTED: &str = "[redacted]";
/// Shorter secret values are not searched for (they would redact ordinary words); a credential
/// that short is no secret anyway.
pub const KNOWN_MIN: usize = 6;
/// A run of base64/hex characters this long is masked.
pub const RUN_MIN: usize = 32;

#[derive(Default)]
struct Known {
    secrets: Vec<SecretString>,
    bearer: Option<SecretString>,
}

static KNOWN: LazyLock<RwLock<HashMap<String, Known>>> = LazyLock::new(Default::default);

/// Registers the credential values of ApiClient `owner` (uid), replacing what it had before.
pub fn remember_secrets(owner: &str, values: impl IntoIterator<Item = SecretString>) {
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    let entry = known.entry(owner.to_string()).or_default();
    entry.secrets = values
        .into_iter()
        .filter(|v| v.expose_secret().len() >= KNOWN_MIN)
        .collect();
}

/// Registers the current bearer of ApiClient `owner`.
pub fn remember_bearer(owner: &str, bearer: &SecretString) {
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    known.entry(owner.to_string()).or_default().bearer = Some(bearer.clone());
}

/// Forgets ApiClients that `alive(uid)` says are gone.
pub fn forget_secrets(alive: impl Fn(&str) -> bool) {
    KNOWN
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|uid, _| alive(uid));
}

/// Replaces every known credential or bearer value in `text`.
fn redact_known(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut values: Vec<&str> = known
        .values()
        .flat_map(|k| k.secrets.iter().chain(k.bearer.as_ref()))
        .map(|s| s.expose_secret())
        .filter(|v| v.len() >= KNOWN_MIN)
        .collect();
    // Longest first: a value that contains another is removed whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for v in values {
        if out.contains(v) {
            out = out.replace(v, REDACTED);
        }
    }
    out
}

/// The platform's own message from an error body (`message`, `detail`, `error_description`, or plain
/// text), sanitized.
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
        // Only the beginning of a large body is looked at.
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]).into_owned(),
    };
    sanitize(&text)
}

/// Known values removed, token-like runs masked, control characters and repeated spaces gone, at most
/// [`MESSAGE_MAX`] characters.
pub fn sanitize(text: &str) -> String {
    let known_removed = redact_known(text);
    let cleaned: String = known_removed
        .chars()
        .map(|c| {
            if c.is_control() || is_invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    // Bounded work: what would be cut anyway is not scanned (generously, as masking shortens), and a
    // run the bound cuts through is dropped rather than shown in part.
    let mut head: String = collapsed.chars().take(SCAN_MAX).collect();
    if head.len() < collapsed.len() {
        while head.ends_with(token_char) {
            head.pop();
        }
    }
    let mut out = mask_tokens(&head);
    if out.chars().count() > MESSAGE_MAX {
        out = out.chars().take(MESSAGE_MAX - 3).collect::<String>() + "...";
    }
    out
}

/// How much of a text is scanned for tokens (characters, after whitespace is collapsed).
const SCAN_MAX: usize = 64 * 1024;

/// Format characters that hide or reorder text (bidi overrides, zero-width).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=' | '.' | '%' | '~')
}

/// Masks JWT-like and long base64/hex runs wherever they are: a "run" is a maximal stretch of
/// base64/base64url/percent-encoding characters (dots included), so quotes, colons, spaces and
/// non-ASCII delimit it.
fn mask_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if !run.is_empty() {
            out.push_str(&mask_run(run));
            run.clear();
        }
    };
    for c in text.chars() {
        if token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// One run: masked whole if it holds a JWT, otherwise each dot/slash-separated piece that is a long
/// base64 or hex run is masked (so `host.example/path` stays readable).
fn mask_run(run: &str) -> String {
    if looks_like_jwt(run) {
        return REDACTED.to_string();
    }
    let mut out = String::with_capacity(run.len());
    let mut piece = String::new();
    for c in run.chars() {
        if matches!(c, '.' | '/' | '%' | '~') {
            out.push_str(&mask_piece(&piece));
            piece.clear();
            out.push(c);
        } else {
            piece.push(c);
        }
    }
    out.push_str(&mask_piece(&piece));
    out
}

/// Three (or more) dot-separated base64url segments, the first a JSON header (`eyJ`) or the first two
/// long: a JWT/JWS/JWE, wherever it sits in the run.
fn looks_like_jwt(run: &str) -> bool {
    let parts: Vec<&str> = run.split('.').collect();
    parts.windows(3).any(|w| {
        let b64 = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '=')
        };
        w.iter().all(|s| b64(s))
            && ((w[0].len() >= 4 && w[0].contains("eyJ") && w[1].len() >= 4)
                || (w[0].len() >= 16 && w[1].len() >= 16))
    })
}

/// A piece of at least [`RUN_MIN`] base64 characters with a digit or mixed case (not a long plain
/// word), except a UUID (which names things rather than grants anything). `key=AAAA…` keeps `key=`.
fn mask_piece(piece: &str) -> String {
    let tokenish = |s: &str| {
        s.chars().count() >= RUN_MIN
            && (s.chars().any(|c| c.is_ascii_digit())
                || (s.chars().any(|c| c.is_ascii_uppercase())
                    && s.chars().any(|c| c.is_ascii_lowercase())))
            && !is_uuid(s)
    };
    if let Some((key, value)) = piece.split_once('=')
        && !key.is_empty()
        && key.len() <= 32
        && key.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
        && tokenish(value)
    {
        return format!("{key}={REDACTED}");
    }
    if tokenish(piece) {
        return REDACTED.to_string();
    }
    piece.to_string()
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl";

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
        assert!(message_of(long.as_bytes()).chars().count() <= MESSAGE_MAX);
        let leak = format!("token {JWT} refused");
        assert_eq!(sanitize(&leak), "token [redacted] refused");
        assert_eq!(sanitize("line\nbreak\u{7}"), "line break");
        assert_eq!(sanitize("a\u{202e}b\u{200b}c"), "a b c");
    }

    #[test]
    fn tokens_are_masked_inside_words_urls_and_json() {
        let b64 = "QWxhZGRpbjpvcGVuIHNlc2FtZQQWxhZGRpbjpvcGVuIHNlc2FtZQ";
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let table = [
            (
                format!(r#"{{"access_token":"{JWT}"}}"#),
                r#"{"access_token":"[redacted]"}"#.to_string(),
            ),
            (
                format!("bearer:{JWT},next"),
                "bearer:[redacted],next".to_string(),
            ),
            (format!("x{JWT}y"), "[redacted]".to_string()),
            (format!("token={b64}"), "token=[redacted]".to_string()),
            (
                format!("https://h.example/cb?code={hex}&x=1"),
                "https://h.example/cb?code=[redacted]&x=1".to_string(),
            ),
            (format!("«{hex}»"), "«[redacted]»".to_string()),
            (format!("id {hex}."), "id [redacted].".to_string()),
        ];
        for (input, want) in table {
            assert_eq!(sanitize(&input), want, "{input}");
        }
        // What is not a token stays readable.
        for keep in [
            "job 0f9a2d3e-6a5c-4d4b-9a57-1c2b3d4e5f60 not found",
            "https://runai.example.com/api/v1/workloads/trainings is gone",
            "simulator.jobrelay-demo.svc.cluster.local refused",
            "supercalifragilisticexpialidociousness",
            "HTTP 503: service unavailable",
        ] {
            assert_eq!(sanitize(keep), keep);
        }
    }

    #[test]
    fn known_values_are_removed_wherever_they_appear() {
        let owner = "uid-known-values-test";
        remember_secrets(
            owner,
            [
                SecretString::from("s3cret-pass".to_string()),
                SecretString::from("abc".to_string()),
            ],
        );
        remember_bearer(owner, &SecretString::from("plainbearer".to_string()));
        let got = sanitize(r#"{"message":"bad client_secret 's3cret-pass' for plainbearer; abc"}"#);
        assert_eq!(
            got,
            r#"{"message":"bad client_secret '[redacted]' for [redacted]; abc"}"#
        );
        assert_eq!(
            message_of(br#"{"message":"you sent s3cret-pass"}"#),
            "you sent [redacted]"
        );
        forget_secrets(|uid| uid != owner);
        assert_eq!(sanitize("s3cret-pass"), "s3cret-pass");
    }

    #[test]
    fn cut_at_the_limit_on_a_char_boundary() {
        let s = "é".repeat(MESSAGE_MAX * 30);
        let out = sanitize(&s);
        assert_eq!(out.chars().count(), MESSAGE_MAX);
        assert!(out.ends_with("..."));
    }
}
