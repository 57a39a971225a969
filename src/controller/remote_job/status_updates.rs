//! How what the platform said changes a RemoteJob's status: an observed remote job taken in, a
//! finished one closed, a create call's outcome recorded. Pure, like the plan that calls them; kept
//! apart so that [`super::plan`] reads as the decisions alone.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::model::Observed;
use crate::crd::conditions::{self, FALSE, Stamp, TRUE, reasons, types};
use crate::crd::{RemoteJobPhase as Phase, RemoteJobStatus};
use crate::platform::RemoteView;

/// Takes the observed view into status: id, state word, message, url, phase (unless terminal already).
/// `remote_name`: the deterministic remote name of attempt `n`.
pub(super) fn adopt(
    status: &mut RemoteJobStatus,
    view: &RemoteView,
    attempt: i32,
    remote_name: &dyn Fn(i32) -> String,
    at: Stamp,
) {
    if status.remote_id.is_none() {
        status.attempts = status.attempts.max(attempt);
        status.remote_name = Some(remote_name(status.attempts));
    }
    status.remote_id = Some(view.id.clone());
    status.remote_state = Some(view.shown_state());
    status.url = view.shown_url().or(status.url.take());
    if let Some(m) = view.shown_message() {
        status.message = Some(m);
    }
    if status.start_time.is_none() {
        status.start_time = Some(Time(at.now));
    }
    at.on(&mut status.conditions).set(
        types::SUBMITTED,
        TRUE,
        reasons::SUBMITTED,
        "accepted by the platform",
    );
    if !status.phase.is_terminal() && !view.phase.is_terminal() {
        status.phase = view.phase;
        set_running(status, view, at);
    }
}

/// The Running condition for a job in `status.phase`, not finished, as `view` shows it remotely.
fn set_running(status: &mut RemoteJobStatus, view: &RemoteView, at: Stamp) {
    let running = if status.phase == Phase::Running {
        TRUE
    } else {
        FALSE
    };
    at.on(&mut status.conditions).set(
        types::RUNNING,
        running,
        status.phase.as_str(),
        &format!("remote state {}", view.state),
    );
}

/// Closes a finished job; `observed` may carry the platform's own end time.
pub(super) fn finish(
    status: &mut RemoteJobStatus,
    at: Stamp,
    observed: &Observed,
    phase: Phase,
    reason: &str,
    message: &str,
) {
    status.phase = phase;
    status.message = Some(message.to_string());
    if status.completion_time.is_none() {
        // The platform's own end time when it reports one (observed at most a poll later), else now.
        let reported = match observed {
            Observed::Found { view, .. } if view.phase == phase => view.finished_at,
            _ => None,
        };
        status.completion_time = Some(Time(reported.filter(|t| *t <= at.now).unwrap_or(at.now)));
    }
    let (complete, failed) = match phase {
        Phase::Succeeded => (TRUE, FALSE),
        Phase::Failed => (FALSE, TRUE),
        _ => (FALSE, FALSE),
    };
    at.on(&mut status.conditions)
        .set(types::RUNNING, FALSE, reason, message)
        .set(types::COMPLETE, complete, reason, message)
        .set(types::FAILED, failed, reason, message);
}

/// What a create call came back with.
#[derive(Clone, Debug, PartialEq)]
pub enum CreateOutcome {
    Accepted(RemoteView),
    /// The platform refused the spec for good (400/422).
    Rejected(String),
}

