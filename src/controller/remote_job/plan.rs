//! Pure decisions of the RemoteJob controller: given the spec, the current status, what we know of the
//! ApiClient and what the platform just told us, compute the next status and the one remote step to take.
//!
//! Exactly-once rests on three rules enforced here:
//! 1. The intent to create (phase Submitting + the deterministic remote name + attempt) is written to
//!    status *before* the create call ([`Step::Create`] is only returned together with that status).
//! 2. While an intent is recorded and no remote id is known, the remote side is observed first (lookup by
//!    name); only an observed absence leads to a create. For platforms without client-chosen names the
//!    start is reconciled by listing runs ([`Step::ReconcileUnknownStart`]), never blindly repeated.
//! 3. A status found empty is not trusted: attempts are looked up by name before anything is created.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::crd::conditions::{self, FALSE, Stamp, UNKNOWN, reasons, types};
use crate::crd::{DeletionPolicy, RemoteJobPhase as Phase, RemoteJobSpec, RemoteJobStatus};

use super::model::{ClientState, Observed, Plan, Recovery, Step};
use super::status_updates::{adopt, finish};
use crate::platform::Capabilities;

pub struct Input<'a> {
    pub spec: &'a RemoteJobSpec,
    pub status: &'a RemoteJobStatus,
    /// The generation planned for and the time of planning.
    pub at: Stamp,
    pub deleting: bool,
    pub client: &'a ClientState,
    pub caps: Capabilities,
    pub observed: &'a Observed,
    /// The deterministic remote name of attempt `n` (1-based).
    pub remote_name: &'a dyn Fn(i32) -> String,
    /// The value of the [`CONFIRM_RESUBMIT`] annotation, if any.
    pub confirm_resubmit: Option<&'a str>,
    /// When deletion was requested (metadata.deletionTimestamp).
    pub deleted_at: Option<Timestamp>,
}

/// The annotation with which a person confirms that attempt `<n>` (its value), whose submit had an
/// unknown outcome and cannot be looked up, did not start remotely: the job is submitted again as
/// attempt n+1.
pub const CONFIRM_RESUBMIT: &str = "jobrelay.io/confirm-resubmit";

/// How long a deletion waits for an ApiClient that exists but cannot be used (not Ready, not granted,
/// …) before it gives up cancelling and reports the remote job as possibly orphaned.
pub const DELETE_GIVE_UP: Duration = Duration::from_secs(300);

/// Pure: how a submit whose answer was lost is found again, by the job body and the platform.
pub fn recovery(spec: &RemoteJobSpec, caps: Capabilities) -> Recovery {
    match &spec.generic {
        Some(g) if g.lookup.is_some() => Recovery::ByName,
        Some(_) => Recovery::None,
        None if caps.lookup_by_name => Recovery::ByName,
        None => Recovery::BySearch,
    }
}

/// How long to wait before looking again, by phase, unless spec.pollInterval says otherwise.
pub fn poll_interval(spec: &RemoteJobSpec, phase: Phase) -> Duration {
    let configured = spec
        .poll_interval
        .as_deref()
        .and_then(crate::crd::duration::parse);
    if let Some(d) = configured.filter(|d| !d.is_zero()) {
        return d;
    }
    match phase {
        Phase::Submitting => Duration::from_secs(1),
        Phase::Pending | Phase::Queued => Duration::from_secs(3),
        Phase::Running | Phase::Unknown => Duration::from_secs(10),
        Phase::Suspended => Duration::from_secs(30),
        Phase::Succeeded | Phase::Failed | Phase::Cancelled => Duration::from_secs(300),
    }
}

