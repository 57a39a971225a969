//! Pure decisions of the ApiClient controller: the status for a refresh outcome, and when to look again.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

#[cfg(test)]
use crate::auth::cache::RETRY_MIN;
use crate::auth::cache::{RETRY_MAX, refresh_at, retry_after};
use crate::auth::{AuthError, Token};
use crate::crd::ApiClientStatus;
use crate::crd::conditions::{self, FALSE, Stamp, TRUE, reasons, types};

/// A refresh that worked: the token and the Secret version it came from.
pub struct Success<'a> {
    pub token: &'a Token,
    pub secret_version: &'a str,
}

pub struct Plan {
    pub status: ApiClientStatus,
    pub requeue: Duration,
}

const RECHECK: Duration = Duration::from_secs(60);

fn secs_between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_secs((to.as_second() - from.as_second()).max(0) as u64)
}

pub fn plan(
    old: &ApiClientStatus,
    generation: Option<i64>,
    outcome: Result<Success<'_>, &AuthError>,
    refresh_before: Option<Duration>,
    retry_at: Option<Timestamp>,
    now: Timestamp,
) -> Plan {
    let mut p = plan_inner(old, generation, outcome, refresh_before, now);
    // The token cache will not ask a failing endpoint again before `retry_at`: look again then, not
    // sooner (a reconcile before it would only be handed the same failure).
    if let Some(at) = retry_at.filter(|at| *at > now) {
        let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
        // Rounded up (a look a moment early would only be handed the same failure), and never more
        // than the longest backoff.
        let wait = Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        p.requeue = p.requeue.max(wait.clamp(Duration::from_secs(1), RETRY_MAX));
    }
    p
}

/// Pure: a token's lifetime as shown in status, coarse (5 s steps) so that the jitter of a
/// lifetime computed from the platform's own expiry does not make every refresh a status write.
pub fn lifetime(obtained: Timestamp, expires: Timestamp) -> i64 {
    let secs = (expires.as_second() - obtained.as_second()).max(0);
    (secs + 2) / 5 * 5
}

