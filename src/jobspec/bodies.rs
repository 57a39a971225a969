//! The per-platform job bodies of a RemoteJob. Common fields are typed; each body also takes a raw
//! passthrough object for fields we do not model, merged into what is sent. CEL rules are written as
//! the `x-kubernetes-validations` extension by hand (what kube's `KubeSchema` would emit) so that
//! this module needs no Kubernetes crate.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Schema for free-form objects: kept as given by the apiserver (no pruning).
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A name/value pair.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct EnvVar {
    /// Variable name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Variable value.
    #[serde(default)]
    pub value: String,
}

/// A Run:ai training (`POST /api/v1/workloads/trainings`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunaiJob {
    /// Run:ai project id.
    #[schemars(length(min = 1))]
    pub project_id: String,
    /// Run:ai cluster id (uuid).
    #[schemars(length(min = 1))]
    pub cluster_id: String,
    /// Container image.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Command (a single string, as the API takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Arguments (a single string, as the API takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<EnvVar>,
    /// Number of GPU devices (compute.gpuDevicesRequest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub gpu_devices_request: Option<i32>,
    /// CPU memory request, e.g. `100M` (compute.cpuMemoryRequest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_memory_request: Option<String>,
    /// Node pools, in order of preference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_pools: Vec<String>,
    /// Extra fields merged into the request's `spec` object as given (fields we do not model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub spec_overrides: Option<serde_json::Value>,
}

/// An OpenPAI job. Either the typed single-role fields (image, commands, resources) or a full
/// `protocol` object (job protocol v2) must be given; the job name is always chosen by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{"message": "spec.openpai needs image and commands, or a full protocol object", "rule": "has(self.protocol) || (has(self.image) && size(self.commands) > 0)"}]))]
pub struct OpenpaiJob {
    /// Virtual cluster to submit to.
    #[serde(default = "default_virtual_cluster")]
    #[schemars(length(min = 1))]
    pub virtual_cluster: String,
    /// Docker image of the single task role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Commands run in order by the task role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// Task role name.
    #[serde(default = "default_task_role")]
    #[schemars(regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$"))]
    pub task_role: String,
    /// Instances of the task role.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub instances: i32,
    /// CPUs per instance.
    #[serde(default = "one")]
    #[schemars(range(min = 0))]
    pub cpu: i32,
    /// Memory per instance in MB.
    #[serde(default = "default_memory_mb")]
    #[schemars(range(min = 1))]
    #[serde(rename = "memoryMB")]
    pub memory_mb: i32,
    /// GPUs per instance.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub gpu: i32,
    /// OpenPAI's own retry count for the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub job_retry_count: Option<i32>,
    /// Parameters of the job protocol.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// A full job protocol v2 object; when set it is sent as given (with our name), and the typed
    /// fields above are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub protocol: Option<serde_json::Value>,
}

fn default_virtual_cluster() -> String {
    "default".into()
}
fn default_task_role() -> String {
    "main".into()
}
fn one() -> i32 {
    1
}
fn default_memory_mb() -> i32 {
    1024
}

/// An Eggplant DAI run: an execution-service run (model, test case, script or rerun) or, with the
/// legacy run API, a model run by name and group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"message": "spec.dai needs one of modelId, rerunId, script (execution service) or modelName (legacy run API)",
     "rule": "has(self.modelId) || has(self.rerunId) || has(self.script) || has(self.modelName)"},
    {"message": "spec.dai.group is required with spec.dai.modelName", "rule": "!has(self.modelName) || has(self.group)"},
]))]
pub struct DaiJob {
    /// Model id (uuid) to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Test case id; with modelId runs a fully configured test case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case_id: Option<i64>,
    /// A script to run (script-based runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Rerun an earlier execution by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_id: Option<i64>,
    /// Agent to run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Whether agentId names a hosted agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_hosted_agent: Option<bool>,
    /// Asset version id for snippets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_version_id: Option<String>,
    /// Asset path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_path: Option<String>,
    /// System under test id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sut_id: Option<String>,
    /// Select the system under test by tags instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sut_criteria: Vec<String>,
    /// Pause between steps, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub step_pause_time: Option<i64>,
    /// Legacy run API: the model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Legacy run API: the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Legacy run API: the agent name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// Legacy run API: iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub iterations: Option<i64>,
    /// Extra fields merged into the start request as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub extra: Option<serde_json::Value>,
}

