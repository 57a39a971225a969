//! IO: one RemoteJob's Workload brought one step further (see [`super::plan`]); the RemoteJob
//! controller calls [`sync`] before it plans the remote side and treats a closed gate as
//! `spec.suspend: true` (the user's spec itself is never changed: GitOps tools would fight it).

use std::time::Duration;

use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::json;

use super::build::{self, job_view, new_workload, status_patch, workload_view};
use super::plan::{Gate, Step, plan};
use super::report::{self, ADMITTED};
use super::workload::{self, PRIORITY_LABEL, Workload};
use crate::controller::remote_job::model::{Plan, Step as RemoteStep};
use crate::crd::conditions::{Stamp, find};
use crate::crd::{RemoteJob, RemoteJobSpec, RemoteJobStatus};
use kube::runtime::events::EventType;

/// What the RemoteJob controller takes from the queue for one reconcile.
pub struct Outcome {
    pub gate: Gate,
    /// The `Admitted` condition to show (status, reason, message).
    pub condition: Option<(&'static str, String, String)>,
    /// The Workload still holds quota (Kueue's finalizer): the RemoteJob must not go yet, or the
    /// Workload would be left behind with nobody to release it.
    pub holds: bool,
    pub requeue: Option<Duration>,
}

impl Outcome {
    pub fn not_queued() -> Outcome {
        Outcome {
            gate: Gate::NotQueued,
            condition: None,
            holds: false,
            requeue: None,
        }
    }

    /// The spec the RemoteJob plan decides on: suspended while Kueue has not admitted the job.
    pub fn effective_spec(&self, spec: &RemoteJobSpec) -> RemoteJobSpec {
        let mut spec = spec.clone();
        spec.suspend |= matches!(self.gate, Gate::Closed { .. });
        spec
    }

