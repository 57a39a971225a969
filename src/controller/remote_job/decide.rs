//! What a remote step's answer means, decided purely (the reconcile in `mod.rs` only carries it out):
//! a conflict on create is looked up and adopted, a permanent refusal rejects the spec, a job already
//! gone counts as cancelled, a search for a lost start plans again, and a successful step looks back
//! soon.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::model::Observed;
use super::status_updates::CreateOutcome;
use crate::crd::RemoteJobStatus;
use crate::crd::conditions::{self, types};
use crate::platform::{RemoteError, RemoteResult, RemoteView};

/// What to do with the create call's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum AfterCreate {
    /// Write this outcome to status.
    Record(CreateOutcome),
    /// The name is taken (an earlier try of ours created it): look it up and adopt.
    LookUp,
    /// Nothing to record: report the error and try again later.
    Fail(RemoteError),
}

pub fn create_answer(answer: RemoteResult<RemoteView>) -> AfterCreate {
    match answer {
        Ok(view) => AfterCreate::Record(CreateOutcome::Accepted(view)),
        Err(RemoteError::Conflict { .. }) => AfterCreate::LookUp,
        Err(RemoteError::Permanent { message }) => {
            AfterCreate::Record(CreateOutcome::Rejected(message))
        }
        Err(e) => AfterCreate::Fail(e),
    }
}

/// The lookup after a conflict: adopt what carries our name.
pub fn conflict_lookup(found: Option<RemoteView>) -> Result<CreateOutcome, RemoteError> {
    found
        .map(CreateOutcome::Accepted)
        .ok_or_else(|| RemoteError::OutcomeUnknown {
            message: "conflict, but no job by that name".into(),
        })
}

/// A cancel, suspend or resume: a job the platform no longer has counts as done.
pub fn call_answer(answer: RemoteResult<()>) -> RemoteResult<()> {
    match answer {
        Err(RemoteError::NotFound) => Ok(()),
        other => other,
    }
}

/// What to do after searching for a start whose answer was lost.
#[derive(Clone, Debug, PartialEq)]
pub enum AfterSearch {
    /// Fold this observation in and plan again: found → adopt; absent → create.
    PlanAgain(Observed),
    Done(RemoteResult<()>),
}

/// `observed`: what this round's plan saw; `attempt`: the attempt whose start was searched for.
pub fn search_answer(
    answer: RemoteResult<Option<RemoteView>>,
    observed: &Observed,
    attempt: i32,
) -> AfterSearch {
    match answer {
        Ok(Some(view)) => AfterSearch::PlanAgain(Observed::Found { view, attempt }),
        // Plan again once with the absence; a second absence ends the round.
        Ok(None) if *observed != Observed::Absent => AfterSearch::PlanAgain(Observed::Absent),
        Ok(None) => AfterSearch::Done(Ok(())),
        Err(e) => AfterSearch::Done(Err(e)),
    }
}

/// The longest wait between two tries of a failing remote call.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The wait after the `failures`-th failure in a row (1-based): doubling from 1 s up to
/// [`BACKOFF_MAX`], never shorter than what the error asks for (a platform's Retry-After).
pub fn retry_delay(err: &RemoteError, failures: u32) -> Duration {
    let doubling = Duration::from_secs(1u64 << failures.saturating_sub(1).min(16));
    doubling.max(err.requeue_after()).min(BACKOFF_MAX)
}

/// The status once the platform accepted a cancel (or no longer had the job).
pub fn cancel_confirmed(status: &RemoteJobStatus) -> RemoteJobStatus {
    RemoteJobStatus {
        cancel_pending: false,
        ..status.clone()
    }
}

/// The message for a failed remote call, saying what it means for a pending cancel.
pub fn trouble_message(status: &RemoteJobStatus, err: &dyn std::fmt::Display) -> String {
    if status.cancel_pending {
        format!("cancel pending, retrying: {err}")
    } else {
        err.to_string()
    }
}

/// After a remote step succeeded: look again soon (at most 2 s) to see its effect.
pub fn requeue_after_step(planned: Option<Duration>) -> Duration {
    planned
        .unwrap_or(Duration::from_secs(5))
        .min(Duration::from_secs(2))
}

