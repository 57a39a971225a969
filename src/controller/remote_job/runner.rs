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
    // Keep the jobs-by-phase gauge current from the controller's cache (no extra API calls).
    let (gauge_store, metrics) = (store.clone(), ctx.metrics.clone());
    let gauge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let mut counts = std::collections::BTreeMap::new();
            for job in gauge_store.state() {
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
    });
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
    gauge.abort();
}

fn error_policy(job: Arc<RemoteJob>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(job = %job.name_any(), error = %err, "reconciling RemoteJob failed");
    Action::requeue(Duration::from_secs(5))
}
