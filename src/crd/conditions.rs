//! Condition types, reason constants and the one helper that sets a condition ([`Stamp::on`]).
//!
//! Follows cert-manager: `lastTransitionTime` changes only when the status flips, `observedGeneration`
//! is stamped on every condition, and callers compare before writing so an unchanged status is never patched.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Condition types.
pub mod types {
    /// ApiClient: credentials were turned into a usable token.
    pub const READY: &str = "Ready";
    /// RemoteJob: the remote platform accepted the job.
    pub const SUBMITTED: &str = "Submitted";
    /// RemoteJob: the remote job is running.
    pub const RUNNING: &str = "Running";
    /// RemoteJob: the remote job finished successfully.
    pub const COMPLETE: &str = "Complete";
    /// RemoteJob: the remote job failed for good (no retries left, deadline, rejected spec).
    pub const FAILED: &str = "Failed";
}

/// Reasons. CamelCase, stable: alerting rules and users match on them.
pub mod reasons {
    // ApiClient
    pub const READY: &str = "Ready";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
    pub const INVALID_CREDENTIALS: &str = "InvalidCredentials";
    pub const TOKEN_ENDPOINT_UNREACHABLE: &str = "TokenEndpointUnreachable";
    pub const TLS_ERROR: &str = "TlsError";
    pub const INVALID_TOKEN_RESPONSE: &str = "InvalidTokenResponse";
    pub const DISCOVERY_FAILED: &str = "DiscoveryFailed";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const REFRESH_FAILING: &str = "RefreshFailing";
    /// The operator's egress policy refuses an address the ApiClient names (or its names resolve to);
    /// also on the RemoteJobs that use it.
    pub const EGRESS_DENIED: &str = "EgressDenied";
    /// allowInsecureHttp / tls.insecureSkipVerify without the operator's --permit-insecure; also on
    /// the RemoteJobs that use it.
    pub const INSECURE_NOT_PERMITTED: &str = "InsecureNotPermitted";
    // RemoteJob
    pub const CLIENT_NOT_FOUND: &str = "ApiClientNotFound";
    pub const CLIENT_NOT_READY: &str = "ApiClientNotReady";
    pub const CLIENT_NOT_GRANTED: &str = "ApiClientNotGranted";
    pub const PLATFORM_MISMATCH: &str = "PlatformMismatch";
    pub const SUBMITTING: &str = "Submitting";
    pub const SUBMITTED: &str = "Submitted";
    pub const SUBMIT_REJECTED: &str = "SubmitRejected";
    /// The submit was answered with an error that proves nothing was created: it is sent again.
    pub const SUBMIT_RETRYING: &str = "SubmitRetrying";
    /// The answer to a submit was lost (dropped, timed out, or it held no id): the job may or may not
    /// exist remotely.
    pub const OUTCOME_UNKNOWN: &str = "OutcomeUnknown";
    /// A RemoteJob was deleted while its remote job may still run and nothing can cancel it.
    pub const MAY_BE_ORPHANED: &str = "RemoteJobMayBeOrphaned";
    /// A cancel was sent and not confirmed; it is retried.
    pub const CANCEL_PENDING: &str = "CancelPending";
    pub const BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    pub const SUSPENDED: &str = "Suspended";
    /// Someone stopped the remote job on the platform (not jobrelay): shown, and not resumed.
    pub const STOPPED_ON_PLATFORM: &str = "StoppedOnPlatform";
    pub const COMPLETED: &str = "Completed";
    pub const REMOTE_FAILED: &str = "RemoteFailed";
    pub const CANCELLED: &str = "Cancelled";
}

/// Condition status values.
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// What every condition set records besides itself: the generation observed and the time of the change.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub generation: Option<i64>,
    pub now: Timestamp,
}

impl Stamp {
    /// `conditions`, each condition set there stamped with this generation and time.
    pub fn on(self, conditions: &mut Vec<Condition>) -> Stamped<'_> {
        Stamped {
            conditions,
            at: self,
        }
    }
}

/// A condition list being written; see [`Stamp::on`].
pub struct Stamped<'a> {
    conditions: &'a mut Vec<Condition>,
    at: Stamp,
}

impl Stamped<'_> {
    /// Sets (adds or updates) the condition of `type_`.
    ///
    /// `lastTransitionTime` is kept when the status did not change, so a re-reconcile that finds the
    /// same state produces a byte-identical condition and no status write.
    pub fn set(&mut self, type_: &str, status: &str, reason: &str, message: &str) -> &mut Self {
        let Stamp { generation, now } = self.at;
        let next = |last_transition_time: Time| Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time,
        };
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => {
                let ltt = if existing.status == status {
                    existing.last_transition_time.clone()
                } else {
                    Time(now)
                };
                *existing = next(ltt);
            }
            None => self.conditions.push(next(Time(now))),
        }
        self
    }
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition of `type_` exists with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == TRUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn at(generation: Option<i64>, now: Timestamp) -> Stamp {
        Stamp { generation, now }
    }

    #[test]
    fn transition_time_changes_only_on_flip() {
        let mut c = Vec::new();
        at(Some(1), ts(10))
            .on(&mut c)
            .set(types::READY, FALSE, reasons::SECRET_NOT_FOUND, "a");
        assert_eq!(c[0].last_transition_time, Time(ts(10)));
        // same status, new reason and message: time kept
        at(Some(2), ts(20))
            .on(&mut c)
            .set(types::READY, FALSE, reasons::INVALID_CREDENTIALS, "b");
        assert_eq!(c[0].last_transition_time, Time(ts(10)));
        assert_eq!(c[0].reason, reasons::INVALID_CREDENTIALS);
        assert_eq!(c[0].observed_generation, Some(2));
        // flip: time moves
        at(Some(2), ts(30))
            .on(&mut c)
            .set(types::READY, TRUE, reasons::READY, "ok");
        assert_eq!(c[0].last_transition_time, Time(ts(30)));
        assert_eq!(c.len(), 1);
        assert!(is_true(&c, types::READY));
    }

    #[test]
    fn unchanged_condition_is_identical() {
        let mut c = Vec::new();
        at(Some(1), ts(10))
            .on(&mut c)
            .set(types::READY, TRUE, reasons::READY, "ok");
        let before = c.clone();
        at(Some(1), ts(99))
            .on(&mut c)
            .set(types::READY, TRUE, reasons::READY, "ok");
        assert_eq!(before, c);
    }

    #[test]
    fn conditions_of_other_types_are_kept() {
        let mut c = Vec::new();
        at(None, ts(1))
            .on(&mut c)
            .set(types::SUBMITTED, TRUE, reasons::SUBMITTED, "");
        at(None, ts(2))
            .on(&mut c)
            .set(types::RUNNING, TRUE, reasons::SUBMITTED, "");
        assert_eq!(c.len(), 2);
        assert!(find(&c, types::COMPLETE).is_none());
    }
}