    /// Folds the queue into the RemoteJob's plan: the admission shown in its status, the sooner of
    /// the two requeues. True: the plan would drop the RemoteJob's finalizer while the Workload still
    /// holds quota (it must be finished and released first: [`sync`] with `remote_done`).
    pub fn fold_into(&self, p: &mut Plan, generation: Option<i64>) -> bool {
        if let Some((s, reason, message)) = &self.condition {
            let at = Stamp {
                generation,
                now: k8s_openapi::jiff::Timestamp::now(),
            };
            at.on(&mut p.status.conditions)
                .set(ADMITTED, s, reason, message);
        }
        p.requeue = match (p.requeue, self.requeue) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.holds && p.step == RemoteStep::RemoveFinalizer
    }
}

/// Whether the Kueue integration is on (decided once, at start-up, and said in one log line): the
/// cluster serves Kueue's Workload API and this operator may list Workloads where it serves (the
/// chart's `kueue.enabled`). Clusters without Kueue, or without that RBAC, run as before.
pub async fn detect(client: &kube::Client, namespaces: &[String]) -> bool {
    let served = match client
        .list_api_group_resources("kueue.x-k8s.io/v1beta2")
        .await
    {
        Ok(list) => list.resources.iter().any(|r| r.name == "workloads"),
        Err(_) => false,
    };
    if !served {
        tracing::info!(
            "Kueue's Workload API (kueue.x-k8s.io/v1beta2) not found: Kueue integration off"
        );
        return false;
    }
    for api in crate::controller::scope::apis::<Workload>(client, namespaces) {
        if let Err(e) = api.list(&ListParams::default().limit(1)).await {
            tracing::warn!(error = %e, "Kueue's Workload API found but Workloads cannot be listed (the chart's kueue.enabled=false?): Kueue integration off");
            return false;
        }
    }
    tracing::info!(
        "Kueue integration on: RemoteJobs labelled kueue.x-k8s.io/queue-name wait for admission"
    );
    true
}

/// The event for the change of the admission between two statuses.
pub fn event(old: &RemoteJobStatus, new: &RemoteJobStatus) -> Option<(EventType, String, String)> {
    let (warning, reason, note) = report::event(old, new)?;
    let type_ = if warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    Some((type_, reason, note))
}

/// Brings `job`'s Workload one step on (a few when one change leads straight to the next, e.g.
/// Finished then the finalizer dropped) and says what the job may do. `remote_done`: the RemoteJob
/// plan found nothing left running remotely (a deleted job whose cancel the platform confirmed,
/// while its status still shows the last phase seen).
pub async fn sync(
    client: &kube::Client,
    job: &RemoteJob,
    remote_done: bool,
) -> Result<Outcome, kube::Error> {
    let mut view = job_view(job);
    view.active &= !remote_done;
    let was_queued = job
        .status
        .as_ref()
        .is_some_and(|s| find(&s.conditions, ADMITTED).is_some());
    if view.queue.is_none() && !was_queued {
        return Ok(Outcome::not_queued());
    }
    let ns = job.namespace().unwrap_or_default();
    let uid = job.uid().unwrap_or_default();
    let api: Api<Workload> = Api::namespaced(client.clone(), &ns);
    let name = workload::name(&job.name_any(), &uid);
    let owned = |wl: Workload| {
        let ours = wl
            .owner_references()
            .iter()
            .any(|o| o.uid == uid && o.controller == Some(true));
        ours.then_some(wl)
    };
    let mut wl = api.get_opt(&name).await?.and_then(owned);
    for _ in 0..4 {
        let (gate, step) = plan(&view, wl.as_ref().map(workload_view).as_ref());
        let done = |wl: Option<&Workload>, requeue| {
            Ok(Outcome {
                condition: report::condition(&gate, wl),
                holds: wl.is_some_and(|w| workload_view(w).has_finalizer),
                gate: gate.clone(),
                requeue,
            })
        };
        let next = match &step {
            Step::Nothing => return done(wl.as_ref(), None),
            Step::Create => {
                let queue = view.queue.clone().unwrap_or_default();
                let priority = match priority(client, job).await? {
                    Ok(p) => p,
                    Err(message) => {
                        let gate = Gate::Closed {
                            reason: "PriorityClassNotFound",
                            message,
                        };
                        return Ok(Outcome {
                            condition: report::condition(&gate, None),
                            gate,
                            holds: false,
                            requeue: Some(Duration::from_secs(30)),
                        });
                    }
                };
                let p = priority.as_ref().map(|(c, v)| (c.as_str(), *v));
                let new = new_workload(job, &queue, p);
                match api.create(&PostParams::default(), &new).await {
                    Ok(created) => Some(created),
                    Err(kube::Error::Api(e)) if e.code == 409 => api.get_opt(&name).await?,
                    Err(e) => return Err(e),
                }
            }
            Step::RemoveFinalizer => {
                let w = wl.as_ref().expect("planned on a Workload");
                let patch = json!({"metadata": {
                    "finalizers": build::without_in_use(w),
                    "resourceVersion": w.resource_version(),
                }});
                tolerate(
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                )?
            }
            Step::Delete => {
                match api.delete(&name, &Default::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
                None
            }
            Step::SetQueue(q) => {
                let patch = json!({"spec": {"queueName": q}});
                tolerate(
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                )?
            }
            Step::Finish { .. } | Step::ReleaseQuota { .. } | Step::SetPodsReady(_) => {
                let w = wl.as_ref().expect("planned on a Workload");
                let at = Stamp {
                    generation: None,
                    now: k8s_openapi::jiff::Timestamp::now(),
                };
                let patch = status_patch(w, &step, at).expect("a status step");
                let answer = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
                tolerate(answer)?
            }
        };
        // A conflict (Kueue wrote in between) or a vanished Workload: read it again.
        wl = match next {
            Some(w) => owned(w),
            None => api.get_opt(&name).await?.and_then(owned),
        };
    }
    let (gate, _) = plan(&view, wl.as_ref().map(workload_view).as_ref());
    Ok(Outcome {
        condition: report::condition(&gate, wl.as_ref()),
        holds: wl.as_ref().is_some_and(|w| workload_view(w).has_finalizer),
        gate,
        requeue: Some(Duration::from_secs(1)),
    })
}

/// A write's answer: the object, or None when it conflicted or the object is gone (read again).
fn tolerate(answer: Result<Workload, kube::Error>) -> Result<Option<Workload>, kube::Error> {
    match answer {
        Ok(w) => Ok(Some(w)),
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// The job's WorkloadPriorityClass and its value (None: no label); Err: the class does not exist.
async fn priority(
    client: &kube::Client,
    job: &RemoteJob,
) -> Result<Result<Option<(String, i32)>, String>, kube::Error> {
    let Some(class) = job.labels().get(PRIORITY_LABEL) else {
        return Ok(Ok(None));
    };
    let gvk = GroupVersionKind::gvk("kueue.x-k8s.io", "v1beta2", "WorkloadPriorityClass");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "workloadpriorityclasses");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    Ok(match api.get_opt(class).await? {
        Some(c) => {
            let value = c.data.get("value").and_then(|v| v.as_i64()).unwrap_or(0);
            Ok(Some((class.clone(), value as i32)))
        }
        None => Err(format!("WorkloadPriorityClass {class} not found")),
    })
}
