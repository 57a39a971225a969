//! Sending for the platforms: where a platform is ([`Endpoint`]), and sending with the bearer,
//! classifying answers into [`RemoteError`] classes.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, header};
use secrecy::SecretString;

use super::model::RemoteError;
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
    /// The platform's clock when it answered (its `Date` header), where it said.
    pub date: Option<jiff::Timestamp>,
}

/// A failed call as [`send_checked`] reports it: the class, and the HTTP status and the platform's
/// message when an answer came back (a [`RemoteError::NotFound`] keeps no message of its own).
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub error: RemoteError,
    pub status: Option<StatusCode>,
    pub message: String,
}

impl Failure {
    /// Pure: how a read `call` went, for [`super::model::status_read_unsupported`].
    pub fn tried(&self, call: &str) -> String {
        match self.status {
            Some(s) => format!("{call} answered HTTP {}", s.as_u16()),
            None => format!("{call} failed: {}", self.error),
        }
    }

    fn without_answer(error: RemoteError) -> Self {
        Failure {
            error,
            status: None,
            message: String::new(),
        }
    }

    /// Pure: whether this answer says the read itself is not offered — 405, 501, or a 404 whose
    /// message is the framework's bare "Not Found" for a route it does not have (FastAPI/Starlette,
    /// Flask, express), as opposed to a 404 naming a missing job ("Execution not found").
    pub fn read_unsupported(&self) -> bool {
        match self.status.map(|s| s.as_u16()) {
            Some(405 | 501) => true,
            Some(404) => {
                let m = self.message.trim().trim_end_matches('.');
                m.is_empty() || m.eq_ignore_ascii_case("not found") || m.starts_with("Cannot ")
            }
            _ => false,
        }
    }
}

/// Sends `req` with the bearer token. `creates`: the request may change state remotely, so a failure
/// after it was sent means the outcome is unknown (never "retry blindly").
pub async fn send(
    req: RequestBuilder,
    token: &SecretString,
    creates: bool,
) -> Result<Answer, RemoteError> {
    send_checked(req, token, creates).await.map_err(|f| f.error)
}

/// [`send`], keeping the HTTP status and message of a refusal (see [`Failure`]).
pub async fn send_checked(
    req: RequestBuilder,
    token: &SecretString,
    creates: bool,
) -> Result<Answer, Failure> {
    let gone = |e: reqwest::Error| Failure::without_answer(transport_error(&e, creates));
    let resp = crate::transport::with_bearer(req, token)
        .send()
        .await
        .map_err(gone)?;
    let status = resp.status();
    let retry_after = retry_after(
        resp.headers().get(header::RETRY_AFTER),
        jiff::Timestamp::now(),
    );
    let date = resp
        .headers()
        .get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
        .map(|z| z.timestamp());
    let (bytes, cut) = read_capped(resp, MAX_BODY).await.map_err(gone)?;
    if status.is_success() && cut {
        // An answer we will not parse; for a create its effect is unknown.
        let message = format!(
            "the platform's answer is larger than {} KiB",
            MAX_BODY / 1024
        );
        return Err(Failure::without_answer(if creates {
            RemoteError::OutcomeUnknown { message }
        } else {
            RemoteError::Retriable {
                message,
                retry_after: None,
            }
        }));
    }
    if status.is_success() {
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
        };
        return Ok(Answer { status, body, date });
    }
    let message = message_of(&bytes);
    let error = classify(status, retry_after, &message);
    Err(Failure {
        error: if creates {
            on_create(error, status)
        } else {
            error
        },
        status: Some(status),
        message,
    })
}

/// The most of a response body read (and parsed); the rest is not read.
pub const MAX_BODY: usize = 1024 * 1024;
/// Bounds of a platform's Retry-After: at least 1 s (`0` and past dates do not spin), at most 10 min
/// (an absurd value does not park a job for years).
pub const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(600);

/// Pure: a Retry-After header (delay-seconds or an HTTP-date, RFC 9110 §10.2.3) as a wait within
/// [`RETRY_AFTER_MIN`]..=[`RETRY_AFTER_MAX`]; `None` when absent or unreadable. Never panics.
pub fn retry_after(value: Option<&header::HeaderValue>, now: jiff::Timestamp) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    let secs: u64 = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "a very long time".
        text.parse().unwrap_or(u64::MAX)
    } else {
        let at = jiff::fmt::rfc2822::parse(text).ok()?.timestamp();
        let diff = at.as_second().saturating_sub(now.as_second());
        u64::try_from(diff).unwrap_or(0)
    };
    Some(Duration::from_secs(secs.min(RETRY_AFTER_MAX.as_secs())).max(RETRY_AFTER_MIN))
}

/// Reads at most `cap` bytes of the body (`true`: there was more, left unread).
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Ok((Vec::new(), true));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - out.len();
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, false))
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
/// Pure, for tests of recorded vendor answers: how an error answer `code` with raw `body` classifies.
#[cfg(test)]
pub fn classify_recorded(code: u16, body: &[u8]) -> RemoteError {
    classify(StatusCode::from_u16(code).unwrap(), None, &message_of(body))
}

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

