//! Table tests of the plan for issue 11's remaining holes: a deadline while a submission's outcome
//! is unknown; what a platform says of a job it cancelled (deleted there).

use super::tests::*;
use super::*;
use crate::crd::conditions;

/// A job whose intent (attempt 1) is recorded, started at 0, with a 50 s deadline.
fn open_intent(c: &mut Case) -> RemoteJobStatus {
    c.spec.active_deadline_seconds = Some(50);
    c.now = 0;
    let status = c.run().status;
    assert_eq!(status.phase, Phase::Submitting);
    c.now = 60;
    status
}

#[test]
fn a_deadline_searches_for_an_unknown_start_first_then_cancels_what_it_finds() {
    let mut c = Case::new();
    c.caps = NO_NAMES;
    c.status = open_intent(&mut c);
    let p = c.run();
    assert_eq!(p.step, Step::ReconcileUnknownStart, "search before ending");
    assert_eq!(p.status.phase, Phase::Submitting, "not finished yet");
    assert!(p.warning.is_none());
    // Found: adopted, ended and cancelled (a pending cancel, retried until confirmed).
    c.observed = found(Phase::Running, 1);
    let p = c.run();
    assert_eq!((p.step, p.status.phase), (Step::Cancel, Phase::Failed));
    assert!(p.status.cancel_pending);
    assert_eq!(p.status.remote_id.as_deref(), Some("rid-1"));
    assert_eq!(
        conditions::find(&p.status.conditions, types::FAILED)
            .unwrap()
            .reason,
        reasons::DEADLINE_EXCEEDED
    );
    // Not found: nothing runs; ended without a cancel or a warning.
    c.observed = Observed::Absent;
    let p = c.run();
    assert_eq!((p.step, p.status.phase), (Step::None, Phase::Failed));
    assert!(p.warning.is_none());
}

#[test]
fn a_deadline_on_an_unknown_outcome_that_cannot_be_found_warns() {
    let mut c = Case::new();
    c.spec = generic_spec(false);
    c.caps = NO_NAMES;
    let status = open_intent(&mut c);
    c.with_submitted(
        status.clone(),
        conditions::UNKNOWN,
        reasons::OUTCOME_UNKNOWN,
    );
    let p = c.run();
    assert_eq!((p.step, p.status.phase), (Step::None, Phase::Failed));
    let (reason, msg) = p.warning.expect("a warning");
    assert_eq!(reason, reasons::MAY_BE_ORPHANED);
    assert!(
        msg.contains("ns-job-abcd-1") && msg.contains("ApiClient c"),
        "{msg}"
    );
    // A clean refusal (503) created nothing: no warning.
    c.with_submitted(status, conditions::FALSE, reasons::SUBMIT_RETRYING);
    let p = c.run();
    assert_eq!((p.step, p.status.phase), (Step::None, Phase::Failed));
    assert!(p.warning.is_none());
}

#[test]
fn a_deadline_with_a_name_lookup_decides_on_what_the_lookup_saw() {
    let mut c = Case::new();
    c.status = open_intent(&mut c);
    c.observed = found(Phase::Queued, 1);
    let p = c.run();
    assert_eq!((p.step, p.status.phase), (Step::Cancel, Phase::Failed));
    c.observed = Observed::Absent;
    let p = c.run();
    assert_eq!((p.step, p.warning), (Step::None, None));
}

#[test]
fn a_stop_made_on_the_platform_is_shown_and_not_resumed() {
    let mut c = Case::new();
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Suspended, 1);
    let p = c.run();
    assert_eq!((p.step, p.status.phase), (Step::None, Phase::Suspended));
    assert_eq!((p.status.attempts, p.status.failed_attempts), (1, 0));
    let running = conditions::find(&p.status.conditions, types::RUNNING).unwrap();
    assert_eq!(running.reason, reasons::STOPPED_ON_PLATFORM);
    assert!(
        p.status
            .message
            .as_deref()
            .unwrap()
            .contains("remote state 'Suspended'")
    );
    // Planned again on the same observation: still left alone.
    c.status = p.status;
    assert_eq!(c.run().step, Step::None);
}

#[test]
fn jobrelay_resumes_only_the_stops_it_made() {
    let mut c = Case::new();
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Running, 1);
    // spec.suspend: jobrelay stops it and marks the stop as its own (written before the call).
    c.spec.suspend = true;
    let p = c.run();
    assert_eq!(p.step, Step::Suspend);
    assert!(p.status.stopped_by_operator);
    c.status = p.status;
    c.observed = found(Phase::Suspended, 1);
    assert!(c.run().status.stopped_by_operator);
    // Unsuspended: resumed, and the mark goes once it runs again.
    c.spec.suspend = false;
    assert_eq!(c.run().step, Step::Resume);
    c.observed = found(Phase::Running, 1);
    let p = c.run();
    assert!(!p.status.stopped_by_operator);
    // A stop someone made, then taken over by suspending and unsuspending the RemoteJob.
    c.status = p.status;
    c.observed = found(Phase::Suspended, 1);
    assert_eq!(c.run().step, Step::None);
    c.spec.suspend = true;
    let p = c.run();
    assert_eq!(p.step, Step::None);
    assert!(p.status.stopped_by_operator);
    c.status = p.status;
    c.spec.suspend = false;
    assert_eq!(c.run().step, Step::Resume);
}

#[test]
fn a_cancel_on_the_platform_keeps_what_the_platform_said_of_it() {
    let mut c = Case::new();
    c.status = submitted(Phase::Running, 1);
    // (the view's message) → status.message
    let table = [
        (None, "the remote job was cancelled"),
        (
            Some("deleted on the platform at 2024-03-01T12:20:00Z, in phase Deleting"),
            "the remote job was cancelled: deleted on the platform at 2024-03-01T12:20:00Z, in phase Deleting",
        ),
    ];
    for (said, want) in table {
        let mut v = view(Phase::Cancelled);
        v.message = said.map(Into::into);
        c.observed = Observed::Found {
            view: v,
            attempt: 1,
        };
        let p = c.run();
        assert_eq!(p.status.phase, Phase::Cancelled);
        assert_eq!(p.status.message.as_deref(), Some(want));
    }
}