/// The time the current submission intent was recorded (for matching a start whose answer was lost).
pub fn intent_time(status: &RemoteJobStatus, now: Timestamp) -> Timestamp {
    conditions::find(&status.conditions, types::SUBMITTED)
        .map(|c| c.last_transition_time.0)
        .or(status.start_time.as_ref().map(|t| t.0))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RemoteJobPhase;

    fn view(id: &str) -> RemoteView {
        RemoteView {
            id: id.into(),
            phase: RemoteJobPhase::Queued,
            ..Default::default()
        }
    }

    fn retriable() -> RemoteError {
        RemoteError::Retriable {
            message: "503".into(),
            retry_after: None,
        }
    }

    #[test]
    fn create_answers() {
        let unknown = RemoteError::OutcomeUnknown {
            message: "dropped".into(),
        };
        let table = [
            (
                Ok(view("1")),
                AfterCreate::Record(CreateOutcome::Accepted(view("1"))),
            ),
            (
                Err(RemoteError::Conflict {
                    message: "taken".into(),
                }),
                AfterCreate::LookUp,
            ),
            (
                Err(RemoteError::Permanent {
                    message: "bad image".into(),
                }),
                AfterCreate::Record(CreateOutcome::Rejected("bad image".into())),
            ),
            (Err(retriable()), AfterCreate::Fail(retriable())),
            (Err(unknown.clone()), AfterCreate::Fail(unknown)),
            (
                Err(RemoteError::NotFound),
                AfterCreate::Fail(RemoteError::NotFound),
            ),
        ];
        for (answer, want) in table {
            assert_eq!(create_answer(answer.clone()), want, "{answer:?}");
        }
    }

    #[test]
    fn a_conflict_adopts_what_has_our_name() {
        assert_eq!(
            conflict_lookup(Some(view("7"))),
            Ok(CreateOutcome::Accepted(view("7")))
        );
        assert!(matches!(
            conflict_lookup(None),
            Err(RemoteError::OutcomeUnknown { .. })
        ));
    }

    #[test]
    fn a_job_already_gone_counts_as_done() {
        assert_eq!(call_answer(Err(RemoteError::NotFound)), Ok(()));
        assert_eq!(call_answer(Ok(())), Ok(()));
        assert_eq!(call_answer(Err(retriable())), Err(retriable()));
        let refused = Err(RemoteError::Permanent {
            message: "cannot resume".into(),
        });
        assert_eq!(call_answer(refused.clone()), refused);
    }

    #[test]
    fn a_search_plans_again_at_most_once_per_absence() {
        let found = Observed::Found {
            view: view("9"),
            attempt: 2,
        };
        let table = [
            (
                Ok(Some(view("9"))),
                Observed::Nothing,
                AfterSearch::PlanAgain(found.clone()),
            ),
            (
                Ok(Some(view("9"))),
                Observed::Absent,
                AfterSearch::PlanAgain(found),
            ),
            (
                Ok(None),
                Observed::Nothing,
                AfterSearch::PlanAgain(Observed::Absent),
            ),
            (Ok(None), Observed::Absent, AfterSearch::Done(Ok(()))),
            (
                Err(retriable()),
                Observed::Nothing,
                AfterSearch::Done(Err(retriable())),
            ),
        ];
        for (answer, observed, want) in table {
            assert_eq!(
                search_answer(answer.clone(), &observed, 2),
                want,
                "{answer:?} {observed:?}"
            );
        }
    }

    #[test]
    fn failing_calls_back_off_up_to_five_minutes() {
        let s = Duration::from_secs;
        let limited = RemoteError::Retriable {
            message: "429".into(),
            retry_after: Some(s(7)),
        };
        let refused = RemoteError::Permanent {
            message: "400".into(),
        };
        for (err, failures, want) in [
            (retriable(), 1, s(2)),
            (retriable(), 2, s(2)),
            (retriable(), 3, s(4)),
            (retriable(), 6, s(32)),
            (retriable(), 10, s(300)),
            (retriable(), u32::MAX, s(300)),
            (limited.clone(), 1, s(7)),
            (limited, 5, s(16)),
            (refused.clone(), 1, s(15)),
            (refused, 20, s(300)),
        ] {
            assert_eq!(retry_delay(&err, failures), want, "{err:?} {failures}");
        }
    }

    #[test]
    fn a_confirmed_cancel_is_no_longer_pending() {
        let pending = RemoteJobStatus {
            cancel_pending: true,
            message: Some("activeDeadlineSeconds (3s) exceeded".into()),
            ..Default::default()
        };
        let after = cancel_confirmed(&pending);
        assert!(!after.cancel_pending);
        assert_eq!(after.message, pending.message);
        assert_eq!(
            trouble_message(&pending, &retriable()),
            "cancel pending, retrying: platform temporarily unavailable: 503"
        );
        assert_eq!(
            trouble_message(&after, &retriable()),
            "platform temporarily unavailable: 503"
        );
    }

    #[test]
    fn a_step_looks_back_within_two_seconds() {
        let s = Duration::from_secs;
        for (planned, want) in [
            (None, s(2)),
            (Some(s(1)), s(1)),
            (Some(s(2)), s(2)),
            (Some(s(30)), s(2)),
        ] {
            assert_eq!(requeue_after_step(planned), want, "{planned:?}");
        }
    }

    #[test]
    fn the_intent_time_is_when_submitted_flipped() {
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let earlier: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(intent_time(&RemoteJobStatus::default(), now), now);
        let started = RemoteJobStatus {
            start_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                earlier,
            )),
            ..Default::default()
        };
        assert_eq!(intent_time(&started, now), earlier);
    }
}
