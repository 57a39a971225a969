//! The ApiClient a RemoteJob names, dereferenced: found (same namespace, or another one that grants
//! the job's), on the job's platform, Ready, and turned into a [`Session`] to call. Anything short of
//! that is a [`ClientState::Unusable`] with the reason the job's Submitted condition will carry.

use std::sync::Arc;

use kube::{Api, ResourceExt};

use super::context::{Context, Error};
use super::model::ClientState;
use super::plan;
use crate::controller::in_use;
use crate::crd::conditions::reasons;
use crate::crd::conditions::{self, types};
use crate::crd::{ApiClient, RemoteJob};
use crate::platform::Session;

/// Resolves the ApiClient of `job` (in namespace `ns`).
pub async fn resolve(
    ctx: &Context,
    job: &RemoteJob,
    ns: &str,
) -> Result<(ClientState, Option<Arc<Session>>), Error> {
    let client_ns = job
        .spec
        .client_ref
        .namespace
        .clone()
        .unwrap_or_else(|| ns.to_string());
    let name = &job.spec.client_ref.name;
    let unusable = |reason, message: String| Ok((ClientState::Unusable { reason, message }, None));
    // From the ApiClient controller's caches; a GET only when they do not hold it.
    let found = match ctx.shared.client(&client_ns, name) {
        Some(found) => Some((*found).clone()),
        None => {
            let api: Api<ApiClient> = Api::namespaced(ctx.client.clone(), &client_ns);
            api.get_opt(name).await?
        }
    };
    let Some(client) = found else {
        return unusable(
            reasons::CLIENT_NOT_FOUND,
            format!("ApiClient {client_ns}/{name} not found"),
        );
    };
    if !plan::granted(&client_ns, &client.spec.allowed_namespaces, ns) {
        return unusable(
            reasons::CLIENT_NOT_GRANTED,
            format!(
                "ApiClient {client_ns}/{name} does not list namespace {ns} in spec.allowedNamespaces"
            ),
        );
    }
    if let Some(mismatch) = platform_mismatch(&client, job) {
        return unusable(reasons::PLATFORM_MISMATCH, mismatch);
    }
    let terminating = client.metadata.deletion_timestamp.is_some();
    if terminating && !in_use::holds(job, &client_ns, name, true) {
        // Being deleted: it serves the jobs it already runs (cancels included), no new ones.
        return unusable(
            reasons::CLIENT_NOT_READY,
            format!("ApiClient {client_ns}/{name} is being deleted"),
        );
    }
    let ready = client
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, types::READY));
    if let Some((reason, message)) = crate::auth::policy_refusal(&client) {
        return unusable(reason, message);
    }
    // A job that must cancel may still do so with a token that has not expired, although the
    // ApiClient is no longer Ready (e.g. its Secret went first in a namespace deletion).
    let must_cancel = job.metadata.deletion_timestamp.is_some()
        || job.status.as_ref().is_some_and(|s| s.cancel_pending);
    let cancel_anyway = must_cancel
        && ctx
            .remotes
            .tokens
            .cache
            .holds_usable(&client.uid().unwrap_or_default())
            .await;
    if !ready && !cancel_anyway {
        return unusable(
            reasons::CLIENT_NOT_READY,
            format!("ApiClient {client_ns}/{name} is not Ready"),
        );
    }
    match ctx.remotes.session(&client).await {
        Ok(r) => Ok((ClientState::Ready, Some(r))),
        Err((reason, message)) => unusable(reason, message),
    }
}

/// The body set on the RemoteJob must be the ApiClient's platform.
pub fn platform_mismatch(client: &ApiClient, job: &RemoteJob) -> Option<String> {
    use crate::crd::Platform::*;
    let s = &job.spec;
    let body = [
        (Runai, s.runai.is_some()),
        (Openpai, s.openpai.is_some()),
        (Dai, s.dai.is_some()),
        (Generic, s.generic.is_some()),
    ]
    .into_iter()
    .find_map(|(p, set)| set.then_some(p))?;
    (body != client.spec.platform).then(|| {
        format!(
            "spec.{} is set but ApiClient {} is platform {}",
            body.as_str(),
            client.name_any(),
            client.spec.platform.as_str()
        )
    })
}