/// Pure: what a refusal means when the request was a create. 500, 502, 504 and 408 come from a
/// server or proxy that may have stored the job before failing to answer: the outcome is unknown (to
/// be looked up, never created blindly). 429 and 503 (and 401, refreshed and retried) say the request
/// was turned away: they stay clean, retriable refusals.
pub fn on_create(err: RemoteError, status: StatusCode) -> RemoteError {
    match (err, status.as_u16()) {
        (RemoteError::Retriable { message, .. }, 408 | 500 | 502 | 504) => {
            RemoteError::OutcomeUnknown {
                message: format!("{message} (the job may have been created)"),
            }
        }
        (err, _) => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn ra(text: &str) -> Option<Duration> {
        let now: Timestamp = "2024-03-01T10:00:00Z".parse().unwrap();
        retry_after(header::HeaderValue::from_str(text).ok().as_ref(), now)
    }

    #[test]
    fn retry_after_is_bounded() {
        let s = Duration::from_secs;
        for (text, want) in [
            ("7", Some(s(7))),
            (" 7 ", Some(s(7))),
            ("0", Some(s(1))),
            ("600", Some(s(600))),
            ("31536000", Some(s(600))),
            ("18446744073709551615", Some(s(600))),
            ("99999999999999999999999999999", Some(s(600))),
            ("Fri, 01 Mar 2024 10:00:30 GMT", Some(s(30))),
            ("Fri, 01 Mar 2024 09:00:00 GMT", Some(s(1))),
            ("Mon, 01 Jan 1900 00:00:00 GMT", Some(s(1))),
            ("Wed, 01 Jan 3000 00:00:00 GMT", Some(s(600))),
            ("Fri, 31 Dec 9999 23:59:59 GMT", None), // beyond what a timestamp holds: unreadable
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ] {
            assert_eq!(ra(text), want, "{text:?}");
        }
        assert_eq!(retry_after(None, Timestamp::now()), None);
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_cap() {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/big", get(|| async { "x".repeat(MAX_BODY + 10) }))
            .route(
                "/stream",
                get(|| async {
                    let chunks = (0..40).map(|_| {
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'y'; 64 * 1024]))
                    });
                    axum::body::Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route("/small", get(|| async { "{\"id\": \"1\"}" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let at = Endpoint::new(reqwest::Client::new(), format!("http://{addr}"));
        let t = SecretString::from("t");
        for path in ["/big", "/stream"] {
            assert!(
                matches!(send(at.get(path), &t, false).await, Err(RemoteError::Retriable { message, .. }) if message.contains("larger than 1024 KiB")),
                "{path}"
            );
            assert!(
                matches!(
                    send(at.post(path), &t, true).await,
                    Err(RemoteError::OutcomeUnknown { .. }) | Err(RemoteError::Permanent { .. })
                ),
                "{path}"
            );
        }
        let ok = send(at.get("/small"), &t, false).await.ok().unwrap();
        assert_eq!(ok.body["id"], "1");
        let resp = reqwest::get(format!("http://{addr}/stream")).await.unwrap();
        let (bytes, cut) = read_capped(resp, MAX_BODY).await.unwrap();
        assert!(cut && bytes.len() == MAX_BODY);
    }

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
    fn a_create_refused_mid_way_has_an_unknown_outcome() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        let on = |c| on_create(classify(s(c), None, "m"), s(c));
        for c in [408, 500, 502, 504] {
            assert!(
                matches!(on(c), RemoteError::OutcomeUnknown { ref message } if message.contains(&format!("HTTP {c}"))),
                "{c}"
            );
        }
        for c in [429, 503] {
            assert!(matches!(on(c), RemoteError::Retriable { .. }), "{c}");
        }
        assert!(matches!(on(401), RemoteError::Auth { .. }));
        assert!(matches!(on(409), RemoteError::Conflict { .. }));
        assert!(matches!(on(400), RemoteError::Permanent { .. }));
        assert_eq!(on(404), RemoteError::NotFound);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any header bytes: no panic, and any wait is within the bounds.
        #[test]
        fn any_retry_after_is_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..64), now in -377705116800i64..253402207200i64) {
            let now = jiff::Timestamp::from_second(now).unwrap();
            if let Ok(v) = header::HeaderValue::from_bytes(&bytes)
                && let Some(d) = retry_after(Some(&v), now)
            {
                prop_assert!((RETRY_AFTER_MIN..=RETRY_AFTER_MAX).contains(&d));
            }
        }

        #[test]
        fn any_number_or_date_is_bounded(n in any::<u128>(), y in 1i16..9999, mo in 1u8..13, d in 1u8..29, h in 0u8..24) {
            let now = jiff::Timestamp::now();
            let v = header::HeaderValue::from_str(&n.to_string()).unwrap();
            let got = retry_after(Some(&v), now).unwrap();
            prop_assert!((RETRY_AFTER_MIN..=RETRY_AFTER_MAX).contains(&got));
            if let Ok(date) = jiff::civil::date(y, mo as i8, d as i8).at(h as i8, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC) {
                let text = jiff::fmt::rfc2822::to_string(&date).unwrap_or_default();
                if let Ok(v) = header::HeaderValue::from_str(&text) {
                    let got = retry_after(Some(&v), now).unwrap();
                    prop_assert!((RETRY_AFTER_MIN..=RETRY_AFTER_MAX).contains(&got), "{text}");
                }
            }
        }
    }
}
