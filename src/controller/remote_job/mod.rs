//! RemoteJob controller: fetch (the ApiClient as a platform [`Session`], the remote observation) →
//! [`plan::plan`] → write status → the plan's one step. This module only does IO: what to do is
//! decided in `plan.rs` (the step and the status) and `decide.rs` (what a step's answer means).

pub mod client_ref;
pub mod context;
mod deadline;
pub mod decide;
pub mod deletion;
pub mod model;
pub mod observe;
pub mod plan;
pub mod platform_remote;
pub mod reachability;
pub mod runner;
pub mod status_updates;
mod stopped;
mod submit;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::crd::conditions::Stamp;
use crate::crd::{RemoteJob, RemoteJobPhase, RemoteJobStatus};
use crate::platform::{RemoteError, Session};
use decide::AfterSearch;
use model::{Observed, Step};
use plan::Input;

pub use context::{Backoffs, Context, Error};

pub use crate::crd::REMOTE_JOB_FINALIZER as FINALIZER;
const FIELD_MANAGER: &str = "jobrelay";

/// Asks the ApiClient controller to re-check the in-use protection of `job`'s ApiClient.
fn wake_client(ctx: &Context, job: &RemoteJob) {
    let ns = job.namespace().unwrap_or_default();
    let client_ns = job.spec.client_ref.namespace.as_deref().unwrap_or(&ns);
    ctx.shared.wake(client_ns, &job.spec.client_ref.name);
}

/// Whether `job` with `status` holds its ApiClient (either while it is deleted or not).
fn holding(job: &RemoteJob, status: &RemoteJobStatus) -> (bool, bool) {
    let mut j = job.clone();
    j.status = Some(status.clone());
    let ns = job.namespace().unwrap_or_default();
    let client_ns = job.spec.client_ref.namespace.as_deref().unwrap_or(&ns);
    let name = &job.spec.client_ref.name;
    (
        crate::controller::in_use::holds(&j, client_ns, name, false),
        crate::controller::in_use::holds(&j, client_ns, name, true),
    )
}

