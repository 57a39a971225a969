//! The RemoteJob plan's vocabulary, shared by [`super::plan`], [`super::status_updates`] and the IO
//! around them: what was observed, the ApiClient's state, the step and plan decided.

use std::time::Duration;

use crate::crd::RemoteJobStatus;
use crate::platform::RemoteView;

/// What the IO layer observed this round.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// Nothing was looked at (nothing to look for yet).
    Nothing,
    /// Looked up (by id or name) and the platform has no such job.
    Absent,
    /// The job as the platform reports it; `attempt` is the attempt whose name matched (status recovery).
    Found { view: RemoteView, attempt: i32 },
}

/// The state of the referenced ApiClient.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientState {
    Ready,
    /// Not usable; the reason constant and a message for the condition.
    Unusable {
        reason: &'static str,
        message: String,
    },
}

/// The one remote (or Kubernetes) step to take after the status is written.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    None,
    /// Create the remote job named `status.remoteName`.
    Create,
    /// Find a start whose outcome is unknown by listing runs (platforms without names).
    ReconcileUnknownStart,
    Suspend,
    Resume,
    Cancel,
    /// ttlSecondsAfterFinished has passed: delete the RemoteJob.
    DeleteObject,
    /// Deletion may proceed: remove our finalizer.
    RemoveFinalizer,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub status: RemoteJobStatus,
    pub step: Step,
    pub requeue: Option<Duration>,
    /// A Warning event to publish (reason, message), e.g. a remote job that may be left running.
    pub warning: Option<(&'static str, String)>,
}

/// How a submit whose answer was lost can be found again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Look the remote name up (Run:ai, OpenPAI, a generic job with `spec.generic.lookup`).
    ByName,
    /// List the runs started since the intent (Eggplant DAI).
    BySearch,
    /// No way to find it (a generic job without a lookup): a person has to confirm a resubmit.
    None,
}
