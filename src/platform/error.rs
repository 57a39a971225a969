//! Classified platform errors. The classification is a pure function of what came back
//! (status, Retry-After, transport failure), so it is table-tested here and shared by all adapters.

use std::time::Duration;

use http::StatusCode;

pub type Result<T> = std::result::Result<T, PlatformError>;

/// What went wrong, in terms of what the caller should do next. Messages are sanitized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// Try again later (5xx, 429, timeouts, connection failures before anything was sent).
    #[error("retriable: {message}")]
    Retriable {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 401: refresh the token once and retry.
    #[error("unauthorized: {message}")]
    Auth { message: String },
    /// 409: the name is taken; look the job up and adopt it.
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// The platform rejected the request (400/403/422, a bad spec); retrying will not help.
    #[error("rejected: {message}")]
    Permanent { message: String },
    /// 404: the job (or the thing addressed) does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The request may have been applied but no answer came back (e.g. the connection dropped after
    /// a create was sent). Never resend blindly: look up, or reconcile.
    #[error("outcome unknown: {message}")]
    OutcomeUnknown { message: String },
    /// The platform has no such operation.
    #[error("{0} is not supported by this platform")]
    Unsupported(&'static str),
}

impl PlatformError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, PlatformError::Retriable { .. })
    }
}

/// Classifies a non-success HTTP status. `message` is the already-sanitized platform message.
pub fn classify_status(
    status: StatusCode,
    retry_after: Option<Duration>,
    message: String,
) -> PlatformError {
    match status.as_u16() {
        401 => PlatformError::Auth { message },
        404 => PlatformError::NotFound { message },
        409 => PlatformError::Conflict { message },
        408 | 425 | 429 => PlatformError::Retriable {
            retry_after,
            message,
        },
        s if s >= 500 => PlatformError::Retriable {
            retry_after,
            message,
        },
        _ => PlatformError::Permanent { message },
    }
}

/// How a transport failure is read depends on whether resending could duplicate work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// get, list, cancel, suspend, resume: repeating is harmless.
    Idempotent,
    /// create: once the request may have left, a failure means we do not know what happened.
    Create,
}

/// What kind of transport failure happened (extracted from reqwest, kept pure for tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportFailure {
    /// Could not connect: nothing was sent.
    Connect,
    /// Timed out, reset, closed early, or the body broke after sending.
    AfterSend,
}

pub fn classify_transport(
    kind: TransportFailure,
    idempotency: Idempotency,
    message: String,
) -> PlatformError {
    match (kind, idempotency) {
        (TransportFailure::AfterSend, Idempotency::Create) => {
            PlatformError::OutcomeUnknown { message }
        }
        _ => PlatformError::Retriable {
            retry_after: None,
            message,
        },
    }
}

/// Parses `Retry-After` (delta-seconds; HTTP dates are rare on these APIs and are ignored).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        let m = || "m".to_string();
        let ra = Some(Duration::from_secs(7));
        let cases: &[(u16, PlatformError)] = &[
            (400, PlatformError::Permanent { message: m() }),
            (401, PlatformError::Auth { message: m() }),
            (403, PlatformError::Permanent { message: m() }),
            (404, PlatformError::NotFound { message: m() }),
            (409, PlatformError::Conflict { message: m() }),
            (422, PlatformError::Permanent { message: m() }),
            (
                429,
                PlatformError::Retriable {
                    retry_after: ra,
                    message: m(),
                },
            ),
            (
                500,
                PlatformError::Retriable {
                    retry_after: ra,
                    message: m(),
                },
            ),
            (
                503,
                PlatformError::Retriable {
                    retry_after: ra,
                    message: m(),
                },
            ),
        ];
        for (code, want) in cases {
            assert_eq!(
                &classify_status(StatusCode::from_u16(*code).unwrap(), ra, m()),
                want,
                "{code}"
            );
        }
    }

    #[test]
    fn transport_classes() {
        use Idempotency::*;
        use TransportFailure::*;
        let m = || "m".to_string();
        assert!(classify_transport(Connect, Create, m()).is_retriable());
        assert!(classify_transport(AfterSend, Idempotent, m()).is_retriable());
        assert_eq!(
            classify_transport(AfterSend, Create, m()),
            PlatformError::OutcomeUnknown { message: m() }
        );
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after(Some("60")), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }
}