pub async fn reconcile(job: Arc<RemoteJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = job.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<RemoteJob> = Api::namespaced(ctx.client.clone(), &ns);
    let deleting = job.meta().deletion_timestamp.is_some();
    // The finalizer is added under the object's resourceVersion, so its success proves the status
    // we saw is the stored one; go on with the answer in the same pass (no extra round).
    let job = if !deleting && !job.finalizers().iter().any(|f| f == FINALIZER) {
        let patched = add_finalizer(&api, &job).await?;
        ctx.written.touched(
            &patched.uid().unwrap_or_default(),
            patched.resource_version().as_deref(),
        );
        wake_client(&ctx, &job);
        if patched
            .status
            .as_ref()
            .is_none_or(|s| *s == RemoteJobStatus::default())
        {
            // Never handled (no finalizer, no status): nothing of it can be on the platform.
            ctx.written.wrote(
                &patched.uid().unwrap_or_default(),
                patched.resource_version(),
                &RemoteJobStatus::default(),
            );
        }
        Arc::new(patched)
    } else {
        job
    };
    if deleting && !job.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }

    // A deletion switched to Orphan makes no remote call: it need not wait out a failing cancel's backoff.
    let orphaning = deleting && job.spec.deletion_policy == crate::crd::DeletionPolicy::Orphan;
    if let Some(left) = ctx
        .wait_left(&job.uid().unwrap_or_default())
        .filter(|_| !orphaning)
    {
        return Ok(Action::requeue(left));
    }
    // An open intent (Submitting) decides whether to create: decide on the apiserver's latest status,
    // not on a cache that may not have seen this process's own last write yet — a plan made from the
    // intent alone would overwrite the accepted create's remote id (status is server-side applied).
    // The same for any object the cache shows at another version than this process last wrote: a
    // plan on an older status writes it back (one step further) and looks up what is already known.
    let uid = job.uid().unwrap_or_default();
    // The watch shows an older write of this process; the newer one follows (no GET, no decision on
    // what is already replaced). Its event reconciles again, so nothing waits on a timer here.
    if !deleting
        && ctx
            .written
            .superseded(&uid, job.resource_version().as_deref())
    {
        return Ok(Action::await_change());
    }
    let open_intent = job.status.as_ref().map(|s| s.phase) == Some(RemoteJobPhase::Submitting);
    let job = if open_intent || ctx.written.behind(&uid, job.resource_version().as_deref()) {
        match api.get_opt(&job.name_any()).await? {
            Some(fresh) if fresh.uid() == job.uid() => {
                ctx.written.read(&uid, fresh.resource_version());
                Arc::new(fresh)
            }
            _ => return Ok(Action::await_change()),
        }
    } else {
        job
    };
    let queued = match ctx.kueue {
        true => crate::controller::queue::sync::sync(&ctx.client, &job, false).await?,
        false => crate::controller::queue::sync::Outcome::not_queued(),
    };
    let spec = queued.effective_spec(&job.spec);
    let (client_state, remote, no_token) = client_ref::resolve(&ctx, &job, &ns).await?;
    let status = job.status.clone().unwrap_or_default();
    let known = ctx.written.known(&uid, job.resource_version().as_deref());
    let observed = match &remote {
        Some(r) => match observe::observe(r.as_ref(), &job, &status, known).await {
            Ok(o) => o,
            Err(e) => return remote_trouble(&ctx, &api, &job, &status, &e, Some(r)).await,
        },
        None => Observed::Nothing,
    };
    let caps = remote
        .as_ref()
        .map(|r| r.capabilities())
        .unwrap_or(crate::platform::Capabilities::NAMED);
    let name_of = |attempt: i32| {
        remote
            .as_ref()
            .map(|_| observe::remote_name(&job, attempt))
            .unwrap_or_default()
    };
    let mut observed = observed;
    loop {
        let p = plan::plan(&Input {
            spec: &spec,
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
            confirm_resubmit: job
                .annotations()
                .get(plan::CONFIRM_RESUBMIT)
                .map(String::as_str),
            deleted_at: job.meta().deletion_timestamp.as_ref().map(|t| t.0),
        });
        let mut p = p;
        // The Workload goes before the RemoteJob (Finished, released), now that nothing runs remotely.
        if queued.fold_into(&mut p, job.metadata.generation)
            && crate::controller::queue::sync::sync(&ctx.client, &job, true)
                .await?
                .holds
        {
            (p.step, p.requeue) = (Step::None, Some(Duration::from_secs(1)));
        }
        let no_call_follows = matches!(
            p.step,
            Step::None | Step::DeleteObject | Step::RemoveFinalizer
        );
        match &observed {
            Observed::Found { view, .. } if no_call_follows => {
                set_reachability(&job, &mut p.status, &reachability::of_view(view));
            }
            Observed::Absent if no_call_follows => p.status = answered(&job, p.status),
            _ => {}
        }
        if let model::ClientState::Unusable { message, .. } = &client_state {
            // No call was made: the platform is not known to answer — out of reach when the
            // ApiClient has no token because its token endpoint fails, else not known.
            let r = no_token
                .clone()
                .unwrap_or_else(|| reachability::not_sent(message));
            set_reachability(&job, &mut p.status, &r);
        }
        write_status(&ctx, &api, &job, &status, &p.status).await?;
        if let Some((type_, reason, note)) =
            crate::controller::queue::sync::event(&status, &p.status)
        {
            publish(&ctx, &job, type_, &reason, &note).await;
        }
        if let Some((reason, message)) = &p.warning {
            publish(&ctx, &job, EventType::Warning, reason, message).await;
        }
        let Some(remote) = remote.as_ref() else {
            return finish_step(&ctx, &api, &job, p.step, p.requeue).await;
        };
        let on_id = p.status.remote_id.as_deref();
        let result = match (&p.step, on_id) {
            (Step::Create, _) => match submit::create(&ctx, &api, &job, remote, &p.status).await {
                Ok(()) => Ok(()),
                // The failure is recorded in status already (retrying, or outcome unknown).
                Err((written, e)) => {
                    return remote_trouble(&ctx, &api, &job, &written, &e, Some(remote)).await;
                }
            },
            (Step::ReconcileUnknownStart, _) => {
                let since = decide::intent_time(&p.status, Timestamp::now());
                let answer = remote.find_start(job.spec.job(), since).await;
                match decide::search_answer(answer, &observed, p.status.attempts) {
                    AfterSearch::PlanAgain(o) => {
                        observed = o;
                        continue;
                    }
                    AfterSearch::Done(result) => result,
                }
            }
            (Step::Cancel, Some(id)) => {
                let answer = decide::call_answer(remote.cancel(job.spec.job(), id).await);
                if answer.is_ok() {
                    let next = answered(&job, decide::cancel_confirmed(&p.status));
                    write_status(&ctx, &api, &job, &p.status, &next).await?;
                }
                answer
            }
            (Step::Suspend, Some(id)) => {
                decide::call_answer(remote.suspend(job.spec.job(), id).await)
            }
            (Step::Resume, Some(id)) => {
                decide::call_answer(remote.resume(job.spec.job(), id).await)
            }
            (Step::Cancel | Step::Suspend | Step::Resume, None) => Ok(()),
            (Step::None | Step::DeleteObject | Step::RemoveFinalizer, _) => {
                return finish_step(&ctx, &api, &job, p.step, p.requeue).await;
            }
        };
        return match result {
            Ok(()) => {
                ctx.not_before.succeeded(&uid);
                if matches!(
                    p.step,
                    Step::Suspend | Step::Resume | Step::ReconcileUnknownStart
                ) {
                    write_status(
                        &ctx,
                        &api,
                        &job,
                        &p.status,
                        &answered(&job, p.status.clone()),
                    )
                    .await?;
                }
                Ok(Action::requeue(decide::requeue_after_step(p.requeue)))
            }
            Err(e) => remote_trouble(&ctx, &api, &job, &p.status, &e, Some(remote)).await,
        };
    }
}

