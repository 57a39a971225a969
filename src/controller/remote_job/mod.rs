//! RemoteJob controller: fetch (ApiClient, remote observation) → [`plan::plan`] → write status → one
//! remote step. Every decision lives in `plan.rs`; this module only does IO.

pub mod batch;
pub mod client_ref;
pub mod model;
pub mod observe;
pub mod plan;
pub mod platform_remote;
pub mod remote;
pub mod runner;
pub mod status_updates;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::json;

pub(crate) use crate::crd::conditions::reasons;
use crate::crd::conditions::{self, Stamp, types};
use crate::crd::{ApiClient, RemoteJob, RemoteJobPhase, RemoteJobStatus};
use model::{Observed, Step};
use plan::Input;
use remote::{Remote, RemoteError};
use status_updates::CreateOutcome;

/// The finalizer that lets a Cancel-policy RemoteJob stop its remote job before it goes.
pub const FINALIZER: &str = "jobrelay.io/remote-job";
const FIELD_MANAGER: &str = "jobrelay";

/// A platform handle, or why the ApiClient cannot be used (condition reason, message).
pub type RemoteFor = Result<Arc<dyn Remote>, (&'static str, String)>;

/// Builds the platform handle for an ApiClient (token, HTTP client, adapter).
pub trait RemoteFactory: Send + Sync {
    /// `Err((reason, message))` when the ApiClient cannot be used for jobs.
    fn remote_for(&self, client: &ApiClient) -> futures::future::BoxFuture<'_, RemoteFor>;
}

pub struct Context {
    pub client: kube::Client,
    pub remotes: Arc<dyn RemoteFactory>,
    pub recorder: Recorder,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Per RemoteJob uid: no remote call before this instant (a platform's Retry-After, or our backoff).
    /// Our own status write would otherwise re-trigger a reconcile at once and ignore the wait.
    pub not_before: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl Context {
    fn wait_left(&self, uid: &str) -> Option<Duration> {
        let map = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        let left = map
            .get(uid)?
            .checked_duration_since(std::time::Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    fn hold_off(&self, uid: &str, wait: Duration) {
        let mut map = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        map.retain(|_, t| *t > now);
        map.insert(uid.to_string(), now + wait);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("RemoteJob has no namespace")]
    NoNamespace,
}

pub async fn reconcile(job: Arc<RemoteJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = job.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<RemoteJob> = Api::namespaced(ctx.client.clone(), &ns);
    let deleting = job.meta().deletion_timestamp.is_some();
    if !deleting && !job.finalizers().iter().any(|f| f == FINALIZER) {
        add_finalizer(&api, &job).await?;
        return Ok(Action::await_change());
    }
    if deleting && !job.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }

    if let Some(left) = ctx.wait_left(&job.uid().unwrap_or_default()) {
        return Ok(Action::requeue(left));
    }
    let (client_state, remote) = client_ref::resolve(&ctx, &job, &ns).await?;
    let status = job.status.clone().unwrap_or_default();
    let observed = match &remote {
        Some(r) => match observe::observe(r.as_ref(), &job, &status).await {
            Ok(o) => o,
            Err(e) => return remote_trouble(&ctx, &api, &job, &status, &e).await,
        },
        None => Observed::Nothing,
    };
    let caps = remote
        .as_ref()
        .map(|r| r.capabilities())
        .unwrap_or(crate::platform::Capabilities {
            lookup_by_name: true,
            suspend_resume: false,
        });
    let name_of = |attempt: i32| {
        remote
            .as_ref()
            .map(|r| r.remote_name(&job, attempt))
            .unwrap_or_default()
    };
    let mut observed = observed;
    loop {
        let p = plan::plan(&Input {
            spec: &job.spec,
            status: &status,
            at: Stamp {
                generation: job.metadata.generation,
                now: Timestamp::now(),
            },
            deleting,
            client: &client_state,
            caps,
            observed: &observed,
            remote_name: &name_of,
        });
        write_status(&ctx, &api, &job, &status, &p.status).await?;
        let Some(remote) = remote.as_ref() else {
            return finish_step(&api, &job, p.step, p.requeue).await;
        };
        let result = match &p.step {
            Step::Create => create(&ctx, &api, &job, remote.as_ref(), &p.status).await,
            Step::ReconcileUnknownStart => {
                let since = intent_time(&p.status);
                match remote.find_unknown_start(&job, since).await {
                    // Fold the answer in and plan again (once): found → adopt; absent → create.
                    Ok(Some(view)) => {
                        observed = Observed::Found {
                            view,
                            attempt: p.status.attempts,
                        };
                        continue;
                    }
                    Ok(None) if observed != Observed::Absent => {
                        observed = Observed::Absent;
                        continue;
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Step::Cancel => call_on_id(&p.status, |id| remote.cancel(&job, id)).await,
            Step::Suspend => call_on_id(&p.status, |id| remote.suspend(&job, id)).await,
            Step::Resume => call_on_id(&p.status, |id| remote.resume(&job, id)).await,
            Step::None | Step::DeleteObject | Step::RemoveFinalizer => {
                return finish_step(&api, &job, p.step, p.requeue).await;
            }
        };
        return match result {
            Ok(()) => Ok(Action::requeue(
                p.requeue
                    .unwrap_or(Duration::from_secs(5))
                    .min(Duration::from_secs(2)),
            )),
            Err(e) => remote_trouble(&ctx, &api, &job, &p.status, &e).await,
        };
    }
}

/// The time the current submission intent was recorded (for matching a start whose answer was lost).
fn intent_time(status: &RemoteJobStatus) -> Timestamp {
    conditions::find(&status.conditions, types::SUBMITTED)
        .map(|c| c.last_transition_time.0)
        .or(status.start_time.as_ref().map(|t| t.0))
        .unwrap_or_else(Timestamp::now)
}

async fn call_on_id<'a, F>(status: &'a RemoteJobStatus, call: F) -> Result<(), RemoteError>
where
    F: FnOnce(&'a str) -> futures::future::BoxFuture<'a, Result<(), RemoteError>>,
{
    match status.remote_id.as_deref() {
        Some(id) => match call(id).await {
            Err(RemoteError::NotFound) => Ok(()),
            other => other,
        },
        None => Ok(()),
    }
}

/// Sends the create for the intent already written to status, and records the answer.
async fn create(
    ctx: &Context,
    api: &Api<RemoteJob>,
    job: &RemoteJob,
    remote: &dyn Remote,
    status: &RemoteJobStatus,
) -> Result<(), RemoteError> {
    let name = status.remote_name.clone().unwrap_or_default();
    let outcome = match remote.create(job, &name).await {
        Ok(view) => CreateOutcome::Accepted(view),
        // Someone (an earlier try of ours) already created it: adopt.
        Err(RemoteError::Conflict { .. }) => match remote.lookup(job, &name).await? {
            Some(view) => CreateOutcome::Accepted(view),
            None => {
                return Err(RemoteError::OutcomeUnknown {
                    message: "conflict, but no job by that name".into(),
                });
            }
        },
        Err(RemoteError::Permanent { message }) => CreateOutcome::Rejected(message),
        Err(e) => return Err(e),
    };
    let now = Timestamp::now();
    if let (CreateOutcome::Accepted(_), 1, Some(created)) = (
        &outcome,
        status.attempts,
        job.metadata.creation_timestamp.as_ref(),
    ) {
        let secs = (now.as_millisecond() - created.0.as_millisecond()).max(0) as f64 / 1000.0;
        ctx.metrics.submit_seconds.observe(secs);
    }
    let next = status_updates::after_create(status, &outcome, job.metadata.generation, now);
    write_status(ctx, api, job, status, &next)
        .await
        .map_err(|e| RemoteError::Retriable {
            message: e.to_string(),
            retry_after: None,
        })
}

async fn finish_step(
    api: &Api<RemoteJob>,
    job: &RemoteJob,
    step: Step,
    requeue: Option<Duration>,
) -> Result<Action, Error> {
    match step {
        Step::DeleteObject => {
            api.delete(&job.name_any(), &Default::default()).await?;
            Ok(Action::await_change())
        }
        Step::RemoveFinalizer => {
            remove_finalizer(api, job).await?;
            Ok(Action::await_change())
        }
        _ => Ok(requeue
            .map(Action::requeue)
            .unwrap_or_else(Action::await_change)),
    }
}

/// A remote call failed: say so in status (keeping the phase) and come back when it makes sense.
async fn remote_trouble(
    ctx: &Context,
    api: &Api<RemoteJob>,
    job: &RemoteJob,
    status: &RemoteJobStatus,
    err: &RemoteError,
) -> Result<Action, Error> {
    tracing::info!(job = %job.name_any(), error = %err, "remote call failed");
    ctx.hold_off(&job.uid().unwrap_or_default(), err.requeue_after());
    let mut next = status.clone();
    next.message = Some(err.to_string());
    write_status(ctx, api, job, status, &next).await?;
    Ok(Action::requeue(err.requeue_after()))
}

async fn write_status(
    ctx: &Context,
    api: &Api<RemoteJob>,
    job: &RemoteJob,
    old: &RemoteJobStatus,
    new: &RemoteJobStatus,
) -> Result<(), kube::Error> {
    if old == new && job.status.is_some() {
        return Ok(());
    }
    let patch = json!({"apiVersion": "jobrelay.io/v1alpha1", "kind": "RemoteJob", "status": new});
    api.patch_status(
        &job.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    if old.phase != new.phase {
        tracing::info!(
            namespace = %job.namespace().unwrap_or_default(), job = %job.name_any(),
            from = old.phase.as_str(), to = new.phase.as_str(), remote_id = ?new.remote_id, "phase changed"
        );
        ctx.metrics
            .job_phase_changes
            .get_or_create(&crate::metrics::PhaseLabels {
                phase: new.phase.as_str().into(),
            })
            .inc();
        publish_phase_event(ctx, job, new).await;
    }
    if let Some(c) = status_updates::held_back(old, new) {
        publish(ctx, job, EventType::Warning, &c.reason, &c.message).await;
    }
    Ok(())
}

async fn publish_phase_event(ctx: &Context, job: &RemoteJob, status: &RemoteJobStatus) {
    let type_ = if status.phase == RemoteJobPhase::Failed {
        EventType::Warning
    } else {
        EventType::Normal
    };
    let note = status.message.clone().unwrap_or_default();
    publish(ctx, job, type_, status.phase.as_str(), &note).await;
}

async fn publish(ctx: &Context, job: &RemoteJob, type_: EventType, reason: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &job.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing event failed");
    }
}

async fn add_finalizer(api: &Api<RemoteJob>, job: &RemoteJob) -> Result<(), Error> {
    let mut finalizers = job.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": job.resource_version()}});
    api.patch(
        &job.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

async fn remove_finalizer(api: &Api<RemoteJob>, job: &RemoteJob) -> Result<(), Error> {
    let finalizers: Vec<_> = job
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": job.resource_version()}});
    match api
        .patch(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
