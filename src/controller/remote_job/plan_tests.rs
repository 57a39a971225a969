//! Table tests of the RemoteJob plan: (spec, status, client, observation) → (status, step).

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::controller::remote_job::status_updates::{CreateOutcome, after_create};
use crate::crd::conditions;
use crate::crd::{ClientRef, RemoteJobSpec, RunaiJob};
use crate::platform::RemoteView;

pub(super) fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

pub(super) fn spec() -> RemoteJobSpec {
    serde_json::from_value(serde_json::json!({
        "clientRef": {"name": "c"},
        "runai": {"projectId": "p", "clusterId": "c", "image": "i"}
    }))
    .unwrap()
}

pub(super) fn name(n: i32) -> String {
    format!("ns-job-abcd-{n}")
}

pub(super) const CAPS: Capabilities = Capabilities {
    lookup_by_name: true,
    suspend_resume: true,
};
pub(super) const NO_NAMES: Capabilities = Capabilities {
    lookup_by_name: false,
    suspend_resume: false,
};

pub(super) fn view(phase: Phase) -> RemoteView {
    RemoteView {
        id: "rid-1".into(),
        phase,
        state: format!("{phase:?}"),
        message: None,
        url: Some("https://x/1".into()),
        ..Default::default()
    }
}

pub(super) fn found(phase: Phase, attempt: i32) -> Observed {
    Observed::Found {
        view: view(phase),
        attempt,
    }
}

pub(super) struct Case<'a> {
    pub(super) spec: RemoteJobSpec,
    pub(super) status: RemoteJobStatus,
    pub(super) deleting: bool,
    pub(super) client: ClientState,
    pub(super) caps: Capabilities,
    pub(super) observed: Observed,
    pub(super) now: i64,
    pub(super) confirm: Option<String>,
    pub(super) deleted_at: Option<i64>,
    pub(super) _p: std::marker::PhantomData<&'a ()>,
}

impl Case<'_> {
    pub(super) fn new() -> Self {
        Case {
            spec: spec(),
            status: RemoteJobStatus::default(),
            deleting: false,
            client: ClientState::Ready,
            caps: CAPS,
            observed: Observed::Nothing,
            now: 100,
            confirm: None,
            deleted_at: None,
            _p: Default::default(),
        }
    }
    /// Sets `status`'s Submitted condition (as the IO records a create's answer) and plans on it.
    pub(super) fn with_submitted(
        &mut self,
        mut status: RemoteJobStatus,
        value: &str,
        reason: &str,
    ) {
        self.at_now()
            .on(&mut status.conditions)
            .set(types::SUBMITTED, value, reason, "m");
        self.status = status;
    }
    pub(super) fn at_now(&self) -> Stamp {
        Stamp {
            generation: Some(1),
            now: ts(self.now),
        }
    }
    pub(super) fn run(&self) -> Plan {
        plan(&Input {
            spec: &self.spec,
            status: &self.status,
            at: Stamp {
                generation: Some(1),
                now: ts(self.now),
            },
            deleting: self.deleting,
            client: &self.client,
            caps: self.caps,
            observed: &self.observed,
            remote_name: &name,
            confirm_resubmit: self.confirm.as_deref(),
            deleted_at: self.deleted_at.map(ts),
        })
    }
}

pub(super) fn submitted(phase: Phase, attempts: i32) -> RemoteJobStatus {
    RemoteJobStatus {
        phase,
        remote_id: Some("rid-1".into()),
        remote_name: Some(name(attempts)),
        attempts,
        // Every earlier attempt failed.
        failed_attempts: attempts - 1,
        start_time: Some(Time(ts(0))),
        ..Default::default()
    }
}

#[test]
fn fresh_job_records_intent_then_creates() {
    let p = Case::new().run();
    assert_eq!(p.step, Step::Create);
    assert_eq!(p.status.phase, Phase::Submitting);
    assert_eq!(p.status.attempts, 1);
    assert_eq!(p.status.remote_name.as_deref(), Some("ns-job-abcd-1"));
    assert!(p.status.remote_id.is_none());
    assert_eq!(
        conditions::find(&p.status.conditions, types::SUBMITTED)
            .unwrap()
            .reason,
        reasons::SUBMITTING
    );
}