pub fn plan(input: &Input) -> Plan {
    let mut status = input.status.clone();
    status.observed_generation = input.at.generation;
    // Fold in what we observed before deciding.
    if let Observed::Found { view, attempt } = input.observed {
        adopt(&mut status, view, *attempt, input.remote_name, input.at);
    }
    settle_cancel(&mut status, input.observed);
    if input.deleting {
        return plan_deletion(input, status);
    }
    if status.phase.is_terminal() {
        if status.cancel_pending {
            // Decided earlier (deadline) and not confirmed yet: send it again.
            return done(input, status, Step::Cancel);
        }
        return plan_finished(input, status);
    }
    if let ClientState::Unusable { reason, message } = input.client {
        if status.remote_id.is_none() && status.phase != Phase::Submitting {
            status.phase = Phase::Pending;
            status.message = Some(message.clone());
            input
                .at
                .on(&mut status.conditions)
                .set(types::SUBMITTED, FALSE, reason, message);
            return done(input, status, Step::None);
        }
        // A job already out there keeps its phase; we just cannot talk to the platform right now.
        return done(input, status, Step::None);
    }
    if let Some(step) = deadline_exceeded(input, &mut status) {
        return done(input, status, step);
    }
    match (&status.remote_id, input.observed) {
        // No remote job known and none found.
        (None, Observed::Nothing | Observed::Absent) => plan_submission(input, status),
        (Some(_), Observed::Absent) => {
            // The platform no longer knows a job we submitted (deleted behind our back).
            finish(
                &mut status,
                input.at,
                input.observed,
                Phase::Failed,
                reasons::REMOTE_FAILED,
                "the remote job disappeared",
            );
            done(input, status, Step::None)
        }
        (Some(_), _) => plan_running(input, status),
        (None, Observed::Found { .. }) => unreachable!("adopt() sets remote_id"),
    }
}

/// A cancel is confirmed once the platform shows the job finished or no longer has it.
fn settle_cancel(status: &mut RemoteJobStatus, observed: &Observed) {
    let confirmed = match observed {
        Observed::Absent => true,
        Observed::Found { view, .. } => view.phase.is_terminal(),
        Observed::Nothing => false,
    };
    if confirmed {
        status.cancel_pending = false;
    }
}

/// Did the last create for the open intent get an answer that proves nothing was created?
pub(super) fn submit_failed_cleanly(status: &RemoteJobStatus) -> bool {
    conditions::find(&status.conditions, types::SUBMITTED)
        .is_some_and(|c| c.reason == reasons::SUBMIT_RETRYING)
}

fn plan_submission(input: &Input, mut status: RemoteJobStatus) -> Plan {
    if status.phase == Phase::Submitting && matches!(input.observed, Observed::Nothing) {
        match recovery(input.spec, input.caps) {
            // A start without a client-chosen name whose result we did not see: find it by listing.
            Recovery::BySearch => return done(input, status, Step::ReconcileUnknownStart),
            Recovery::None if !submit_failed_cleanly(&status) => {
                let attempt = status.attempts.max(1);
                if input.confirm_resubmit.map(str::trim) != Some(attempt.to_string().as_str()) {
                    return outcome_unknown(input, status, attempt);
                }
                // Confirmed by a person: a new attempt under the next name.
                status.phase = Phase::Pending;
            }
            _ => {}
        }
    }
    if input.spec.suspend {
        status.phase = Phase::Suspended;
        status.message = Some("suspended before submission".into());
        return done(input, status, Step::None);
    }
    // Record the intent (phase, name, attempt) — written before the create call.
    if status.phase != Phase::Submitting {
        status.attempts += 1;
    }
    status.attempts = status.attempts.max(1);
    status.phase = Phase::Submitting;
    status.remote_name = Some((input.remote_name)(status.attempts));
    status.remote_id = None;
    status.remote_state = None;
    status.message = Some(format!("submitting attempt {}", status.attempts));
    if status.start_time.is_none() {
        status.start_time = Some(Time(input.at.now));
    }
    input.at.on(&mut status.conditions).set(
        types::SUBMITTED,
        FALSE,
        reasons::SUBMITTING,
        "submitting to the platform",
    );
    done(input, status, Step::Create)
}

/// The open intent's outcome is unknown and cannot be looked up: never create blindly; wait for a
/// person (the Warning event comes with the condition's change, see `held_back`).
fn outcome_unknown(input: &Input, mut status: RemoteJobStatus, attempt: i32) -> Plan {
    let message = format!(
        "the outcome of submitting attempt {attempt} is unknown and this job has no lookup \
         (spec.generic.lookup): not submitting again. Check the platform; if the job is not there, \
         annotate the RemoteJob {CONFIRM_RESUBMIT}=\"{attempt}\" to submit it again"
    );
    status.message = Some(message.clone());
    input.at.on(&mut status.conditions).set(
        types::SUBMITTED,
        UNKNOWN,
        reasons::OUTCOME_UNKNOWN,
        &message,
    );
    let mut plan = done(input, status, Step::None);
    // Nothing changes until a person annotates (a watched change) or the deadline passes.
    plan.requeue = deadline_left(input);
    plan
}

