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
use crate::crd::conditions::{self, FALSE, Stamp, types};
use crate::crd::{ApiClient, RemoteJob, RemoteJobPhase, RemoteJobStatus};
use crate::platform::Session;

/// The ApiClient as the job can use it: its state, its session when usable, and when it is not Ready
/// because it has no token, what that says of the platform's reachability.
pub type Resolved = (
    ClientState,
    Option<Arc<Session>>,
    Option<super::reachability::Reachability>,
);

/// Resolves the ApiClient of `job` (in namespace `ns`).
pub async fn resolve(ctx: &Context, job: &RemoteJob, ns: &str) -> Result<Resolved, Error> {
    let client_ns = job
        .spec
        .client_ref
        .namespace
        .clone()
        .unwrap_or_else(|| ns.to_string());
    let name = &job.spec.client_ref.name;
    let unusable =
        |reason, message: String| Ok((ClientState::Unusable { reason, message }, None, None));
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
        let why = client
            .status
            .as_ref()
            .and_then(|s| conditions::find(&s.conditions, types::READY))
            .and_then(|c| {
                super::reachability::of_client_not_ready(
                    &format!("{client_ns}/{name}"),
                    &c.reason,
                    &c.message,
                )
            });
        let state = ClientState::Unusable {
            reason: reasons::CLIENT_NOT_READY,
            message: format!("ApiClient {client_ns}/{name} is not Ready"),
        };
        return Ok((state, None, why));
    }
    match ctx.remotes.session(&client).await {
        Ok(r) => Ok((ClientState::Ready, Some(r), None)),
        Err((reason, message)) => unusable(reason, message),
    }
}

/// Pure: may the create of an intent just written be sent, given the ApiClient as a fresh GET shows
/// it? The cached ApiClient the session came from may be stale: one already being deleted (its
/// in-use finalizer possibly dropped before our intent was written) must start no new job. `Some`:
/// why not. (Once the intent is written, a deletion that starts later sees it and keeps the
/// ApiClient until the job is done with it.)
pub fn refuse_create(fresh: Option<&ApiClient>, client_ns: &str, name: &str) -> Option<String> {
    match fresh {
        None => Some(format!("ApiClient {client_ns}/{name} no longer exists")),
        Some(c) if c.metadata.deletion_timestamp.is_some() => Some(format!(
            "ApiClient {client_ns}/{name} is being deleted: no new job is started"
        )),
        Some(_) => None,
    }
}

/// Pure: the intent withdrawn before its create was sent (nothing was created): back to Pending
/// with the attempt not counted, Submitted False with `why`, so the job holds the ApiClient no more.
pub fn withdraw_intent(status: &RemoteJobStatus, why: &str, at: Stamp) -> RemoteJobStatus {
    let mut next = status.clone();
    next.phase = RemoteJobPhase::Pending;
    next.remote_name = None;
    next.attempts = (next.attempts - 1).max(0);
    next.message = Some(why.to_string());
    at.on(&mut next.conditions)
        .set(types::SUBMITTED, FALSE, reasons::CLIENT_NOT_READY, why);
    next
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn a_create_goes_out_only_while_the_api_client_lives() {
        let live: ApiClient = serde_json::from_value(serde_json::json!({
            "apiVersion": "jobrelay.io/v1alpha1", "kind": "ApiClient",
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"platform": "runai", "baseUrl": "https://x", "auth": {"bearerToken": {}},
                     "credentialsSecretRef": {"name": "s"}}
        }))
        .unwrap();
        assert_eq!(refuse_create(Some(&live), "ns", "c"), None);
        let mut going = live.clone();
        going.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(5).unwrap()));
        assert!(
            refuse_create(Some(&going), "ns", "c")
                .unwrap()
                .contains("being deleted")
        );
        assert!(
            refuse_create(None, "ns", "c")
                .unwrap()
                .contains("no longer exists")
        );
    }

    #[test]
    fn a_withdrawn_intent_holds_nothing_and_counts_no_attempt() {
        let intent = RemoteJobStatus {
            phase: RemoteJobPhase::Submitting,
            remote_name: Some("n-2".into()),
            attempts: 2,
            ..Default::default()
        };
        let at = Stamp {
            generation: Some(1),
            now: Timestamp::from_second(9).unwrap(),
        };
        let next = withdraw_intent(&intent, "ApiClient ns/c is being deleted", at);
        assert_eq!(
            (next.phase, next.remote_name.as_deref(), next.attempts),
            (RemoteJobPhase::Pending, None, 1)
        );
        let c = conditions::find(&next.conditions, types::SUBMITTED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            (FALSE, reasons::CLIENT_NOT_READY)
        );
        let mut job: RemoteJob = serde_json::from_value(serde_json::json!({
            "apiVersion": "jobrelay.io/v1alpha1", "kind": "RemoteJob",
            "metadata": {"name": "j", "namespace": "ns"},
            "spec": {"clientRef": {"name": "c"}, "runai": {"projectId": "p", "clusterId": "c", "image": "i"}}
        }))
        .unwrap();
        job.status = Some(intent);
        assert!(in_use::holds(&job, "ns", "c", true), "an open intent holds");
        job.status = Some(next);
        assert!(!in_use::holds(&job, "ns", "c", true), "withdrawn: released");
    }
}