async fn finish_step(
    ctx: &Context,
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
            ctx.written.drop_job(&job.uid().unwrap_or_default());
            remove_finalizer(api, job).await?;
            wake_client(ctx, job);
            Ok(Action::await_change())
        }
        _ => {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            Ok(requeue
                .map(|d| Action::requeue(observe::poll_wait(d, now_ms)))
                .unwrap_or_else(Action::await_change))
        }
    }
}

/// `status` with RemoteReachable True: the platform answered.
fn answered(job: &RemoteJob, mut status: RemoteJobStatus) -> RemoteJobStatus {
    set_reachability(job, &mut status, &reachability::Reachability::answered());
    status
}

fn stamp(job: &RemoteJob) -> Stamp {
    Stamp {
        generation: job.metadata.generation,
        now: Timestamp::now(),
    }
}

fn set_reachability(job: &RemoteJob, status: &mut RemoteJobStatus, r: &reachability::Reachability) {
    stamp(job)
        .on(&mut status.conditions)
        .set(reachability::TYPE, r.status, r.reason, &r.message);
}

/// A remote call failed: say so in status (keeping the phase; RemoteReachable with the reason) and
/// come back when it makes sense.
async fn remote_trouble(
    ctx: &Context,
    api: &Api<RemoteJob>,
    job: &RemoteJob,
    status: &RemoteJobStatus,
    err: &RemoteError,
    session: Option<&Session>,
) -> Result<Action, Error> {
    tracing::info!(job = %job.name_any(), error = %err, "remote call failed");
    let wait = ctx.not_before.failed(&job.uid().unwrap_or_default(), err);
    let token_failure = session.and_then(|s| ctx.remotes.token_failures.get(&s.caller.uid));
    let reach = reachability::of_error(err, token_failure.as_ref());
    let mut next = status.clone();
    next.message = Some(decide::trouble_message(status, &reach.message));
    let deleted_at = job.meta().deletion_timestamp.as_ref().map(|t| t.0);
    if let Some(held) = deletion::cancel_failing(&next, deleted_at, stamp(job), &reach.message) {
        next = held;
    }
    set_reachability(job, &mut next, &reach);
    write_status(ctx, api, job, status, &next).await?;
    Ok(Action::requeue(wait))
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
    let uid = job.uid().unwrap_or_default();
    // Until the answer is in, what is stored is not known to be ours.
    ctx.written.forget(&uid);
    let stored = api
        .patch_status(
            &job.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    ctx.written.wrote(&uid, stored.resource_version(), new);
    if holding(job, old) != holding(job, new) {
        wake_client(ctx, job);
    }
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
    }
    if let Some((warning, reason)) = status_updates::phase_event(old, new) {
        let type_ = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let note = new.message.clone().unwrap_or_default();
        publish(ctx, job, type_, reason, &note).await;
    }
    publish_reachability(ctx, job, old, new).await;
    let news = status_updates::held_back(old, new).or(deletion::newly_failing(old, new));
    if let Some(c) = news {
        publish(ctx, job, EventType::Warning, &c.reason, &c.message).await;
    }
    Ok(())
}

/// An event when RemoteReachable changes its status or reason (not for every failed call): a
/// Warning naming the reason, a Normal one when the platform answers again.
async fn publish_reachability(
    ctx: &Context,
    job: &RemoteJob,
    old: &RemoteJobStatus,
    new: &RemoteJobStatus,
) {
    use crate::crd::conditions::{TRUE, find};
    let key = |s: &RemoteJobStatus| {
        find(&s.conditions, reachability::TYPE).map(|c| (c.status.clone(), c.reason.clone()))
    };
    let (before, after) = (key(old), key(new));
    let Some(c) = find(&new.conditions, reachability::TYPE) else {
        return;
    };
    // Nothing before: a new job (its first word is no news), or one whose ApiClient is not usable
    // yet at start, which its Submitted condition and event already tell.
    if before == after || before.is_none() {
        return;
    }
    if c.status == TRUE {
        // Answering again after failing (not after waiting for its ApiClient, which is no news).
        if before.is_some_and(|(status, _)| status == crate::crd::conditions::FALSE) {
            publish(ctx, job, EventType::Normal, reachability::TYPE, &c.message).await;
        }
    } else {
        publish(ctx, job, EventType::Warning, &c.reason, &c.message).await;
    }
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

async fn add_finalizer(api: &Api<RemoteJob>, job: &RemoteJob) -> Result<RemoteJob, Error> {
    let mut finalizers = job.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": job.resource_version()}});
    Ok(api
        .patch(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?)
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