/// HTTP methods a generic job may use.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
    Patch,
    Delete,
}

/// A job on a generic REST API. Paths are relative to the ApiClient's baseUrl; `{id}` and `{name}` are
/// replaced by the remote id and our remote name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenericJob {
    /// Path of the submit call, e.g. `/api/jobs`.
    #[schemars(regex(pattern = r"^/"))]
    pub submit_path: String,
    /// Method of the submit call (default POST).
    #[serde(default)]
    pub submit_method: HttpMethod,
    /// JSON body of the submit call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub body: Option<serde_json::Value>,
    /// JSON pointer to the id in the submit response (default `/id`).
    #[serde(default = "default_id_pointer")]
    pub id_pointer: String,
    /// Path of the status call, e.g. `/api/jobs/{id}`.
    #[schemars(regex(pattern = r"^/"))]
    pub status_path: String,
    /// JSON pointer to the state word in the status response (default `/status`).
    #[serde(default = "default_state_pointer")]
    pub state_pointer: String,
    /// JSON pointer to a human-readable message in the status response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_pointer: Option<String>,
    /// How the platform's state words map onto our phases.
    #[serde(default)]
    pub states: GenericStates,
    /// Path of the cancel call, e.g. `/api/jobs/{id}`; without it the job cannot be cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub cancel_path: Option<String>,
    /// Method of the cancel call (default DELETE).
    #[serde(default = "default_cancel_method")]
    pub cancel_method: HttpMethod,
    /// How to find a job by our remote name (`{name}` in the path), so that a submit whose answer was
    /// lost is adopted instead of waiting for a person. Without it, such a submit stops the RemoteJob
    /// in Submitting (Submitted=Unknown, reason OutcomeUnknown) until it is annotated
    /// `jobrelay.io/confirm-resubmit: "<attempt>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<GenericLookup>,
}

/// A GET that finds a job by the name the operator gave it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{"message": "spec.generic.lookup.path must contain {name}", "rule": "self.path.contains('{name}')"}]))]
pub struct GenericLookup {
    /// Path of the lookup call, containing `{name}`, e.g. `/api/jobs?name={name}`.
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// JSON pointer to the id of the job found in the lookup response (e.g. `/items/0/id`); a 404, or
    /// no value there, means no such job.
    pub id_pointer: String,
}

fn default_id_pointer() -> String {
    "/id".into()
}
fn default_state_pointer() -> String {
    "/status".into()
}
fn default_cancel_method() -> HttpMethod {
    HttpMethod::Delete
}

/// State words per phase (compared case-insensitively); unlisted words map to Unknown.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenericStates {
    #[serde(default = "default_queued")]
    pub queued: Vec<String>,
    #[serde(default = "default_running")]
    pub running: Vec<String>,
    #[serde(default = "default_succeeded")]
    pub succeeded: Vec<String>,
    #[serde(default = "default_failed")]
    pub failed: Vec<String>,
    #[serde(default = "default_cancelled")]
    pub cancelled: Vec<String>,
}

impl Default for GenericStates {
    fn default() -> Self {
        Self {
            queued: default_queued(),
            running: default_running(),
            succeeded: default_succeeded(),
            failed: default_failed(),
            cancelled: default_cancelled(),
        }
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}
fn default_queued() -> Vec<String> {
    words(&["queued", "pending", "waiting"])
}
fn default_running() -> Vec<String> {
    words(&["running", "started"])
}
fn default_succeeded() -> Vec<String> {
    words(&["succeeded", "completed", "success", "passed"])
}
fn default_failed() -> Vec<String> {
    words(&["failed", "error"])
}
fn default_cancelled() -> Vec<String> {
    words(&["cancelled", "canceled", "aborted", "stopped"])
}
