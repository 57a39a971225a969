//! Pure decisions of the ApiClient controller: the status for a refresh outcome, and when to look again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::auth::cache::refresh_at;
use crate::auth::{AuthError, Token};
use crate::crd::ApiClientStatus;
use crate::crd::conditions::{FALSE, TRUE, reasons, set_condition, types};

/// A refresh that worked: the token and the Secret version it came from.
pub struct Success<'a> {
    pub token: &'a Token,
    pub secret_version: &'a str,
}

pub struct Plan {
    pub status: ApiClientStatus,
    pub requeue: Duration,
}

const RETRY: Duration = Duration::from_secs(5);
const RECHECK: Duration = Duration::from_secs(60);

pub fn plan(
    old: &ApiClientStatus,
    generation: Option<i64>,
    outcome: Result<Success<'_>, &AuthError>,
    refresh_before: Option<Duration>,
    now: Timestamp,
) -> Plan {
    let mut status = old.clone();
    status.observed_generation = generation;
    match outcome {
        Ok(Success {
            token,
            secret_version,
        }) => {
            status.token_expires_at = token.expires_at.map(Time);
            status.last_refresh_time = Some(Time(token.obtained_at));
            status.credentials_version = Some(secret_version.to_string());
            let due = refresh_at(token, refresh_before);
            let (message, requeue) = match (token.expires_at, due) {
                (None, _) => (
                    "token obtained; it does not expire".to_string(),
                    RECHECK * 5,
                ),
                // Handed an old token while its refresh is due: the refresh is failing.
                (Some(exp), Some(at)) if at <= now => (
                    format!("token valid until {exp}; refreshing it failed, retrying"),
                    RETRY,
                ),
                (Some(exp), at) => {
                    let wait = at
                        .map(|a| (a.as_second() - now.as_second()).max(1) as u64)
                        .unwrap_or(60);
                    (
                        format!("token valid until {exp}"),
                        Duration::from_secs(wait).min(Duration::from_secs(3600)),
                    )
                }
            };
            let message = match &token.note {
                Some(note) => format!("{message} ({note})"),
                None => message,
            };
            set_condition(
                &mut status.conditions,
                types::READY,
                TRUE,
                reasons::READY,
                &message,
                generation,
                now,
            );
            Plan { status, requeue }
        }
        Err(err) => {
            status.token_expires_at = None;
            set_condition(
                &mut status.conditions,
                types::READY,
                FALSE,
                err.reason(),
                &err.to_string(),
                generation,
                now,
            );
            Plan {
                status,
                requeue: if err.is_transient() { RETRY } else { RECHECK },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::conditions::find;

    fn token(obtained: i64, life: Option<i64>) -> Token {
        Token {
            bearer: "t".to_string().into(),
            obtained_at: Timestamp::from_second(obtained).unwrap(),
            expires_at: life.map(|l| Timestamp::from_second(obtained + l).unwrap()),
            note: None,
            username: None,
        }
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn success_sets_ready_expiry_and_requeues_before_expiry() {
        let t = token(1_000, Some(3600));
        let p = plan(
            &ApiClientStatus::default(),
            Some(2),
            Ok(Success {
                token: &t,
                secret_version: "7",
            }),
            None,
            ts(1_000),
        );
        let ready = find(&p.status.conditions, types::READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            (TRUE, reasons::READY)
        );
        assert_eq!(p.status.token_expires_at, Some(Time(ts(4_600))));
        assert_eq!(p.status.credentials_version.as_deref(), Some("7"));
        assert_eq!(p.status.observed_generation, Some(2));
        assert_eq!(p.requeue, Duration::from_secs(3600 - 300));
    }

    #[test]
    fn errors_map_to_reasons_and_retry_by_kind() {
        let table = [
            (
                AuthError::SecretNotFound("s".into()),
                reasons::SECRET_NOT_FOUND,
                RECHECK,
            ),
            (
                AuthError::InvalidCredentials("HTTP 401".into()),
                reasons::INVALID_CREDENTIALS,
                RECHECK,
            ),
            (
                AuthError::Unreachable("down".into()),
                reasons::TOKEN_ENDPOINT_UNREACHABLE,
                RETRY,
            ),
            (
                AuthError::Discovery("x".into()),
                reasons::DISCOVERY_FAILED,
                RETRY,
            ),
        ];
        for (err, reason, requeue) in table {
            let p = plan(&ApiClientStatus::default(), Some(1), Err(&err), None, ts(0));
            let ready = find(&p.status.conditions, types::READY).unwrap();
            assert_eq!(
                (ready.status.as_str(), ready.reason.as_str()),
                (FALSE, reason)
            );
            assert_eq!(p.requeue, requeue, "{reason}");
            assert!(p.status.token_expires_at.is_none());
        }
    }

    #[test]
    fn an_old_valid_token_stays_ready_with_a_degraded_message() {
        let t = token(0, Some(100));
        let p = plan(
            &ApiClientStatus::default(),
            None,
            Ok(Success {
                token: &t,
                secret_version: "1",
            }),
            None,
            ts(95),
        );
        let ready = find(&p.status.conditions, types::READY).unwrap();
        assert_eq!(ready.status, TRUE);
        assert!(
            ready.message.contains("refreshing it failed"),
            "{}",
            ready.message
        );
        assert_eq!(p.requeue, RETRY);
    }

    #[test]
    fn same_outcome_same_status() {
        let t = token(1_000, Some(3600));
        let first = plan(
            &ApiClientStatus::default(),
            Some(1),
            Ok(Success {
                token: &t,
                secret_version: "1",
            }),
            None,
            ts(1_000),
        )
        .status;
        let again = plan(
            &first,
            Some(1),
            Ok(Success {
                token: &t,
                secret_version: "1",
            }),
            None,
            ts(1_500),
        )
        .status;
        assert_eq!(first, again, "nothing to write");
    }
}
