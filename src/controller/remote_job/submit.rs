//! The create call of an intent already written to status: confirm the ApiClient on a fresh read,
//! send the create, and record its answer (what the answer means is decided in `decide.rs` and
//! `status_updates.rs`).

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;

use super::decide::{self, AfterCreate};
use super::{Context, answered, client_ref, stamp, status_updates, write_status};
use crate::crd::conditions::Stamp;
use crate::crd::{RemoteJob, RemoteJobStatus};
use crate::platform::{RemoteError, Session};

/// Sends the create for the intent already written to status, and records the answer. A failure
/// is recorded too (Submitted: retrying, or outcome unknown); it comes back with the status written.
pub(super) async fn create(
    ctx: &Context,
    api: &Api<RemoteJob>,
    job: &RemoteJob,
    remote: &Session,
    status: &RemoteJobStatus,
) -> Result<(), (RemoteJobStatus, RemoteError)> {
    let name = status.remote_name.clone().unwrap_or_default();
    if let Some(why) = confirm_client(ctx, job).await {
        let next = client_ref::withdraw_intent(status, &why, stamp(job));
        write_status(ctx, api, job, status, &next)
            .await
            .map_err(|e| (status.clone(), not_sent(&e)))?;
        return Ok(());
    }
    let answer = match decide::create_answer(remote.create(job.spec.job(), &name).await) {
        AfterCreate::Record(outcome) => Ok(outcome),
        AfterCreate::LookUp => remote
            .lookup(job.spec.job(), &name)
            .await
            .and_then(decide::conflict_lookup),
        AfterCreate::Fail(e) => Err(e),
    };
    let outcome = match answer {
        Ok(outcome) => outcome,
        Err(e) => {
            let at = Stamp {
                generation: job.metadata.generation,
                now: Timestamp::now(),
            };
            let next = status_updates::after_create_failure(status, &e, at);
            return match write_status(ctx, api, job, status, &next).await {
                Ok(()) => Err((next, e)),
                Err(_) => Err((status.clone(), e)),
            };
        }
    };
    let now = Timestamp::now();
    if let (status_updates::CreateOutcome::Accepted(_), 1, Some(created)) = (
        &outcome,
        status.attempts,
        job.metadata.creation_timestamp.as_ref(),
    ) {
        let secs = (now.as_millisecond() - created.0.as_millisecond()).max(0) as f64 / 1000.0;
        ctx.metrics.submit_seconds.observe(secs);
    }
    let next = answered(
        job,
        status_updates::after_create(status, &outcome, job.metadata.generation, now),
    );
    write_status(ctx, api, job, status, &next)
        .await
        .map_err(|e| (status.clone(), not_sent(&e)))
}

/// A fresh GET of `job`'s ApiClient right before a create (the cache may be stale): why the create
/// must not go out, if so. A failed GET refuses too: the create is tried again next round.
async fn confirm_client(ctx: &Context, job: &RemoteJob) -> Option<String> {
    let ns = job.namespace().unwrap_or_default();
    let client_ns = job.spec.client_ref.namespace.as_deref().unwrap_or(&ns);
    let name = &job.spec.client_ref.name;
    let api: Api<crate::crd::ApiClient> = Api::namespaced(ctx.client.clone(), client_ns);
    match api.get_opt(name).await {
        Ok(fresh) => client_ref::refuse_create(fresh.as_ref(), client_ns, name),
        Err(e) => Some(format!("reading ApiClient {client_ns}/{name}: {e}")),
    }
}

fn not_sent(e: &kube::Error) -> RemoteError {
    RemoteError::Retriable {
        message: e.to_string(),
        retry_after: None,
    }
}
