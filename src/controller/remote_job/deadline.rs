//! activeDeadlineSeconds, decided purely. A deadline ends the job and cancels what runs remotely; a
//! deadline that passes while a submission's outcome is unknown first resolves it (the platform's
//! search), so that a job created by that submission is found and cancelled too. What cannot be
//! resolved (a generic job without a lookup) ends with a `RemoteJobMayBeOrphaned` Warning that says
//! what may be running and where.

use std::time::Duration;

use super::model::{Observed, Recovery, Step};
use super::plan::{Input, recovery, submit_failed_cleanly};
use super::status_updates::finish;
use crate::crd::conditions::reasons;
use crate::crd::{RemoteJobPhase as Phase, RemoteJobStatus};

/// What a passed deadline asks for: the remote step, and a Warning event if something may be left.
pub(super) type Passed = (Step, Option<(&'static str, String)>);

/// Time left until activeDeadlineSeconds, if set.
pub(super) fn left(input: &Input) -> Option<Duration> {
    let limit = input.spec.active_deadline_seconds?;
    let started = input.status.start_time.as_ref()?.0;
    let left = started
        .as_second()
        .saturating_add(limit)
        .saturating_sub(input.at.now.as_second())
        .max(1);
    Some(Duration::from_secs(left as u64))
}

/// `None` before the deadline. After it: the job is finished as Failed (DeadlineExceeded) and what
/// runs remotely is cancelled — unless a submission's outcome is open and can be searched for, in
/// which case the status is left as it is and the search comes first (its answer plans again).
pub(super) fn exceeded(input: &Input, status: &mut RemoteJobStatus) -> Option<Passed> {
    let limit = input.spec.active_deadline_seconds?;
    let started = status.start_time.as_ref()?.0;
    if input.at.now.as_second().saturating_sub(started.as_second()) < limit {
        return None;
    }
    let open = status.remote_id.is_none()
        && status.phase == Phase::Submitting
        && *input.observed == Observed::Nothing
        && !submit_failed_cleanly(status);
    let mut warning = None;
    if open {
        match recovery(input.spec, input.caps) {
            Recovery::BySearch => return Some((Step::ReconcileUnknownStart, None)),
            // Looked up by name before planning: an open intent is never `Nothing` here.
            Recovery::ByName => {}
            Recovery::None => {
                warning = Some((reasons::MAY_BE_ORPHANED, unresolved(input, status)));
            }
        }
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
    let step = if had_remote { Step::Cancel } else { Step::None };
    Some((step, warning))
}

/// The warning for a deadline that ends a submission whose outcome cannot be found out.
fn unresolved(input: &Input, status: &RemoteJobStatus) -> String {
    let client = &input.spec.client_ref;
    let place = match &client.namespace {
        Some(ns) => format!("{ns}/{}", client.name),
        None => client.name.clone(),
    };
    format!(
        "activeDeadlineSeconds passed while the outcome of submitting attempt {} ({}) was unknown: \
         it may be running on the platform of ApiClient {place} and cannot be looked up or cancelled \
         from here; check the platform and cancel it there",
        status.attempts.max(1),
        status.remote_name.as_deref().unwrap_or("?"),
    )
}