/// Time left until activeDeadlineSeconds, if set.
fn deadline_left(input: &Input) -> Option<Duration> {
    let limit = input.spec.active_deadline_seconds?;
    let started = input.status.start_time.as_ref()?.0;
    let left = started
        .as_second()
        .saturating_add(limit)
        .saturating_sub(input.at.now.as_second())
        .max(1);
    Some(Duration::from_secs(left as u64))
}

fn plan_running(input: &Input, mut status: RemoteJobStatus) -> Plan {
    let Observed::Found { view, .. } = input.observed else {
        return done(input, status, Step::None);
    };
    match view.phase {
        Phase::Succeeded => {
            finish(
                &mut status,
                input.at,
                input.observed,
                Phase::Succeeded,
                reasons::COMPLETED,
                "the remote job succeeded",
            );
            done(input, status, Step::None)
        }
        // Suspended by stopping (platforms that cannot suspend in place): the stop we asked for shows
        // as cancelled, or as failed where the platform says so of any stopped run (DAI's Incomplete);
        // either way it is a suspension and does not count against backoffLimit.
        Phase::Cancelled | Phase::Failed if !input.caps.suspend_resume && input.spec.suspend => {
            status.phase = Phase::Suspended;
            status.message = Some("suspended (stopped on the platform)".into());
            done(input, status, Step::None)
        }
        // Resumed after such a stop: a fresh attempt under a new name.
        Phase::Cancelled | Phase::Failed
            if !input.caps.suspend_resume && status.phase == Phase::Suspended =>
        {
            status.phase = Phase::Pending;
            status.remote_id = None;
            plan_submission(input, status)
        }
        // Failed runs count against backoffLimit; resubmissions after a suspend do not.
        Phase::Failed if status.failed_attempts < input.spec.backoff_limit => {
            // Retry as a new attempt under a new name; the failed attempt stays as it is remotely.
            let failed = status.attempts;
            status.failed_attempts += 1;
            status.phase = Phase::Pending;
            status.remote_id = None;
            let mut next = plan_submission(input, status);
            next.status.message = Some(format!(
                "attempt {failed} failed; submitting attempt {}",
                failed + 1
            ));
            next
        }
        Phase::Failed => {
            status.failed_attempts += 1;
            let (reason, msg) = if input.spec.backoff_limit > 0 {
                (
                    reasons::BACKOFF_LIMIT_EXCEEDED,
                    format!(
                        "failed {} times (backoffLimit {})",
                        status.failed_attempts, input.spec.backoff_limit
                    ),
                )
            } else {
                (
                    reasons::REMOTE_FAILED,
                    view.message
                        .clone()
                        .unwrap_or_else(|| "the remote job failed".into()),
                )
            };
            finish(
                &mut status,
                input.at,
                input.observed,
                Phase::Failed,
                reason,
                &msg,
            );
            done(input, status, Step::None)
        }
        Phase::Cancelled => {
            finish(
                &mut status,
                input.at,
                input.observed,
                Phase::Cancelled,
                reasons::CANCELLED,
                "the remote job was cancelled",
            );
            done(input, status, Step::None)
        }
        _ if input.spec.suspend && view.phase != Phase::Suspended => {
            status.message = Some("suspending".into());
            let step = if input.caps.suspend_resume {
                Step::Suspend
            } else {
                Step::Cancel
            };
            done(input, status, step)
        }
        Phase::Suspended if !input.spec.suspend => {
            if input.caps.suspend_resume {
                status.message = Some("resuming".into());
                return done(input, status, Step::Resume);
            }
            // Cannot resume in place: submit a fresh attempt (does not count against backoffLimit).
            status.phase = Phase::Pending;
            status.remote_id = None;
            plan_submission(input, status)
        }
        _ => done(input, status, Step::None),
    }
}

