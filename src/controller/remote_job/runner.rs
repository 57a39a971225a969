//! Wires the RemoteJob reconciler into a kube-runtime Controller: RemoteJobs are the root; a change of
//! an ApiClient (e.g. it became Ready) re-reconciles the RemoteJobs that reference it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::context::{Context, Error};
use super::reconcile;
use crate::controller::queue::workload::Workload;
use crate::controller::scope;
use crate::crd::{ApiClient, RemoteJob};

/// Runs until `shutdown` resolves: one kube-runtime Controller per served namespace (or one for all
/// namespaces when `namespaces` is empty).
pub async fn run(
    ctx: Arc<Context>,
    namespaces: Vec<String>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::FutureExt::shared(shutdown);
    let controllers: Vec<_> = scope::apis::<RemoteJob>(&ctx.client, &namespaces)
        .into_iter()
        .map(|api| scope::lean_controller(api, concurrency))
        .collect();
    let stores: Vec<_> = controllers.iter().map(|c| c.store()).collect();
    ctx.shared.set_job_stores(stores.clone());
    let gauge = tokio::spawn(count_phases(stores, ctx.metrics.clone()));
    let runs = controllers.into_iter().map(|controller| {
        let store = controller.store();
        // A RemoteJob may use an ApiClient of another served namespace (with a grant), so every
        // controller watches the ApiClients of all of them.
        let mut controller = controller;
        for clients in scope::apis::<ApiClient>(&ctx.client, &namespaces) {
            let store = store.clone();
            controller = controller.watches(
                clients,
                watcher::Config::default().any_semantic(),
                move |client| jobs_using(&store, &client),
            );
        }
        if ctx.kueue {
            // A Workload's admission, eviction or deletion re-reconciles the RemoteJob that owns it.
            for workloads in scope::apis::<Workload>(&ctx.client, &namespaces) {
                controller = controller.owns(workloads, watcher::Config::default().any_semantic());
            }
        }
        controller
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|res| async move {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "remote job reconcile");
                }
            })
    });
    futures::future::join_all(runs).await;
    gauge.abort();
}

/// The RemoteJobs in `store` that reference `client`.
fn jobs_using(store: &Store<RemoteJob>, client: &ApiClient) -> Vec<ObjectRef<RemoteJob>> {
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
        .collect()
}

/// Keeps the jobs-by-phase gauge current from the controllers' caches (no extra API calls).
async fn count_phases(stores: Vec<Store<RemoteJob>>, metrics: Arc<crate::metrics::Metrics>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let mut counts = std::collections::BTreeMap::new();
        for job in stores.iter().flat_map(|s| s.state()) {
            let phase = job.status.as_ref().map(|s| s.phase).unwrap_or_default();
            *counts.entry(phase.as_str()).or_insert(0i64) += 1;
        }
        for phase in [
            "Pending",
            "Submitting",
            "Queued",
            "Running",
            "Succeeded",
            "Failed",
            "Cancelled",
            "Suspended",
            "Unknown",
        ] {
            let labels = crate::metrics::PhaseLabels {
                phase: phase.into(),
            };
            metrics
                .jobs_by_phase
                .get_or_create(&labels)
                .set(counts.get(phase).copied().unwrap_or(0));
        }
    }
}

fn error_policy(job: Arc<RemoteJob>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(job = %job.name_any(), error = %err, "reconciling RemoteJob failed");
    Action::requeue(Duration::from_secs(5))
}
