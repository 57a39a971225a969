//! What a job is, independent of Kubernetes: the per-platform job bodies, our phases and the platform
//! API generations. The CRD types in `crd/` embed these (the generated YAML is the same), and
//! `platform/` reads them without knowing about Kubernetes objects. Depends only on serde/schemars.

mod bodies;

pub use bodies::*;
use serde::{Deserialize, Serialize};

/// The job bodies of one RemoteJob, borrowed; exactly one is set on a valid RemoteJob. What a
/// platform reads: its own body (`runai` for Run:ai, ...).
#[derive(Clone, Copy, Debug, Default)]
pub struct Job<'a> {
    pub runai: Option<&'a RunaiJob>,
    pub openpai: Option<&'a OpenpaiJob>,
    pub dai: Option<&'a DaiJob>,
    pub generic: Option<&'a GenericJob>,
}

/// Which generation of a platform's job API to use.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum PlatformApi {
    /// Run:ai control-plane trainings API (`/api/v1/workloads/trainings`). Default for runai.
    RunaiTrainingsV1,
    /// OpenPAI v2 (`POST /api/v2/jobs`, YAML job protocol). Default for openpai.
    OpenpaiV2,
    /// OpenPAI v1 (`POST /api/v1/user/:username/jobs`, JSON job config; pre-1.1 clusters).
    OpenpaiV1,
    /// Eggplant DAI execution service (`/execution_service/api/v1/executions`). Default for dai.
    DaiExecutions,
    /// Eggplant DAI legacy run API (`/api/run`, `/api/run/progress`, `/api/run/abort`).
    DaiLegacyRun,
}

/// Our normalized view of a remote job's state.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
pub enum RemoteJobPhase {
    /// Not yet submitted (waiting for the ApiClient, or suspended before submission).
    #[default]
    Pending,
    /// Submission intent recorded; the outcome of the create call is not yet known.
    Submitting,
    /// Accepted by the platform, waiting for resources.
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Suspended,
    /// The platform reported a state we do not recognise, or the job cannot be observed.
    Unknown,
}

impl RemoteJobPhase {
    /// Phases after which nothing more happens remotely.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Submitting => "Submitting",
            Self::Queued => "Queued",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
            Self::Suspended => "Suspended",
            Self::Unknown => "Unknown",
        }
    }
}