fn plan_inner(
    old: &ApiClientStatus,
    generation: Option<i64>,
    outcome: Result<Success<'_>, &AuthError>,
    refresh_before: Option<Duration>,
    now: Timestamp,
) -> Plan {
    let mut status = old.clone();
    status.observed_generation = generation;
    let at = Stamp { generation, now };
    match outcome {
        Ok(Success {
            token,
            secret_version,
        }) => {
            // No per-token times in status: each refresh would be a write (with 60 s tokens, one
            // per ApiClient a minute while nothing happens). The expiry is a metric.
            status.credentials_version = Some(secret_version.to_string());
            let due = refresh_at(token, refresh_before);
            let mut reason = reasons::READY;
            let (message, requeue) = match (token.expires_at, due) {
                (None, _) => (
                    "token obtained; it does not expire".to_string(),
                    RECHECK * 5,
                ),
                // Handed an old token while its refresh is due: the refresh is failing. Still
                // usable (Ready True), but the reason says so.
                (Some(exp), Some(at)) if at <= now => {
                    reason = reasons::REFRESH_FAILING;
                    (
                        format!("token valid until {exp}; refreshing it failed, retrying"),
                        retry_after(secs_between(at, now), Some(secs_between(now, exp))),
                    )
                }
                (Some(exp), at) => {
                    let wait = at
                        .map(|a| (a.as_second() - now.as_second()).max(1) as u64)
                        .unwrap_or(60);
                    (
                        format!(
                            "token obtained; tokens live {} s and are refreshed ahead of expiry",
                            lifetime(token.obtained_at, exp)
                        ),
                        Duration::from_secs(wait).min(Duration::from_secs(3600)),
                    )
                }
            };
            let message = match &token.note {
                Some(note) => format!("{message} ({note})"),
                None => message,
            };
            at.on(&mut status.conditions)
                .set(types::READY, TRUE, reason, &message);
            Plan { status, requeue }
        }
        Err(err) => {
            // Failing since Ready last turned False (a condition set keeps that time while it stays False).
            let failing_for = conditions::find(&old.conditions, types::READY)
                .filter(|c| c.status == FALSE)
                .map_or(Duration::ZERO, |c| {
                    secs_between(c.last_transition_time.0, now)
                });
            at.on(&mut status.conditions)
                .set(types::READY, FALSE, err.reason(), &err.to_string());
            Plan {
                status,
                requeue: if err.is_transient() {
                    retry_after(failing_for, None)
                } else {
                    RECHECK
                },
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
            None,
            ts(1_000),
        );
        let ready = find(&p.status.conditions, types::READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            (TRUE, reasons::READY)
        );
        assert!(
            ready.message.contains("tokens live 3600 s"),
            "{}",
            ready.message
        );
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
                RETRY_MIN,
            ),
            (
                AuthError::Discovery("x".into()),
                reasons::DISCOVERY_FAILED,
                RETRY_MIN,
            ),
        ];
        for (err, reason, requeue) in table {
            let p = plan(
                &ApiClientStatus::default(),
                Some(1),
                Err(&err),
                None,
                None,
                ts(0),
            );
            let ready = find(&p.status.conditions, types::READY).unwrap();
            assert_eq!(
                (ready.status.as_str(), ready.reason.as_str()),
                (FALSE, reason)
            );
            assert_eq!(p.requeue, requeue, "{reason}");
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
            None,
            ts(95),
        );
        let ready = find(&p.status.conditions, types::READY).unwrap();
        assert_eq!(ready.status, TRUE);
        assert_eq!(
            ready.reason,
            reasons::REFRESH_FAILING,
            "not Ready while failing"
        );
        assert!(
            ready.message.contains("refreshing it failed"),
            "{}",
            ready.message
        );
        // Due at 90 s (10 s margin), failing for 5 s: retry in 2.5 s.
        assert_eq!(p.requeue, Duration::from_millis(2500));
    }

    #[test]
    fn the_token_cache_backoff_sets_the_next_look() {
        let err = AuthError::Unreachable("connection refused".into());
        // Ready just flipped False (the old token lapsed) but the endpoint has been failing for a
        // while: the cache's next try, 20 s away, wins over a fresh 1 s retry.
        let p = plan(
            &ApiClientStatus::default(),
            Some(1),
            Err(&err),
            None,
            Some(ts(120)),
            ts(100),
        );
        assert_eq!(p.requeue, Duration::from_secs(20));
        // A next try in the past changes nothing.
        let p = plan(
            &ApiClientStatus::default(),
            Some(1),
            Err(&err),
            None,
            Some(ts(90)),
            ts(100),
        );
        assert_eq!(p.requeue, RETRY_MIN);
        // 1.5 s away: rounded up to 2 s, not down to an early look.
        let at = Timestamp::from_millisecond(101_500).unwrap();
        let p = plan(
            &ApiClientStatus::default(),
            Some(1),
            Err(&err),
            None,
            Some(at),
            ts(100),
        );
        assert_eq!(p.requeue, Duration::from_secs(2));
        // A next try far away (a wall clock stepped back) waits no longer than the longest backoff.
        let p = plan(
            &ApiClientStatus::default(),
            Some(1),
            Err(&err),
            None,
            Some(ts(9_999)),
            ts(100),
        );
        assert_eq!(p.requeue, RETRY_MAX);
    }

    #[test]
    fn a_lasting_outage_is_retried_less_often() {
        let err = AuthError::Unreachable("connection refused".into());
        let first = plan(
            &ApiClientStatus::default(),
            Some(1),
            Err(&err),
            None,
            None,
            ts(100),
        );
        assert_eq!(first.requeue, RETRY_MIN);
        // Same failure 40 s later: Ready has been False since 100, so back off (capped).
        let later = plan(&first.status, Some(1), Err(&err), None, None, ts(140));
        assert_eq!(later.requeue, Duration::from_secs(20));
        assert_eq!(later.status, first.status, "no status write for a repeat");
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
            None,
            ts(1_500),
        )
        .status;
        assert_eq!(first, again, "nothing to write");
    }

    #[test]
    fn a_refresh_with_the_same_lifetime_writes_nothing() {
        let first = token(1_000, Some(60));
        let old = plan(
            &ApiClientStatus::default(),
            Some(1),
            Ok(Success {
                token: &first,
                secret_version: "7",
            }),
            None,
            None,
            ts(1_000),
        )
        .status;
        // The next token, 50 s later, a second shorter by the platform's clock.
        let next = token(1_050, Some(59));
        let p = plan(
            &old,
            Some(1),
            Ok(Success {
                token: &next,
                secret_version: "7",
            }),
            None,
            None,
            ts(1_050),
        );
        assert_eq!(p.status, old, "a routine refresh changes no status");
    }

    #[test]
    fn lifetimes_are_coarse() {
        for (secs, shown) in [(60, 60), (59, 60), (62, 60), (63, 65), (300, 300), (0, 0)] {
            assert_eq!(lifetime(ts(0), ts(secs)), shown, "{secs}");
        }
    }
}
