//! Wires the RemoteJob reconciler into a kube-runtime Controller: RemoteJobs are the root; a change of
//! an ApiClient (e.g. it became Ready) re-reconciles the RemoteJobs that reference it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use super::{Context, Error, reconcile};
use crate::crd::{ApiClient, RemoteJob};

/// Runs until `shutdown` resolves. `namespace`: watch one namespace, or all with `None`.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (jobs, clients): (Api<RemoteJob>, Api<ApiClient>) = match &namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let controller = Controller::new(jobs, watcher::Config::default().any_semantic());
    let store = controller.store();
    controller
        .watches(
            clients,
            watcher::Config::default().any_semantic(),
            move |client| {
                let (name, ns) = (client.name_any(), client.namespace().unwrap_or_default());
                store
                    .state()
                    .into_iter()
                    .filter(|job| {
                        let job_ns = job.namespace().unwrap_or_default();
                        let client_ns = job.spec.client_ref.namespace.as_deref().unwrap_or(&job_ns);
                        job.spec.client_ref.name == name && client_ns == ns
                    })
                    .map(|job| ObjectRef::from_obj(&*job))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "remote job reconcile");
            }
        })
        .await;
}

fn error_policy(job: Arc<RemoteJob>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(job = %job.name_any(), error = %err, "reconciling RemoteJob failed");
    Action::requeue(Duration::from_secs(5))
}
