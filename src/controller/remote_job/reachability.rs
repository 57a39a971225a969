//! Pure: the `RemoteReachable` condition of a RemoteJob from the outcome of its last platform call —
//! True when the platform answered; False with a reason that says what went wrong (Throttled,
//! Unauthorized, Unreachable, Rejected, Unsupported); Unknown when no call could be sent at all (a
//! local configuration problem, which the platform never saw). Messages say who failed: a token
//! endpoint outage is not "the platform refused the credentials", and a spec field missing here is
//! not "rejected by the platform".

use crate::auth::AuthError;
use crate::crd::conditions::{FALSE, TRUE, UNKNOWN};
use crate::platform::{RemoteError, RemoteView, STATUS_READ_UNSUPPORTED};

/// The condition type.
pub const TYPE: &str = "RemoteReachable";

pub mod reasons {
    /// The platform answered the last call.
    pub const ANSWERED: &str = "Answered";
    /// 429: the platform asks us to slow down.
    pub const THROTTLED: &str = "Throttled";
    /// The platform (401 after a fresh token) or the token endpoint refused the credentials.
    pub const UNAUTHORIZED: &str = "Unauthorized";
    /// No answer (connection refused, timeout, dropped), a 5xx, or the token endpoint is down.
    pub const UNREACHABLE: &str = "Unreachable";
    /// The platform refused the request for good (a 4xx other than 401/404/405/409).
    pub const REJECTED: &str = "Rejected";
    /// The platform does not offer the call (405, 501).
    pub const UNSUPPORTED: &str = "Unsupported";
    /// Nothing was sent: the request could not be made here (spec, Secret, operator policy).
    pub const NOT_SENT: &str = "NotSent";
}

/// Condition status, reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reachability {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Reachability {
    pub fn answered() -> Self {
        Reachability {
            status: TRUE,
            reason: reasons::ANSWERED,
            message: "the platform answered the last call".into(),
        }
    }
}

/// Pure: no call was made, because the ApiClient cannot be used (`why`).
pub fn not_sent(why: &str) -> Reachability {
    Reachability {
        status: UNKNOWN,
        reason: reasons::NOT_SENT,
        message: format!("no call was made to the platform: {why}"),
    }
}

/// Pure: a RemoteJob whose ApiClient `client` is not Ready for its Ready condition's `reason` and
/// `message`: when that is the token endpoint failing or refusing, the platform is out of reach for
/// that reason (False, worded as the token endpoint's); `None` otherwise (see [`not_sent`]).
pub fn of_client_not_ready(client: &str, reason: &str, message: &str) -> Option<Reachability> {
    use crate::crd::conditions::reasons as r;
    let (reason, what) = match reason {
        r::TOKEN_ENDPOINT_UNREACHABLE
        | r::TLS_ERROR
        | r::INVALID_TOKEN_RESPONSE
        | r::DISCOVERY_FAILED => (reasons::UNREACHABLE, "failed"),
        r::INVALID_CREDENTIALS => (reasons::UNAUTHORIZED, "refused the credentials"),
        _ => return None,
    };
    Some(Reachability {
        status: FALSE,
        reason,
        message: format!(
            "no token: the token endpoint of ApiClient {client} {what} ({message}); nothing was \
             sent to the platform"
        ),
    })
}

/// The HTTP status at the start of a classified message ("HTTP 429: …").
fn http_status(message: &str) -> Option<u16> {
    message.strip_prefix("HTTP ")?.get(..3)?.parse().ok()
}

