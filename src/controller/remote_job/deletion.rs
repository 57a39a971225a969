//! A deletion held by a cancel the platform keeps failing, decided purely. The cancel is retried
//! until the platform confirms (never lose track), but not silently: the `CancelPending` condition
//! says which remote job, for how long and why, and names the way out — `spec.deletionPolicy:
//! Orphan` on the object being deleted releases it at once, with a `RemoteJobOrphaned` event that
//! names the remote job left on the platform.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;

use crate::crd::RemoteJobStatus;
use crate::crd::conditions::{self, Stamp, TRUE};

/// The condition type of a cancel that was sent and not confirmed while the RemoteJob is deleted.
pub const TYPE: &str = "CancelPending";
/// Its reason while the platform keeps failing the cancel (also the Warning event's reason).
pub const CANCEL_FAILING: &str = "CancelFailing";
/// The event of a RemoteJob released by `deletionPolicy: Orphan` while its remote job may run.
pub const ORPHANED: &str = "RemoteJobOrphaned";

/// Pure: `status` after a failed cancel of a RemoteJob deleted at `deleted_at`: the CancelPending
/// condition naming the remote id, when the deletion was asked for, and `why`. `None` when the
/// failure was not a deletion's cancel. The text holds nothing that changes from one retry to the
/// next (no running count of minutes: the deletion time says how long), so a retry that fails as the
/// last one did writes no status.
pub fn cancel_failing(
    status: &RemoteJobStatus,
    deleted_at: Option<Timestamp>,
    at: Stamp,
    why: &str,
) -> Option<RemoteJobStatus> {
    let deleted_at = deleted_at?;
    let id = status
        .remote_id
        .as_deref()
        .filter(|_| status.cancel_pending)?;
    let message = format!(
        "deletion (asked for at {deleted_at}) waits for the cancel of remote job {id}, which keeps \
         failing ({why}); it is retried until the platform confirms. To delete the RemoteJob without \
         cancelling, set spec.deletionPolicy: Orphan (the remote job is then left running)"
    );
    let mut next = status.clone();
    next.message = Some(message.clone());
    at.on(&mut next.conditions)
        .set(TYPE, TRUE, CANCEL_FAILING, &message);
    Some(next)
}

/// Pure: `status.message` while a deletion sends (again) the cancel: the CancelFailing text stays
/// while the condition says the cancel is failing, so a retry does not flip the message to
/// "cancelling" and back (two status writes per retry).
pub fn cancelling_message(status: &RemoteJobStatus) -> String {
    let failing = conditions::find(&status.conditions, TYPE)
        .filter(|c| c.reason == CANCEL_FAILING && c.status == TRUE);
    match (failing, &status.message) {
        (Some(_), Some(m)) => m.clone(),
        _ => CANCELLING.to_string(),
    }
}

/// The message of a deletion's first cancel.
pub const CANCELLING: &str = "cancelling the remote job before deletion";

/// Pure: the CancelPending condition when it newly says the cancel is failing — worth one Warning
/// event per deletion, not one per retry.
pub fn newly_failing<'a>(old: &RemoteJobStatus, new: &'a RemoteJobStatus) -> Option<&'a Condition> {
    let now = conditions::find(&new.conditions, TYPE).filter(|c| c.reason == CANCEL_FAILING)?;
    let before =
        conditions::find(&old.conditions, TYPE).is_some_and(|c| c.reason == CANCEL_FAILING);
    (!before).then_some(now)
}

/// Pure: the event of a deletion released by `deletionPolicy: Orphan`, if a remote job may be left
/// running (known and not finished, or a cancel of it still pending).
pub fn orphaned(status: &RemoteJobStatus) -> Option<String> {
    let id = status.remote_id.as_deref()?;
    (!status.phase.is_terminal() || status.cancel_pending).then(|| {
        format!("deletionPolicy Orphan: remote job {id} is left on the platform without a cancel")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RemoteJobPhase as Phase;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn cancelling() -> RemoteJobStatus {
        RemoteJobStatus {
            phase: Phase::Running,
            remote_id: Some("rid-7".into()),
            cancel_pending: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_failing_cancel_of_a_deletion_says_what_how_long_and_the_way_out() {
        let at = Stamp {
            generation: Some(1),
            now: ts(185),
        };
        let next = cancel_failing(&cancelling(), Some(ts(0)), at, "HTTP 503: busy").unwrap();
        let c = conditions::find(&next.conditions, TYPE).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            (TRUE, CANCEL_FAILING)
        );
        for part in [
            "rid-7",
            "asked for at 2023-11-14T22:13:20Z",
            "HTTP 503: busy",
            "deletionPolicy: Orphan",
        ] {
            assert!(c.message.contains(part), "{part}: {}", c.message);
        }
        assert_eq!(next.message.as_deref(), Some(c.message.as_str()));
        // Not a deletion, no cancel pending, or nothing known remotely: not this condition.
        assert!(cancel_failing(&cancelling(), None, at, "x").is_none());
        let settled = RemoteJobStatus {
            cancel_pending: false,
            ..cancelling()
        };
        assert!(cancel_failing(&settled, Some(ts(0)), at, "x").is_none());
        let unknown = RemoteJobStatus {
            remote_id: None,
            ..cancelling()
        };
        assert!(cancel_failing(&unknown, Some(ts(0)), at, "x").is_none());
    }

    #[test]
    fn a_retry_that_fails_alike_leaves_the_status_as_it_was() {
        let at = |s| Stamp {
            generation: Some(1),
            now: ts(s),
        };
        let first = cancel_failing(&cancelling(), Some(ts(0)), at(61), "HTTP 503: busy").unwrap();
        // (what the last retry left, seconds since deletion, why this one failed) → status unchanged?
        let table = [
            (first.clone(), 125, "HTTP 503: busy", true),
            (first.clone(), 3_600 * 5, "HTTP 503: busy", true),
            (first.clone(), 125, "HTTP 429: slow down", false),
        ];
        for (before, secs, why, same) in table {
            // The retry: the plan's message for the cancel, then the cancel's failure.
            let mut planned = before.clone();
            planned.message = Some(cancelling_message(&planned));
            assert_eq!(planned, before, "the plan keeps the failing text");
            let after = cancel_failing(&planned, Some(ts(0)), at(secs), why).unwrap();
            assert_eq!(after == before, same, "{secs}s, {why}: {:?}", after.message);
        }
        // Before any failure the plan says it is cancelling.
        assert_eq!(cancelling_message(&cancelling()), CANCELLING);
        let stale = RemoteJobStatus {
            message: Some("running".into()),
            ..cancelling()
        };
        assert_eq!(cancelling_message(&stale), CANCELLING);
    }

    #[test]
    fn one_warning_per_deletion_not_per_retry() {
        let at = |s| Stamp {
            generation: Some(1),
            now: ts(s),
        };
        let before = cancelling();
        let first = cancel_failing(&before, Some(ts(0)), at(1), "503").unwrap();
        assert!(newly_failing(&before, &first).is_some());
        let later = cancel_failing(&first, Some(ts(0)), at(300), "429").unwrap();
        assert!(newly_failing(&first, &later).is_none());
    }

    #[test]
    fn an_orphan_release_names_what_is_left() {
        let msg = orphaned(&cancelling()).unwrap();
        assert!(msg.contains("rid-7"), "{msg}");
        let done = RemoteJobStatus {
            phase: Phase::Succeeded,
            cancel_pending: false,
            ..cancelling()
        };
        assert_eq!(orphaned(&done), None);
        assert_eq!(orphaned(&RemoteJobStatus::default()), None);
    }
}