#[test]
fn submitting_observes_before_creating_again() {
    // Intent recorded, create outcome unknown; lookup says absent → create the same attempt again.
    let mut c = Case::new();
    c.status = Case::new().run().status;
    c.observed = Observed::Absent;
    let p = c.run();
    assert_eq!((p.step.clone(), p.status.attempts), (Step::Create, 1));
    assert_eq!(p.status.remote_name.as_deref(), Some("ns-job-abcd-1"));
    // Lookup finds the job (commit-then-drop): adopt, no create.
    c.observed = found(Phase::Queued, 1);
    let p = c.run();
    assert_eq!(p.step, Step::None);
    assert_eq!(
        (p.status.phase, p.status.remote_id.as_deref()),
        (Phase::Queued, Some("rid-1"))
    );
    assert!(conditions::is_true(&p.status.conditions, types::SUBMITTED));
}

#[test]
fn platforms_without_names_reconcile_an_unknown_start_instead_of_creating() {
    let mut c = Case::new();
    c.caps = NO_NAMES;
    c.status = Case::new().run().status; // Submitting
    assert_eq!(c.run().step, Step::ReconcileUnknownStart);
    // Listing proved there is no such run: now a create is safe.
    c.observed = Observed::Absent;
    assert_eq!(c.run().step, Step::Create);
}

#[test]
fn wiped_status_adopts_the_latest_attempt_found_by_name() {
    let mut c = Case::new();
    c.observed = found(Phase::Running, 2);
    let p = c.run();
    assert_eq!(p.step, Step::None);
    assert_eq!((p.status.attempts, p.status.phase), (2, Phase::Running));
    assert_eq!(p.status.remote_name.as_deref(), Some("ns-job-abcd-2"));
}

#[test]
fn client_not_ready_waits_with_a_condition() {
    let mut c = Case::new();
    c.client = ClientState::Unusable {
        reason: reasons::CLIENT_NOT_READY,
        message: "ApiClient c is not Ready".into(),
    };
    let p = c.run();
    assert_eq!((p.step, p.status.phase), (Step::None, Phase::Pending));
    let cond = conditions::find(&p.status.conditions, types::SUBMITTED).unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        (FALSE, reasons::CLIENT_NOT_READY)
    );
}

#[test]
fn suspended_before_submission_submits_nothing() {
    let mut c = Case::new();
    c.spec.suspend = true;
    let p = c.run();
    assert_eq!(
        (p.step, p.status.phase, p.status.attempts),
        (Step::None, Phase::Suspended, 0)
    );
    c.spec.suspend = false;
    c.status = p.status;
    assert_eq!(c.run().step, Step::Create);
}

#[test]
fn observed_phases_map_to_outcomes() {
    struct Row {
        observed: Phase,
        backoff_limit: i32,
        attempts: i32,
        want_phase: Phase,
        want_step: Step,
        want_reason: Option<&'static str>,
    }
    let rows = [
        Row {
            observed: Phase::Queued,
            backoff_limit: 0,
            attempts: 1,
            want_phase: Phase::Queued,
            want_step: Step::None,
            want_reason: None,
        },
        Row {
            observed: Phase::Running,
            backoff_limit: 0,
            attempts: 1,
            want_phase: Phase::Running,
            want_step: Step::None,
            want_reason: None,
        },
        Row {
            observed: Phase::Succeeded,
            backoff_limit: 0,
            attempts: 1,
            want_phase: Phase::Succeeded,
            want_step: Step::None,
            want_reason: Some(reasons::COMPLETED),
        },
        Row {
            observed: Phase::Failed,
            backoff_limit: 0,
            attempts: 1,
            want_phase: Phase::Failed,
            want_step: Step::None,
            want_reason: Some(reasons::REMOTE_FAILED),
        },
        Row {
            observed: Phase::Failed,
            backoff_limit: 2,
            attempts: 1,
            want_phase: Phase::Submitting,
            want_step: Step::Create,
            want_reason: None,
        },
        Row {
            observed: Phase::Failed,
            backoff_limit: 2,
            attempts: 3,
            want_phase: Phase::Failed,
            want_step: Step::None,
            want_reason: Some(reasons::BACKOFF_LIMIT_EXCEEDED),
        },
        Row {
            observed: Phase::Cancelled,
            backoff_limit: 2,
            attempts: 1,
            want_phase: Phase::Cancelled,
            want_step: Step::None,
            want_reason: Some(reasons::CANCELLED),
        },
        Row {
            observed: Phase::Unknown,
            backoff_limit: 0,
            attempts: 1,
            want_phase: Phase::Unknown,
            want_step: Step::None,
            want_reason: None,
        },
    ];
    for r in rows {
        let mut c = Case::new();
        c.spec.backoff_limit = r.backoff_limit;
        c.status = submitted(Phase::Running, r.attempts);
        c.observed = found(r.observed, r.attempts);
        let p = c.run();
        let label = format!(
            "observed {:?} limit {} attempts {}",
            r.observed, r.backoff_limit, r.attempts
        );
        assert_eq!(p.status.phase, r.want_phase, "{label}");
        assert_eq!(p.step, r.want_step, "{label}");
        if let Some(reason) = r.want_reason {
            assert_eq!(
                conditions::find(&p.status.conditions, types::RUNNING)
                    .unwrap()
                    .reason,
                reason,
                "{label}"
            );
            assert!(p.status.completion_time.is_some(), "{label}");
        }
    }
}

