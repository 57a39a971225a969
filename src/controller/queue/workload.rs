//! Kueue's `Workload` (kueue.x-k8s.io/v1beta2, its storage version): just the fields jobrelay reads or
//! writes. Unknown fields are ignored on read; writes are merge patches of these fields only, so the
//! fields Kueue owns are never sent back.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The label that puts a job into a Kueue LocalQueue.
pub const QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";
/// The label that names a WorkloadPriorityClass.
pub const PRIORITY_LABEL: &str = "kueue.x-k8s.io/priority-class";
/// Kueue's finalizer on a Workload whose quota a job holds; the job's controller removes it.
pub const RESOURCE_IN_USE: &str = "kueue.x-k8s.io/resource-in-use";
/// The pod set name Kueue uses for single-pod-set jobs.
pub const POD_SET: &str = "main";

// Condition types and reasons of the Workload API.
pub const QUOTA_RESERVED: &str = "QuotaReserved";
pub const ADMITTED: &str = "Admitted";
pub const EVICTED: &str = "Evicted";
pub const FINISHED: &str = "Finished";
pub const PODS_READY: &str = "PodsReady";
pub const REQUEUED: &str = "Requeued";

/// Workload: Kueue's unit of admission. jobrelay creates one per queued RemoteJob and owns it.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema,
)]
#[kube(
    group = "kueue.x-k8s.io",
    version = "v1beta2",
    kind = "Workload",
    namespaced,
    status = "WorkloadStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    pub pod_sets: Vec<PodSet>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub queue_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_ref: Option<PriorityClassRef>,
    /// The priority class's value (Kueue orders and preempts by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSet {
    pub name: String,
    pub count: i32,
    /// A pod template only as the carrier of the requests: Kueue reads resources from it.
    pub template: serde_json::Value,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriorityClassRef {
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    pub cluster_queue: String,
    #[serde(default)]
    pub pod_set_assignments: Vec<PodSetAssignment>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSetAssignment {
    pub name: String,
    /// Resource name → the ResourceFlavor Kueue assigned for it.
    #[serde(default)]
    pub flavors: BTreeMap<String, String>,
}

/// The Workload's name for a RemoteJob, as Kueue's jobframework names a job's Workload
/// (`GetWorkloadNameForOwnerWithGVK`): `remotejob-<name>` cut to fit, a dash, and five hex digits of
/// SHA-1 over kind, group, name and uid, so `kubectl get workloads` reads as for any other job kind.
pub fn name(job_name: &str, job_uid: &str) -> String {
    const MAX: usize = 253 - 1 - 5;
    let mut prefix = format!("remotejob-{job_name}");
    prefix.truncate(MAX);
    let input = format!("RemoteJob\njobrelay.io\n{job_name}\n{job_uid}");
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        input.as_bytes(),
    );
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{}", &hex[..5])
}

impl WorkloadStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    pub fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }

    /// The flavors Kueue assigned, as `resource=flavor` pairs (what a person wants to see).
    pub fn flavors(&self) -> Vec<String> {
        let Some(admission) = &self.admission else {
            return Vec::new();
        };
        admission
            .pod_set_assignments
            .iter()
            .flat_map(|a| a.flavors.iter().map(|(r, f)| format!("{r}={f}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kueue() {
        // Kueue's own function gives, for kind RemoteJob, group jobrelay.io, name "train", uid "u-1":
        // sha1("RemoteJob\njobrelay.io\ntrain\nu-1") starts with the five digits checked here.
        assert_eq!(name("train", "u-1"), "remotejob-train-82def");
        assert_ne!(
            name("train", "u-2"),
            name("train", "u-1"),
            "the uid is part of the hash"
        );
        let long = name(&"x".repeat(300), "u");
        assert_eq!(long.len(), 253, "cut to the object name limit");
    }
}
