//! ApiClient controller: read the Secret → obtain/refresh the token ([`TokenService`]) → [`plan::plan`]
//! → write status (only when it changed) → event on a Ready flip → come back before the token is due.

pub mod plan;
pub mod ref_watches;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::auth::service::TokenService;
use crate::crd::conditions::{self, types};
use crate::crd::{ApiClient, ApiClientStatus};
use crate::metrics::{ClientLabels, Metrics};
use ref_watches::RefWatches;

pub struct Context {
    pub client: kube::Client,
    pub tokens: Arc<TokenService>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Watches of the Secrets and CA bundles ApiClients read.
    pub refs: RefWatches,
    /// Which RemoteJobs use which ApiClient (in-use protection), shared with the RemoteJob controller.
    pub shared: Arc<crate::controller::in_use::Shared>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

pub async fn reconcile(apic: Arc<ApiClient>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&apic, &ctx).await;
    ctx.metrics
        .observe_reconcile("apiclient", result.is_ok(), started.elapsed());
    result
}

async fn reconcile_inner(apic: &ApiClient, ctx: &Context) -> Result<Action, Error> {
    let ns = apic.namespace().unwrap_or_default();
    let name = apic.name_any();
    let held = protect(apic, ctx).await?;
    if apic.meta().deletion_timestamp.is_some() {
        if held {
            // RemoteJobs still cancel through it: keep its token (and Secret watch) meanwhile.
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        ctx.refs.forget(&ns, &name);
        ctx.tokens.cache.remove(&apic.uid().unwrap_or_default());
        return Ok(Action::await_change());
    }
    ctx.refs.ensure(&ns, &name, &ref_watches::references(apic));
    let refreshed = ctx.tokens.refresh(apic).await;
    match &refreshed {
        Ok(r) => {
            tracing::debug!(namespace = %ns, apiclient = %name, expires_at = ?r.token.expires_at, "token in hand")
        }
        Err(e) => {
            tracing::warn!(namespace = %ns, apiclient = %name, reason = e.reason(), error = %e, "no token")
        }
    }
    let now = Timestamp::now();
    let outcome = refreshed.as_ref().map(|r| plan::Success {
        token: &r.token,
        secret_version: &r.secret_version,
    });
    let refresh_before = apic
        .spec
        .refresh_before
        .as_deref()
        .and_then(crate::crd::duration::parse);
    let old = apic.status.clone().unwrap_or_default();
    let retry_at = ctx
        .tokens
        .cache
        .retry_at(&apic.uid().unwrap_or_default())
        .await;
    let p = plan::plan(
        &old,
        apic.metadata.generation,
        outcome,
        refresh_before,
        retry_at,
        now,
    );

    let labels = ClientLabels {
        namespace: ns.clone(),
        apiclient: name.clone(),
    };
    let expires = refreshed.as_ref().ok().and_then(|r| r.token.expires_at);
    let left = expires.map_or(0, |t| t.as_second() - now.as_second());
    ctx.metrics.client_seen(&ns, &name);
    ctx.metrics
        .token_expiry_seconds
        .get_or_create(&labels)
        .set(left);
    ctx.metrics
        .token_expiry_timestamp_seconds
        .get_or_create(&labels)
        .set(expires.map_or(0, |t| t.as_second()));

    if p.status != old || apic.status.is_none() {
        let api: Api<ApiClient> = Api::namespaced(ctx.client.clone(), &ns);
        let patch =
            json!({"apiVersion": "jobrelay.io/v1alpha1", "kind": "ApiClient", "status": p.status});
        api.patch_status(
            &name,
            &PatchParams::apply("jobrelay").force(),
            &Patch::Apply(&patch),
        )
        .await?;
        publish_transition(ctx, apic, &old, &p.status).await;
    }
    Ok(Action::requeue(p.requeue.max(Duration::from_secs(1))))
}

/// In-use protection: the finalizer is added while RemoteJobs hold the ApiClient and removed when
/// none do (checked against the apiserver, not only the caches, before removing). Returns whether
/// the ApiClient is (still) held.
async fn protect(apic: &ApiClient, ctx: &Context) -> Result<bool, Error> {
    use crate::controller::in_use::FINALIZER;
    let has = apic.finalizers().iter().any(|f| f == FINALIZER);
    let terminating = apic.meta().deletion_timestamp.is_some();
    let used = match (ctx.shared.in_use_cached(apic), has) {
        (true, _) => true,
        (false, false) => false,
        // About to remove it: the caches may lag (or not have listed yet), ask the apiserver.
        (false, true) => ctx.shared.in_use_live(&ctx.client, apic).await?,
    };
    if used == has || (used && terminating) {
        // (No finalizer can be added to an object being deleted.)
        return Ok(used && has);
    }
    let mut finalizers: Vec<String> = apic
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if used {
        finalizers.push(FINALIZER.to_string());
    }
    let api: Api<ApiClient> =
        Api::namespaced(ctx.client.clone(), &apic.namespace().unwrap_or_default());
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": apic.resource_version()}});
    match api
        .patch(
            &apic.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(namespace = %apic.namespace().unwrap_or_default(), apiclient = %apic.name_any(), in_use = used, "in-use finalizer {}", if used { "added" } else { "removed" });
    Ok(used)
}

/// An event when Ready flips or its reason changes.
async fn publish_transition(
    ctx: &Context,
    apic: &ApiClient,
    old: &ApiClientStatus,
    new: &ApiClientStatus,
) {
    let key = |s: &ApiClientStatus| {
        conditions::find(&s.conditions, types::READY).map(|c| (c.status.clone(), c.reason.clone()))
    };
    let (before, after) = (key(old), key(new));
    if before == after {
        return;
    }
    let Some(ready) = conditions::find(&new.conditions, types::READY) else {
        return;
    };
    let ok = ready.status == conditions::TRUE;
    let mut note = ready.message.clone();
    if ok
        && apic
            .spec
            .tls
            .as_ref()
            .is_some_and(|t| t.insecure_skip_verify)
    {
        note = format!("{note}; TLS verification is disabled (insecureSkipVerify)");
    }
    let event = Event {
        type_: if ok && !note.contains("insecureSkipVerify") {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: ready.reason.clone(),
        note: Some(note.chars().take(1000).collect()),
        action: "RefreshToken".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &apic.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing event failed");
    }
}

fn error_policy(apic: Arc<ApiClient>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(apiclient = %apic.name_any(), error = %err, "reconciling ApiClient failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the ApiClient controller until `shutdown`: one kube-runtime Controller per served namespace
/// (or one for all namespaces when `namespaces` is empty).
pub async fn run(
    ctx: Arc<Context>,
    triggers: impl futures::Stream<Item = kube::runtime::reflector::ObjectRef<ApiClient>>
    + Send
    + 'static,
    namespaces: Vec<String>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::FutureExt::shared(shutdown);
    let controllers: Vec<_> = crate::controller::scope::apis::<ApiClient>(&ctx.client, &namespaces)
        .into_iter()
        .map(|api| crate::controller::scope::lean_controller(api, concurrency))
        .collect();
    let stores: Vec<_> = controllers.iter().map(|c| c.store()).collect();
    ctx.shared.set_client_stores(stores);
    // Deleted ApiClients are reconciled no more once gone: sweep their Secret watches, cached
    // tokens and metric series against what the apiserver lists. (Not against the caches: waiting
    // for their first listing would steal the Controller's own wake-up, see in_use::Shared.)
    let sweeper = ctx.clone();
    let lists = crate::controller::scope::apis::<ApiClient>(&ctx.client, &namespaces);
    let sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        'ticks: loop {
            tick.tick().await;
            let mut live: Vec<(String, String, String)> = Vec::new();
            for api in &lists {
                let Ok(list) = api.list_metadata(&Default::default()).await else {
                    continue 'ticks;
                };
                live.extend(list.items.iter().map(|a| {
                    (
                        a.namespace().unwrap_or_default(),
                        a.name_any(),
                        a.uid().unwrap_or_default(),
                    )
                }));
            }
            // Deleted ApiClients' metric series go too.
            sweeper
                .metrics
                .forget_clients(|ns, name| live.iter().any(|(n, a, _)| n == ns && a == name));
            sweeper
                .refs
                .retain_users(|ns, name| live.iter().any(|(n, a, _)| n == ns && a == name));
            sweeper
                .tokens
                .retain(|uid| live.iter().any(|(_, _, u)| u == uid));
        }
    });
    // A Secret or CA bundle changed: route the ApiClient to the controller of its namespace.
    let mut routes = std::collections::HashMap::new();
    let mut runs = Vec::new();
    for (controller, ns) in controllers.into_iter().zip(
        namespaces
            .iter()
            .cloned()
            .map(Some)
            .chain(std::iter::once(None)),
    ) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        routes.insert(ns, tx);
        runs.push(
            controller
                .reconcile_on(rx)
                .graceful_shutdown_on(shutdown.clone())
                .run(reconcile, error_policy, ctx.clone())
                .for_each(|_| async {}),
        );
    }
    let all = namespaces.is_empty();
    let route = tokio::spawn(async move {
        futures::pin_mut!(triggers);
        while let Some(r) = triggers.next().await {
            let key = if all { None } else { r.namespace.clone() };
            if let Some(tx) = routes.get(&key) {
                let _ = tx.unbounded_send(r);
            }
        }
    });
    futures::future::join_all(runs).await;
    route.abort();
    sweep.abort();
}