#[test]
fn retry_uses_a_new_attempt_name() {
    let mut c = Case::new();
    c.spec.backoff_limit = 1;
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Failed, 1);
    let p = c.run();
    assert_eq!(
        (p.status.attempts, p.status.remote_name.as_deref()),
        (2, Some("ns-job-abcd-2"))
    );
    assert!(p.status.remote_id.is_none());
    assert!(p.status.message.unwrap().contains("attempt 1 failed"));
}

#[test]
fn deadline_cancels_remotely_and_fails() {
    let mut c = Case::new();
    c.spec.active_deadline_seconds = Some(50);
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Running, 1);
    c.now = 49;
    assert_eq!(c.run().step, Step::None);
    c.now = 50;
    let p = c.run();
    assert_eq!((p.step, p.status.phase), (Step::Cancel, Phase::Failed));
    assert!(conditions::is_true(&p.status.conditions, types::FAILED));
    assert_eq!(
        conditions::find(&p.status.conditions, types::FAILED)
            .unwrap()
            .reason,
        reasons::DEADLINE_EXCEEDED
    );
}

#[test]
fn suspend_and_resume_follow_capabilities() {
    let mut c = Case::new();
    c.spec.suspend = true;
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Running, 1);
    assert_eq!(c.run().step, Step::Suspend);
    c.caps = NO_NAMES;
    assert_eq!(c.run().step, Step::Cancel);
    // Resume in place where the platform can (a stop jobrelay made: see stopped.rs).
    c.caps = CAPS;
    c.spec.suspend = false;
    c.status = RemoteJobStatus {
        stopped_by_operator: true,
        ..submitted(Phase::Suspended, 1)
    };
    c.observed = found(Phase::Suspended, 1);
    assert_eq!(c.run().step, Step::Resume);
}

#[test]
fn deletion_cancels_unless_orphaned_or_finished() {
    let mut c = Case::new();
    c.deleting = true;
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Running, 1);
    assert_eq!(c.run().step, Step::Cancel);
    c.spec.deletion_policy = DeletionPolicy::Orphan;
    assert_eq!(c.run().step, Step::RemoveFinalizer);
    c.spec.deletion_policy = DeletionPolicy::Cancel;
    c.observed = found(Phase::Cancelled, 1);
    assert_eq!(
        c.run().step,
        Step::RemoveFinalizer,
        "cancellation confirmed"
    );
    c.observed = Observed::Absent;
    assert_eq!(c.run().step, Step::RemoveFinalizer, "gone remotely");
    // Never submitted: nothing to cancel.
    c.status = RemoteJobStatus::default();
    c.observed = Observed::Nothing;
    assert_eq!(c.run().step, Step::RemoveFinalizer);
}