fn plan_deletion(input: &Input, mut status: RemoteJobStatus) -> Plan {
    let observed_terminal =
        matches!(input.observed, Observed::Found { view, .. } if view.phase.is_terminal());
    let gone = matches!(input.observed, Observed::Absent);
    let never_submitted = status.remote_id.is_none() && status.phase != Phase::Submitting;
    // Suspended by cancelling (no in-place suspend): nothing runs remotely.
    let stopped = status.phase == Phase::Suspended && !input.caps.suspend_resume;
    if input.spec.deletion_policy == DeletionPolicy::Orphan
        || (status.phase.is_terminal() && !status.cancel_pending)
        || observed_terminal
        || gone
        || never_submitted
        || stopped
    {
        return done(input, status, Step::RemoveFinalizer);
    }
    let what = match &status.remote_id {
        Some(id) => format!("remote job {id}"),
        None => format!(
            "remote job {} (attempt {}, outcome of its submit unknown)",
            status.remote_name.as_deref().unwrap_or("?"),
            status.attempts
        ),
    };
    if let ClientState::Unusable { reason, message } = input.client {
        let waited = input
            .deleted_at
            .map(|t| (input.at.now.as_second() - t.as_second()).max(0) as u64)
            .unwrap_or(0);
        if *reason == reasons::CLIENT_NOT_FOUND || waited >= DELETE_GIVE_UP.as_secs() {
            return orphaned(
                input,
                status,
                &format!(
                    "{message}: {what} may be left running on the platform; nothing could cancel it"
                ),
            );
        }
        let mut plan = done(input, status, Step::None);
        plan.requeue = Some(Duration::from_secs(5));
        return plan;
    }
    if status.remote_id.is_none() {
        // A start whose outcome is unknown: find it before deciding there is nothing to cancel.
        let step = match recovery(input.spec, input.caps) {
            Recovery::ByName => Step::None,
            Recovery::BySearch => Step::ReconcileUnknownStart,
            Recovery::None => {
                return orphaned(
                    input,
                    status,
                    &format!("{what} may be running on the platform and cannot be looked up"),
                );
            }
        };
        return done(input, status, step);
    }
    status.message = Some("cancelling the remote job before deletion".into());
    done(input, status, Step::Cancel)
}

/// Deletion proceeds although the remote job may still run: say so in a Warning event.
fn orphaned(input: &Input, status: RemoteJobStatus, message: &str) -> Plan {
    let mut plan = done(input, status, Step::RemoveFinalizer);
    plan.warning = Some((reasons::MAY_BE_ORPHANED, message.to_string()));
    plan
}

fn plan_finished(input: &Input, status: RemoteJobStatus) -> Plan {
    let Some(ttl) = input.spec.ttl_seconds_after_finished else {
        // Finished and nothing pending: the platform is not asked again.
        return Plan {
            status,
            step: Step::None,
            requeue: None,
            warning: None,
        };
    };
    let finished = status
        .completion_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(input.at.now);
    let due = finished.as_second() + i64::from(ttl);
    let left = due - input.at.now.as_second();
    if left <= 0 {
        return Plan {
            status,
            step: Step::DeleteObject,
            requeue: None,
            warning: None,
        };
    }
    Plan {
        status,
        step: Step::None,
        requeue: Some(Duration::from_secs(left as u64)),
        warning: None,
    }
}

fn deadline_exceeded(input: &Input, status: &mut RemoteJobStatus) -> Option<Step> {
    let limit = input.spec.active_deadline_seconds?;
    let started = status.start_time.as_ref()?.0;
    if input.at.now.as_second() - started.as_second() < limit {
        return None;
    }
    let msg = format!("activeDeadlineSeconds ({limit}s) exceeded");
    let had_remote = status.remote_id.is_some();
    finish(
        status,
        input.at,
        input.observed,
        Phase::Failed,
        reasons::DEADLINE_EXCEEDED,
        &msg,
    );
    Some(if had_remote { Step::Cancel } else { Step::None })
}

fn done(input: &Input, mut status: RemoteJobStatus, step: Step) -> Plan {
    if step == Step::Cancel {
        // Until the platform confirms (the call succeeds, or the job shows finished or gone).
        status.cancel_pending = true;
    }
    let requeue = Some(poll_interval(input.spec, status.phase));
    Plan {
        status,
        step,
        requeue,
        warning: None,
    }
}

/// May a RemoteJob in `job_ns` use an ApiClient in `client_ns` that grants `allowed` namespaces?
pub fn granted(client_ns: &str, allowed: &[String], job_ns: &str) -> bool {
    client_ns == job_ns || allowed.iter().any(|n| n == "*" || n == job_ns)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