/// The status after a create call for the intent recorded in `status`.
pub fn after_create(
    status: &RemoteJobStatus,
    outcome: &CreateOutcome,
    generation: Option<i64>,
    now: Timestamp,
) -> RemoteJobStatus {
    let mut next = status.clone();
    let at = Stamp { generation, now };
    let mut set = |t: &str, v: &str, reason: &str, msg: &str| {
        at.on(&mut next.conditions).set(t, v, reason, msg);
    };
    match outcome {
        CreateOutcome::Accepted(view) => {
            set(
                types::SUBMITTED,
                TRUE,
                reasons::SUBMITTED,
                "accepted by the platform",
            );
            next.remote_id = Some(view.id.clone());
            next.remote_state = Some(view.shown_state());
            next.url = view.shown_url();
            // Right after a create the platform's word may not map yet: it is queued.
            next.phase = match view.phase {
                Phase::Unknown | Phase::Pending | Phase::Submitting => Phase::Queued,
                p => p,
            };
            next.message = Some(format!("submitted attempt {}", next.attempts));
            // Running as the first poll would set it from the same answer, so that poll finds
            // nothing to write (a status write per job otherwise, with no phase change).
            if !next.phase.is_terminal() {
                set_running(&mut next, view, at);
            }
        }
        CreateOutcome::Rejected(message) => {
            set(types::SUBMITTED, FALSE, reasons::SUBMIT_REJECTED, message);
            set(types::FAILED, TRUE, reasons::SUBMIT_REJECTED, message);
            next.phase = Phase::Failed;
            next.message = Some(message.clone());
            next.completion_time = Some(Time(now));
        }
    }
    next
}

/// The status after a create call that brought no answer to record: an error proving nothing was
/// created (the platform answered 5xx/429/401…) lets the next round send it again; a lost answer
/// (dropped, timed out, no id in it) leaves the outcome unknown, to be looked up, searched for, or
/// confirmed by a person — never created blindly.
pub fn after_create_failure(
    status: &RemoteJobStatus,
    err: &crate::platform::RemoteError,
    at: Stamp,
) -> RemoteJobStatus {
    let mut next = status.clone();
    let (value, reason) = match err {
        crate::platform::RemoteError::OutcomeUnknown { .. } => {
            (conditions::UNKNOWN, reasons::OUTCOME_UNKNOWN)
        }
        _ => (FALSE, reasons::SUBMIT_RETRYING),
    };
    let message = format!("submitting attempt {}: {err}", status.attempts);
    at.on(&mut next.conditions)
        .set(types::SUBMITTED, value, reason, &message);
    next.message = Some(message);
    next
}

/// Why a job can be held back before it reaches the platform (or stopped in Submitting).
const HELD_BACK: [&str; 5] = [
    reasons::CLIENT_NOT_FOUND,
    reasons::CLIENT_NOT_READY,
    reasons::CLIENT_NOT_GRANTED,
    reasons::PLATFORM_MISMATCH,
    reasons::OUTCOME_UNKNOWN,
];

/// Pure: the Submitted condition newly False for a reason that holds the job back (ApiClient
/// missing, not Ready, not granted, wrong platform), or for another such reason: worth a Warning
/// event. Submitting itself, and a rejected spec (its Failed phase has its own event), are not.
pub fn held_back<'a>(old: &RemoteJobStatus, new: &'a RemoteJobStatus) -> Option<&'a Condition> {
    let now = conditions::find(&new.conditions, types::SUBMITTED)
        .filter(|c| c.status != TRUE && HELD_BACK.contains(&c.reason.as_str()))?;
    let before = conditions::find(&old.conditions, types::SUBMITTED);
    let same = before.is_some_and(|b| b.status == now.status && b.reason == now.reason);
    (!same).then_some(now)
}