#[test]
fn ttl_deletes_after_finishing() {
    let mut c = Case::new();
    c.spec.ttl_seconds_after_finished = Some(30);
    c.status = submitted(Phase::Succeeded, 1);
    c.status.completion_time = Some(Time(ts(100)));
    c.now = 110;
    let p = c.run();
    assert_eq!(
        (p.step, p.requeue),
        (Step::None, Some(Duration::from_secs(20)))
    );
    c.now = 130;
    assert_eq!(c.run().step, Step::DeleteObject);
}

#[test]
fn replanning_the_same_observation_changes_nothing() {
    let mut c = Case::new();
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Running, 1);
    let first = c.run();
    c.status = first.status.clone();
    c.now += 30;
    assert_eq!(
        c.run().status,
        first.status,
        "no status write when nothing changed"
    );
}

#[test]
fn a_vanished_remote_job_fails_the_remote_job() {
    let mut c = Case::new();
    c.status = submitted(Phase::Running, 1);
    c.observed = Observed::Absent;
    let p = c.run();
    assert_eq!(p.status.phase, Phase::Failed);
}

#[test]
fn poll_interval_adapts_and_honours_the_spec() {
    let s = spec();
    assert!(poll_interval(&s, Phase::Queued) < poll_interval(&s, Phase::Running));
    let mut s2 = s.clone();
    s2.poll_interval = Some("7s".into());
    assert_eq!(poll_interval(&s2, Phase::Running), Duration::from_secs(7));
    let _ = (
        ClientRef {
            name: "x".into(),
            namespace: None,
        },
        None::<RunaiJob>,
    );
}

#[test]
fn create_outcomes() {
    let intent = Case::new().run().status;
    let accepted = after_create(
        &intent,
        &CreateOutcome::Accepted(view(Phase::Unknown)),
        Some(1),
        ts(5),
    );
    assert_eq!(
        (accepted.phase, accepted.remote_id.as_deref()),
        (Phase::Queued, Some("rid-1"))
    );
    assert!(conditions::is_true(&accepted.conditions, types::SUBMITTED));
    let running = after_create(
        &intent,
        &CreateOutcome::Accepted(view(Phase::Running)),
        Some(1),
        ts(5),
    );
    assert_eq!(running.phase, Phase::Running);
    let rejected = after_create(
        &intent,
        &CreateOutcome::Rejected("image is required".into()),
        Some(1),
        ts(5),
    );
    assert_eq!(rejected.phase, Phase::Failed);
    assert!(rejected.completion_time.is_some() && rejected.remote_id.is_none());
    let failed = conditions::find(&rejected.conditions, types::FAILED).unwrap();
    assert_eq!(
        (failed.reason.as_str(), failed.message.as_str()),
        (reasons::SUBMIT_REJECTED, "image is required")
    );
}

#[test]
fn suspend_by_stopping_then_resubmit_where_the_platform_cannot_resume() {
    // A platform may report the stop we asked for as cancelled, or as failed (DAI's Incomplete):
    // either way it is a suspension, and it never uses up the backoff limit.
    for stopped in [Phase::Cancelled, Phase::Failed] {
        let mut c = Case::new();
        c.caps = Capabilities {
            lookup_by_name: true,
            suspend_resume: false,
        };
        c.spec.backoff_limit = 1;
        c.spec.suspend = true;
        c.status = submitted(Phase::Running, 1);
        c.observed = found(Phase::Running, 1);
        assert_eq!(c.run().step, Step::Cancel, "stop it");
        c.observed = found(stopped, 1);
        let p = c.run();
        assert_eq!(
            (p.step, p.status.phase, p.status.failed_attempts),
            (Step::None, Phase::Suspended, 0),
            "the stop ({stopped:?}) is a suspension, not a cancellation or a failure"
        );
        c.status = p.status;
        c.spec.suspend = false;
        let p = c.run();
        assert_eq!(
            (
                p.step,
                p.status.phase,
                p.status.attempts,
                p.status.failed_attempts
            ),
            (Step::Create, Phase::Submitting, 2, 0),
            "resumed after a {stopped:?} stop"
        );
        assert_eq!(p.status.remote_name.as_deref(), Some("ns-job-abcd-2"));
    }
}

