//! A remote job stopped on the platform by someone other than jobrelay (Run:ai: a person stops a
//! workload in the UI or API). jobrelay marks the stops it makes itself (`status.stoppedByOperator`,
//! set when it suspends for `spec.suspend`); a stop without that mark is shown as such and left
//! alone: not resumed behind the person's back, and not counted as a new attempt.

use super::model::{Plan, Step};
use super::plan::Input;
use crate::crd::RemoteJobStatus;
use crate::crd::conditions::{FALSE, reasons, types};
use crate::platform::RemoteView;

/// Pure: the plan for a job the platform shows stopped while `spec.suspend` is false and jobrelay did
/// not stop it.
pub(super) fn on_platform(input: &Input, mut status: RemoteJobStatus, view: &RemoteView) -> Plan {
    let message = format!(
        "stopped on the platform (remote state '{}'), not by jobrelay: not resumed. Resume it on the \
         platform, or set spec.suspend to true and back to false to have jobrelay resume it",
        view.shown_state()
    );
    status.message = Some(message.clone());
    input.at.on(&mut status.conditions).set(
        types::RUNNING,
        FALSE,
        reasons::STOPPED_ON_PLATFORM,
        &message,
    );
    let requeue = Some(super::plan::poll_interval(input.spec, status.phase));
    Plan {
        status,
        step: Step::None,
        requeue,
        warning: None,
    }
}