/// Pure: the one event a status change is worth, if any, as (is a Warning, reason): the job reached
/// the platform (Normal `Submitted`, once per attempt) or finished (its phase; a failure is a
/// Warning). Submitting, Queued, Running are in status and its conditions: an event each cost as
/// many apiserver writes as the status itself.
pub fn phase_event(old: &RemoteJobStatus, new: &RemoteJobStatus) -> Option<(bool, &'static str)> {
    if new.phase.is_terminal() {
        return (old.phase != new.phase)
            .then_some((new.phase == Phase::Failed, new.phase.as_str()));
    }
    let submitted = new.remote_id.is_some() && old.remote_id != new.remote_id;
    submitted.then_some((false, reasons::SUBMITTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_submitted(status: &str, reason: &str) -> RemoteJobStatus {
        let mut s = RemoteJobStatus::default();
        let at = Stamp {
            generation: None,
            now: Timestamp::from_second(0).unwrap(),
        };
        at.on(&mut s.conditions)
            .set(types::SUBMITTED, status, reason, "m");
        s
    }

    #[test]
    fn a_job_held_back_is_reported_once_per_reason() {
        let none = RemoteJobStatus::default();
        let granted = with_submitted(FALSE, reasons::CLIENT_NOT_GRANTED);
        let not_ready = with_submitted(FALSE, reasons::CLIENT_NOT_READY);
        let submitted = with_submitted(TRUE, reasons::SUBMITTED);
        assert!(held_back(&none, &granted).is_some(), "first time");
        assert!(held_back(&granted, &granted).is_none(), "no repeat");
        assert_eq!(
            held_back(&granted, &not_ready).map(|c| c.reason.as_str()),
            Some(reasons::CLIENT_NOT_READY),
            "a new reason"
        );
        assert!(held_back(&not_ready, &submitted).is_none(), "going ahead");
        let submitting = with_submitted(FALSE, reasons::SUBMITTING);
        assert!(
            held_back(&none, &submitting).is_none(),
            "submitting is no warning"
        );
        assert!(held_back(&not_ready, &submitting).is_none());
        let rejected = with_submitted(FALSE, reasons::SUBMIT_REJECTED);
        assert!(
            held_back(&submitting, &rejected).is_none(),
            "Failed has its event"
        );
        assert!(held_back(&none, &none).is_none());
        let unknown = with_submitted(conditions::UNKNOWN, reasons::OUTCOME_UNKNOWN);
        assert_eq!(
            held_back(&submitting, &unknown).map(|c| c.reason.as_str()),
            Some(reasons::OUTCOME_UNKNOWN),
            "a lost answer is a warning"
        );
        assert!(held_back(&unknown, &unknown).is_none(), "once");
    }

    #[test]
    fn a_failed_create_says_whether_it_may_exist() {
        use crate::platform::RemoteError;
        let at = Stamp {
            generation: Some(1),
            now: Timestamp::from_second(10).unwrap(),
        };
        let intent = with_submitted(FALSE, reasons::SUBMITTING);
        let table = [
            (
                RemoteError::OutcomeUnknown {
                    message: "dropped".into(),
                },
                conditions::UNKNOWN,
                reasons::OUTCOME_UNKNOWN,
            ),
            (
                RemoteError::Retriable {
                    message: "503".into(),
                    retry_after: None,
                },
                FALSE,
                reasons::SUBMIT_RETRYING,
            ),
            (
                RemoteError::Auth {
                    message: "401".into(),
                },
                FALSE,
                reasons::SUBMIT_RETRYING,
            ),
        ];
        for (err, value, reason) in table {
            let next = after_create_failure(&intent, &err, at);
            let c = conditions::find(&next.conditions, types::SUBMITTED).unwrap();
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                (value, reason),
                "{err:?}"
            );
            assert_eq!(next.phase, intent.phase);
        }
    }

    #[test]
    fn events_only_when_submitted_and_finished() {
        let st = |phase: Phase, id: Option<&str>| RemoteJobStatus {
            phase,
            remote_id: id.map(str::to_string),
            ..Default::default()
        };
        let table = [
            (st(Phase::Pending, None), st(Phase::Submitting, None), None),
            (
                st(Phase::Submitting, None),
                st(Phase::Queued, Some("1")),
                Some((false, "Submitted")),
            ),
            (
                st(Phase::Queued, Some("1")),
                st(Phase::Running, Some("1")),
                None,
            ),
            (
                st(Phase::Running, Some("1")),
                st(Phase::Succeeded, Some("1")),
                Some((false, "Succeeded")),
            ),
            (
                st(Phase::Running, Some("1")),
                st(Phase::Failed, Some("1")),
                Some((true, "Failed")),
            ),
            (
                st(Phase::Failed, Some("1")),
                st(Phase::Failed, Some("1")),
                None,
            ),
            // Rejected at create: only the failure.
            (
                st(Phase::Submitting, None),
                st(Phase::Failed, None),
                Some((true, "Failed")),
            ),
            // A retried attempt's new remote job is news again.
            (
                st(Phase::Submitting, Some("1")),
                st(Phase::Queued, Some("2")),
                Some((false, "Submitted")),
            ),
            (
                st(Phase::Running, Some("1")),
                st(Phase::Suspended, Some("1")),
                None,
            ),
        ];
        for (old, new, want) in table {
            assert_eq!(phase_event(&old, &new), want, "{old:?} -> {new:?}");
        }
    }
}