#[test]
fn cross_namespace_use_needs_a_grant() {
    let grants = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let table = [
        ("team-a", grants(&[]), "team-a", true),
        ("shared", grants(&[]), "team-a", false),
        ("shared", grants(&["team-b"]), "team-a", false),
        ("shared", grants(&["team-b", "team-a"]), "team-a", true),
        ("shared", grants(&["*"]), "team-a", true),
    ];
    for (client_ns, allowed, job_ns, want) in table {
        assert_eq!(
            granted(client_ns, &allowed, job_ns),
            want,
            "{client_ns} {allowed:?} {job_ns}"
        );
    }
}

#[test]
fn completion_time_is_the_platforms_when_it_says() {
    let mut c = Case::new();
    c.status = submitted(Phase::Running, 1);
    let mut done = view(Phase::Succeeded);
    done.finished_at = Some(ts(90));
    c.observed = Observed::Found {
        view: done,
        attempt: 1,
    };
    assert_eq!(c.run().status.completion_time, Some(Time(ts(90))));
    c.observed = found(Phase::Succeeded, 1);
    assert_eq!(
        c.run().status.completion_time,
        Some(Time(ts(100))),
        "else the time we saw it"
    );
}

#[test]
fn resubmissions_after_suspend_do_not_use_up_the_backoff_limit() {
    let mut c = Case::new();
    c.spec.backoff_limit = 1;
    c.status = submitted(Phase::Running, 3);
    c.status.failed_attempts = 0; // attempts 1 and 2 ended in suspensions, not failures
    c.observed = found(Phase::Failed, 3);
    let p = c.run();
    assert_eq!(
        (p.step, p.status.attempts, p.status.failed_attempts),
        (Step::Create, 4, 1)
    );
    c.status = submitted(Phase::Running, 4);
    c.status.failed_attempts = 1;
    c.observed = found(Phase::Failed, 4);
    let p = c.run();
    assert_eq!(
        (p.status.phase, p.status.failed_attempts),
        (Phase::Failed, 2)
    );
}

#[test]
fn a_deadline_cancel_is_sent_again_until_confirmed() {
    let mut c = Case::new();
    c.spec.active_deadline_seconds = Some(50);
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Running, 1);
    c.now = 60;
    let p = c.run();
    assert_eq!(p.step, Step::Cancel);
    assert!(
        p.status.cancel_pending,
        "pending until the platform confirms"
    );
    // The cancel call failed: the next round (Failed already) sends it again.
    c.status = p.status;
    c.observed = found(Phase::Running, 1);
    let again = c.run();
    assert_eq!(
        (again.step, again.status.phase),
        (Step::Cancel, Phase::Failed)
    );
    assert!(again.status.cancel_pending);
    // The platform shows it stopped (or gone): confirmed, nothing more to do, not polled again.
    for observed in [found(Phase::Cancelled, 1), Observed::Absent] {
        c.observed = observed;
        let p = c.run();
        assert_eq!(p.step, Step::None);
        assert!(!p.status.cancel_pending);
        assert_eq!(p.status.phase, Phase::Failed);
        assert_eq!(p.requeue, None, "a finished job is not polled");
    }
    // Deleting while the cancel is pending: cancel first, then let go.
    c.deleting = true;
    c.observed = Observed::Nothing;
    assert_eq!(c.run().step, Step::Cancel);
    c.status.cancel_pending = false;
    assert_eq!(c.run().step, Step::RemoveFinalizer);
}

#[test]
fn every_cancel_is_marked_pending() {
    let mut c = Case::new();
    c.caps = NO_NAMES;
    c.spec.suspend = true;
    c.status = submitted(Phase::Running, 1);
    c.observed = found(Phase::Running, 1);
    let p = c.run();
    assert_eq!(p.step, Step::Cancel);
    assert!(p.status.cancel_pending, "suspend by stopping");
    c.spec.suspend = false;
    c.deleting = true;
    let p = c.run();
    assert_eq!(p.step, Step::Cancel);
    assert!(p.status.cancel_pending, "deletion");
}

pub(super) fn generic_spec(lookup: bool) -> RemoteJobSpec {
    let mut g = serde_json::json!({"submitPath": "/jobs", "statusPath": "/jobs/{id}"});
    if lookup {
        g["lookup"] = serde_json::json!({"path": "/jobs?name={name}", "idPointer": "/0/id"});
    }
    serde_json::from_value(serde_json::json!({"clientRef": {"name": "c"}, "generic": g})).unwrap()
}