/// Pure: what a failed call says about the platform connection. `token_failure`: why no bearer could
/// be had, when that is what failed (the call then never reached the platform).
pub fn of_error(err: &RemoteError, token_failure: Option<&AuthError>) -> Reachability {
    use reasons::*;
    let r = |status, reason, message: String| Reachability {
        status,
        reason,
        message,
    };
    match err {
        RemoteError::Auth { message } => match token_failure {
            Some(e @ AuthError::InvalidCredentials(_)) => r(
                FALSE,
                UNAUTHORIZED,
                format!(
                    "no token: the token endpoint refused the credentials ({e}); nothing was sent to the platform"
                ),
            ),
            Some(
                e @ (AuthError::Unreachable(_)
                | AuthError::Tls(_)
                | AuthError::InvalidResponse(_)
                | AuthError::Discovery(_)),
            ) => r(
                FALSE,
                UNREACHABLE,
                format!(
                    "no token: the token endpoint failed ({e}); nothing was sent to the platform"
                ),
            ),
            Some(e) => r(
                UNKNOWN,
                NOT_SENT,
                format!(
                    "no token: {e} (a configuration problem here, not the platform's); nothing was sent"
                ),
            ),
            None => r(
                FALSE,
                UNAUTHORIZED,
                format!(
                    "the platform refused the credentials (HTTP 401) even after a token refresh: {message}"
                ),
            ),
        },
        RemoteError::Retriable { message, .. } => match http_status(message) {
            Some(429) => r(
                FALSE,
                THROTTLED,
                format!("the platform throttles us: {message}"),
            ),
            Some(501) => r(
                FALSE,
                UNSUPPORTED,
                format!("the platform does not offer this call: {message}"),
            ),
            Some(_) => r(
                FALSE,
                UNREACHABLE,
                format!("the platform failed: {message}"),
            ),
            None => r(
                FALSE,
                UNREACHABLE,
                format!("no answer from the platform: {message}"),
            ),
        },
        // A 5xx to a create ("HTTP 502: …"): the platform failed, though it may have stored the job.
        RemoteError::OutcomeUnknown { message } if http_status(message).is_some() => r(
            FALSE,
            UNREACHABLE,
            format!("the platform failed: {message}"),
        ),
        RemoteError::OutcomeUnknown { message } => r(
            FALSE,
            UNREACHABLE,
            format!("the platform's answer was lost: {message}"),
        ),
        RemoteError::Permanent { message } => match http_status(message) {
            Some(405 | 501) => r(
                FALSE,
                UNSUPPORTED,
                format!("the platform does not offer this call: {message}"),
            ),
            Some(_) => r(
                FALSE,
                REJECTED,
                format!("rejected by the platform: {message}"),
            ),
            None => r(UNKNOWN, NOT_SENT, format!("not sent: {message}")),
        },
        // The platform answered (a conflict to adopt, an absent job).
        RemoteError::Conflict { .. } | RemoteError::NotFound => Reachability::answered(),
    }
}

