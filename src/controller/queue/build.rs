//! Pure: what jobrelay writes to and reads from a Workload — the requests a RemoteJob counts against
//! a ClusterQueue, the Workload it creates, the views [`super::plan`] decides on, and the status
//! changes of a [`Step`] (Kueue's own wording, from pkg/workload/workload.go v0.17.0).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use super::plan::{JobView, Step, WorkloadView};
use super::workload::{
    self, ADMITTED, EVICTED, FINISHED, POD_SET, PODS_READY, PodSet, PriorityClassRef, QUEUE_LABEL,
    QUOTA_RESERVED, REQUEUED, RESOURCE_IN_USE, Workload, WorkloadSpec,
};
use crate::crd::conditions::{FALSE, Stamp, TRUE};
use crate::crd::{RemoteJob, RemoteJobPhase as Phase, RemoteJobSpec};

/// The label Kueue puts on a job's Workload with the job's uid.
pub const JOB_UID_LABEL: &str = "kueue.x-k8s.io/job-uid";

/// The resources a RemoteJob counts against its ClusterQueue: a resource name per platform (so a
/// ResourceFlavor can cover remote GPUs apart from the cluster's own), zero amounts left out, and
/// `jobrelay.io/<platform>-jobs: 1` for every job so that an admin can cap concurrent remote jobs.
/// An OpenPAI job given as a full `protocol` object counts only as a job: its typed fields are
/// ignored by the platform too.
pub fn requests(spec: &RemoteJobSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |platform: &str, what: &str, amount: i64, unit: &str| {
        if amount > 0 {
            out.insert(
                format!("jobrelay.io/{platform}-{what}"),
                format!("{amount}{unit}"),
            );
        }
    };
    let platform = if let Some(r) = &spec.runai {
        put(
            "runai",
            "gpu",
            r.gpu_devices_request.unwrap_or(0).into(),
            "",
        );
        "runai"
    } else if let Some(o) = &spec.openpai {
        if o.protocol.is_none() {
            let n = i64::from(o.instances);
            put("openpai", "gpu", n * i64::from(o.gpu), "");
            put("openpai", "cpu", n * i64::from(o.cpu), "");
            put("openpai", "memory", n * i64::from(o.memory_mb), "Mi");
        }
        "openpai"
    } else if spec.dai.is_some() {
        "dai"
    } else {
        "generic"
    };
    put(platform, "jobs", 1, "");
    out
}

/// The Workload jobrelay creates for `job` (queued in `queue`), with the priority class and its
/// value when the job names one.
pub fn new_workload(job: &RemoteJob, queue: &str, priority: Option<(&str, i32)>) -> Workload {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let owner = OwnerReference {
        api_version: "jobrelay.io/v1alpha1".into(),
        kind: "RemoteJob".into(),
        name: name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let template = json!({"spec": {"containers": [{
        "name": POD_SET,
        "resources": {"requests": requests(&job.spec)},
    }]}});
    Workload {
        metadata: ObjectMeta {
            name: Some(workload::name(&name, &uid)),
            namespace: job.metadata.namespace.clone(),
            owner_references: Some(vec![owner]),
            finalizers: Some(vec![RESOURCE_IN_USE.into()]),
            labels: Some(BTreeMap::from([(JOB_UID_LABEL.into(), uid)])),
            ..Default::default()
        },
        spec: WorkloadSpec {
            pod_sets: vec![PodSet {
                name: POD_SET.into(),
                count: 1,
                template,
            }],
            queue_name: queue.into(),
            priority_class_ref: priority.map(|(class, _)| PriorityClassRef {
                group: "kueue.x-k8s.io".into(),
                kind: "WorkloadPriorityClass".into(),
                name: class.into(),
            }),
            priority: priority.map(|(_, value)| value),
            active: None,
        },
        status: None,
    }
}

/// The RemoteJob as the queue sees it.
pub fn job_view(job: &RemoteJob) -> JobView {
    let status = job.status.clone().unwrap_or_default();
    let ended = status.phase.is_terminal() && !status.cancel_pending;
    JobView {
        queue: job
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(QUEUE_LABEL))
            .cloned(),
        deleting: job.metadata.deletion_timestamp.is_some(),
        finished: ended.then(|| {
            let message = status
                .message
                .clone()
                .unwrap_or_else(|| status.phase.as_str().into());
            (status.phase == Phase::Succeeded, message)
        }),
        // Suspended means stopped remotely (cancelled, or suspended in place and seen so).
        active: !ended
            && (status.phase == Phase::Submitting
                || status.cancel_pending
                || (status.remote_id.is_some() && status.phase != Phase::Suspended)),
        running: status.phase == Phase::Running,
    }
}

/// The Workload as the queue sees it.
pub fn workload_view(wl: &Workload) -> WorkloadView {
    let status = wl.status.clone().unwrap_or_default();
    let cond = |t: &str| status.condition(t);
    let pending = cond(QUOTA_RESERVED)
        .filter(|c| c.status != TRUE && !c.message.is_empty())
        .map(|c| c.message.clone());
    WorkloadView {
        deleting: wl.metadata.deletion_timestamp.is_some(),
        finished: status.is_true(FINISHED),
        quota_reserved: status.is_true(QUOTA_RESERVED),
        admitted: status.is_true(ADMITTED),
        evicted: cond(EVICTED)
            .filter(|c| c.status == TRUE)
            .map(|c| (c.reason.clone(), c.message.clone())),
        pods_ready: cond(PODS_READY).map(|c| c.status == TRUE),
        has_finalizer: wl
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == RESOURCE_IN_USE),
        queue_name: wl.spec.queue_name.clone(),
        pending_message: pending,
        flavors: status.flavors(),
    }
}

/// The merge patch of the Workload's status for `step` (None: not a status change). The whole
/// condition list is sent (a merge patch replaces lists), so the caller sends it with the
/// resourceVersion it was read at: a concurrent write by Kueue makes it fail instead of being lost.
pub fn status_patch(wl: &Workload, step: &Step, at: Stamp) -> Option<Value> {
    let mut conditions: Vec<Condition> = wl
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let at = Stamp {
        generation: wl.metadata.generation,
        ..at
    };
    let mut set = at.on(&mut conditions);
    let mut admission_cleared = false;
    match step {
        Step::Finish { success, message } => {
            let reason = if *success { "Succeeded" } else { "Failed" };
            set.set(FINISHED, TRUE, reason, message);
        }
        Step::SetPodsReady(ready) => {
            let (status, reason, message) = if *ready {
                (TRUE, "PodsReady", "the remote job is running")
            } else {
                (FALSE, "WaitForStart", "the remote job is not running yet")
            };
            set.set(PODS_READY, status, reason, message);
        }
        Step::ReleaseQuota {
            requeue,
            reason,
            message,
        } => {
            set.set(QUOTA_RESERVED, FALSE, "Pending", message);
            set.set(
                ADMITTED,
                FALSE,
                "NoReservation",
                "The workload has no reservation",
            );
            if *requeue {
                set.set(REQUEUED, TRUE, reason, message);
            }
            admission_cleared = true;
        }
        _ => return None,
    }
    let mut status = json!({"conditions": conditions});
    if admission_cleared {
        status["admission"] = Value::Null;
    }
    Some(json!({
        "metadata": {"resourceVersion": wl.metadata.resource_version},
        "status": status,
    }))
}

/// The Workload's finalizers without Kueue's in-use one.
pub fn without_in_use(wl: &Workload) -> Vec<String> {
    wl.metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != RESOURCE_IN_USE)
        .cloned()
        .collect()
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