#[test]
fn recovery_follows_the_body_and_the_platform() {
    assert_eq!(recovery(&generic_spec(false), NO_NAMES), Recovery::None);
    assert_eq!(recovery(&generic_spec(true), NO_NAMES), Recovery::ByName);
    assert_eq!(recovery(&spec(), CAPS), Recovery::ByName);
    assert_eq!(recovery(&spec(), NO_NAMES), Recovery::BySearch);
}

#[test]
fn an_unknown_generic_outcome_waits_for_a_person() {
    let mut c = Case::new();
    c.spec = generic_spec(false);
    c.caps = NO_NAMES;
    let intent = c.run();
    assert_eq!(intent.step, Step::Create);
    // The answer was lost (the IO records OutcomeUnknown), or the operator stopped mid-create.
    for reason in [reasons::OUTCOME_UNKNOWN, reasons::SUBMITTING] {
        let mut status = intent.status.clone();
        c.at_now().on(&mut status.conditions).set(
            types::SUBMITTED,
            conditions::UNKNOWN,
            reason,
            "m",
        );
        c.status = status;
        let p = c.run();
        assert_eq!(p.step, Step::None, "{reason}: never create blindly");
        assert_eq!(p.status.phase, Phase::Submitting);
        assert_eq!(p.requeue, None, "waits for a change");
        let cond = conditions::find(&p.status.conditions, types::SUBMITTED).unwrap();
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            (conditions::UNKNOWN, reasons::OUTCOME_UNKNOWN)
        );
        assert!(cond.message.contains("jobrelay.io/confirm-resubmit=\"1\""));
        // A confirmation of another attempt changes nothing.
        c.confirm = Some("2".into());
        assert_eq!(c.run().step, Step::None);
        // Confirmed: the next attempt under a new name.
        c.confirm = Some("1".into());
        let p = c.run();
        assert_eq!(p.step, Step::Create);
        assert_eq!(
            (p.status.attempts, p.status.remote_name.as_deref()),
            (2, Some("ns-job-abcd-2"))
        );
        c.confirm = None;
    }
    // A submit refused with an answer (503): sent again without a person.
    c.with_submitted(
        intent.status.clone(),
        conditions::FALSE,
        reasons::SUBMIT_RETRYING,
    );
    let p = c.run();
    assert_eq!((p.step, p.status.attempts), (Step::Create, 1));
    // With a lookup the name is observed instead (absent → create).
    c.spec = generic_spec(true);
    c.status = intent.status.clone();
    c.observed = Observed::Absent;
    assert_eq!(c.run().step, Step::Create);
}

#[test]
fn deletion_never_hangs_on_a_missing_api_client() {
    let mut c = Case::new();
    c.status = submitted(Phase::Running, 1);
    c.deleting = true;
    c.deleted_at = Some(90);
    c.client = ClientState::Unusable {
        reason: reasons::CLIENT_NOT_FOUND,
        message: "ApiClient ns/c not found".into(),
    };
    let p = c.run();
    assert_eq!(p.step, Step::RemoveFinalizer);
    let (reason, msg) = p.warning.unwrap();
    assert_eq!(reason, reasons::MAY_BE_ORPHANED);
    assert!(msg.contains("rid-1"), "{msg}");
    // Present but unusable: wait a while for it, then give up the same way.
    c.client = ClientState::Unusable {
        reason: reasons::CLIENT_NOT_READY,
        message: "not Ready".into(),
    };
    let p = c.run();
    assert_eq!((p.step, p.warning), (Step::None, None));
    c.now = 90 + DELETE_GIVE_UP.as_secs() as i64;
    let p = c.run();
    assert_eq!(p.step, Step::RemoveFinalizer);
    assert!(p.warning.is_some());
    // A generic job whose submit outcome is unknown cannot be found: let go with a warning.
    let mut c = Case::new();
    c.spec = generic_spec(false);
    c.caps = NO_NAMES;
    c.status = c.run().status;
    c.deleting = true;
    let p = c.run();
    assert_eq!(p.step, Step::RemoveFinalizer);
    assert!(p.warning.unwrap().1.contains("ns-job-abcd-1"));
}