/// Pure: what an observation that was answered says: True, unless the platform offers no status
/// read for the job (an observation [`crate::platform::status_read_unsupported`] made), which is
/// False with reason Unsupported and the reads tried.
pub fn of_view(view: &RemoteView) -> Reachability {
    if view.state != STATUS_READ_UNSUPPORTED {
        return Reachability::answered();
    }
    Reachability {
        status: FALSE,
        reason: reasons::UNSUPPORTED,
        message: view
            .shown_message()
            .unwrap_or_else(|| "the platform offers no status read for this job".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_client_without_a_token_says_whose_failure_it_is() {
        use crate::crd::conditions::reasons as r;
        let down = of_client_not_ready("ns/c", r::TOKEN_ENDPOINT_UNREACHABLE, "HTTP 503").unwrap();
        assert_eq!((down.status, down.reason), (FALSE, reasons::UNREACHABLE));
        assert!(
            down.message
                .contains("token endpoint of ApiClient ns/c failed (HTTP 503)")
        );
        assert!(!down.message.contains("platform refused"));
        let refused =
            of_client_not_ready("ns/c", r::INVALID_CREDENTIALS, "invalid_client").unwrap();
        assert_eq!(refused.reason, reasons::UNAUTHORIZED);
        assert_eq!(
            of_client_not_ready("ns/c", r::SECRET_NOT_FOUND, "gone"),
            None
        );
    }

    #[test]
    fn an_unsupported_status_read_is_not_reachable() {
        let tried = ["GET /x answered HTTP 405".to_string()];
        let r = of_view(&crate::platform::status_read_unsupported("7", &tried));
        assert_eq!((r.status, r.reason), (FALSE, reasons::UNSUPPORTED));
        assert!(r.message.contains("HTTP 405"), "{}", r.message);
        let running = RemoteView {
            id: "7".into(),
            state: "Running".into(),
            ..Default::default()
        };
        assert_eq!(of_view(&running), Reachability::answered());
    }

    fn retriable(m: &str) -> RemoteError {
        RemoteError::Retriable {
            message: m.into(),
            retry_after: None,
        }
    }

    #[test]
    fn each_failure_gets_a_true_reason() {
        let auth = RemoteError::Auth {
            message: "token expired".into(),
        };
        let down = AuthError::Unreachable("connection refused".into());
        let refused = AuthError::InvalidCredentials("invalid_client".into());
        let missing = AuthError::SecretNotFound("creds".into());
        let perm = |m: &str| RemoteError::Permanent { message: m.into() };
        let cases: Vec<(RemoteError, Option<&AuthError>, &str, &str, &str)> = vec![
            (
                retriable("HTTP 429: slow down"),
                None,
                FALSE,
                reasons::THROTTLED,
                "throttles",
            ),
            (
                retriable("HTTP 503: busy"),
                None,
                FALSE,
                reasons::UNREACHABLE,
                "failed",
            ),
            (
                retriable("HTTP 501: no"),
                None,
                FALSE,
                reasons::UNSUPPORTED,
                "does not offer",
            ),
            (
                retriable("cannot connect"),
                None,
                FALSE,
                reasons::UNREACHABLE,
                "no answer",
            ),
            (
                RemoteError::OutcomeUnknown {
                    message: "request timed out".into(),
                },
                None,
                FALSE,
                reasons::UNREACHABLE,
                "lost",
            ),
            (
                RemoteError::OutcomeUnknown {
                    message: "HTTP 502: Bad Gateway (the job may have been created)".into(),
                },
                None,
                FALSE,
                reasons::UNREACHABLE,
                "the platform failed: HTTP 502",
            ),
            (
                auth.clone(),
                None,
                FALSE,
                reasons::UNAUTHORIZED,
                "platform refused",
            ),
            (
                auth.clone(),
                Some(&down),
                FALSE,
                reasons::UNREACHABLE,
                "token endpoint failed",
            ),
            (
                auth.clone(),
                Some(&refused),
                FALSE,
                reasons::UNAUTHORIZED,
                "token endpoint refused",
            ),
            (
                auth.clone(),
                Some(&missing),
                UNKNOWN,
                reasons::NOT_SENT,
                "not the platform's",
            ),
            (
                perm("HTTP 400: bad image"),
                None,
                FALSE,
                reasons::REJECTED,
                "rejected by the platform",
            ),
            (
                perm("HTTP 405: Method Not Allowed"),
                None,
                FALSE,
                reasons::UNSUPPORTED,
                "does not offer",
            ),
            (
                perm("spec.runai is not set"),
                None,
                UNKNOWN,
                reasons::NOT_SENT,
                "not sent",
            ),
            (
                RemoteError::NotFound,
                None,
                TRUE,
                reasons::ANSWERED,
                "answered",
            ),
            (
                RemoteError::Conflict {
                    message: "x".into(),
                },
                None,
                TRUE,
                reasons::ANSWERED,
                "answered",
            ),
        ];
        for (i, (err, token, status, reason, says)) in cases.into_iter().enumerate() {
            let r = of_error(&err, token);
            assert_eq!((r.status, r.reason), (status, reason), "case {i}: {err}");
            assert!(r.message.contains(says), "case {i}: {}", r.message);
        }
        // A token endpoint outage never reads as the platform refusing the credentials, and a
        // local error never as a rejection by the platform.
        assert!(
            !of_error(&auth, Some(&down))
                .message
                .contains("platform refused")
        );
        assert!(
            !of_error(&perm("spec.x is not set"), None)
                .message
                .contains("rejected")
        );
    }
}
