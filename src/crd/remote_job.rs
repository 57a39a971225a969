//! `RemoteJob`: a job to run on the platform an ApiClient points at.
// kube's derive takes repeated `printcolumn(...)` arguments, which this lint mistakes for duplicates.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::duration;
use crate::jobspec::{DaiJob, GenericJob, Job, OpenpaiJob, RemoteJobPhase, RunaiJob};

/// The finalizer that lets a Cancel-policy RemoteJob stop its remote job before it goes (here, not in
/// the controller, because the ApiClient's in-use protection reads it too).
pub const REMOTE_JOB_FINALIZER: &str = "jobrelay.io/remote-job";

/// RemoteJob runs one job on a remote platform through an ApiClient and mirrors its state.
/// It is submitted exactly once; with backoffLimit > 0 a failed run is resubmitted as a new attempt.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "jobrelay.io",
    version = "v1alpha1",
    kind = "RemoteJob",
    doc = "RemoteJob: one job to run on the platform of an ApiClient; the operator submits it exactly once and mirrors its state in status.",
    namespaced,
    status = "RemoteJobStatus",
    shortname = "rjob",
    category = "jobrelay",
    printcolumn(name = "Client", type_ = "string", json_path = ".spec.clientRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Remote-ID", type_ = "string", json_path = ".status.remoteId"),
    printcolumn(
        name = "Queue",
        type_ = "string",
        json_path = ".metadata.labels.kueue\\.x-k8s\\.io/queue-name"
    ),
    printcolumn(
        name = "Admitted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Admitted\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = 1,
        json_path = ".status.message"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        priority = 1,
        json_path = ".status.url"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("[has(self.runai), has(self.openpai), has(self.dai), has(self.generic)].filter(x, x).size() == 1").message("exactly one of spec.runai, spec.openpai, spec.dai, spec.generic must be set"),
    validation = Rule::new("has(self.runai) == has(oldSelf.runai) && has(self.openpai) == has(oldSelf.openpai) && has(self.dai) == has(oldSelf.dai) && has(self.generic) == has(oldSelf.generic)").message("the platform body (spec.runai/openpai/dai/generic) cannot be switched after creation"),
)]
pub struct RemoteJobSpec {
    /// The ApiClient to submit through. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.clientRef is immutable"))]
    pub client_ref: ClientRef,

    // The four bodies are boxed: exactly one is set, and inline they made RemoteJobSpec 1208 bytes
    // (RemoteJob 1792), paid by every RemoteJob in the operator's cache. Boxed, RemoteJob stays under
    // the bound in crd::tests. Box<T> has the same schema and wire form as T.
    /// A Run:ai training (control-plane trainings API). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.runai is immutable"))]
    pub runai: Option<Box<RunaiJob>>,

    /// An OpenPAI job (job protocol v2, or the v1 JSON config when the ApiClient selects OpenpaiV1). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.openpai is immutable"))]
    pub openpai: Option<Box<OpenpaiJob>>,

    /// An Eggplant DAI execution (or legacy model run). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.dai is immutable"))]
    pub dai: Option<Box<DaiJob>>,

    /// A job on a generic OAuth2-protected REST API, described by its calls. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.generic is immutable"))]
    pub generic: Option<Box<GenericJob>>,

    /// Suspend the job: not yet submitted → not submitted; running → stopped or suspended remotely;
    /// set back to false → resumed (or resubmitted where the platform cannot resume).
    #[serde(default)]
    pub suspend: bool,

    /// How many times a failed remote run is resubmitted as a new attempt before the RemoteJob fails.
    /// Default 0: remote platforms retry on their own, and a rerun costs accelerator time.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub backoff_limit: i32,

    /// Seconds after the first submission after which a job that has not finished is cancelled
    /// remotely and marked Failed with reason DeadlineExceeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,

    /// Seconds after the job finished (Succeeded, Failed, Cancelled) after which the RemoteJob is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,

    /// What deleting the RemoteJob does to the remote job: Cancel (default) stops it remotely and waits
    /// for the platform to confirm; Orphan leaves it running.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// How often the remote state is polled while the job runs (e.g. `30s`). Default: adaptive, quicker
    /// while queued, slower while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = duration::PATTERN))]
    #[x_kube(validation = Rule::new("!self.matches('^(0+(ms|s|m|h))+$')").message("spec.pollInterval must be positive"))]
    pub poll_interval: Option<String>,
}

/// Reference to an ApiClient.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientRef {
    /// Name of the ApiClient.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the ApiClient; defaults to the RemoteJob's. Another namespace works only when that
    /// ApiClient lists this RemoteJob's namespace in spec.allowedNamespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// What happens remotely when a RemoteJob is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Cancel the remote job and wait for the platform to confirm.
    #[default]
    Cancel,
    /// Leave the remote job alone.
    Orphan,
}

impl RemoteJobSpec {
    /// The job bodies, as the platform seam reads them.
    pub fn job(&self) -> Job<'_> {
        Job {
            runai: self.runai.as_deref(),
            openpai: self.openpai.as_deref(),
            dai: self.dai.as_deref(),
            generic: self.generic.as_deref(),
        }
    }
}

/// Observed state of a RemoteJob.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteJobStatus {
    /// Our phase: Pending, Submitting, Queued, Running, Succeeded, Failed, Cancelled, Suspended, Unknown.
    #[serde(default)]
    pub phase: RemoteJobPhase,
    /// The platform's id of the current attempt (Run:ai workloadId, OpenPAI `user~name`, DAI execution id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The name the operator gave the current attempt remotely (deterministic; used to adopt after a crash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
    /// The platform's own word for the state (e.g. Running, WAITING, Passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_state: Option<String>,
    /// A short, sanitized human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A link to the job in the platform's UI or API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Number of submissions made (attempts), including the current one.
    #[serde(default)]
    pub attempts: i32,
    /// How many attempts failed on the platform (what backoffLimit counts; resubmissions after a
    /// suspend are attempts but not failures).
    #[serde(default)]
    pub failed_attempts: i32,
    /// When the first attempt was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the job reached a terminal phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// A cancel (deadline, suspend, deletion) was decided but the platform has not confirmed it yet;
    /// it is retried with backoff until it does (a job the platform no longer has counts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_pending: bool,
    /// jobrelay itself stopped the remote job (spec.suspend, on a platform that suspends in place). A
    /// stop the platform shows without this mark was made by someone else there: it is shown (reason
    /// StoppedOnPlatform) and not resumed behind their back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_by_operator: bool,
    /// Submitted, Running, Complete, Failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
