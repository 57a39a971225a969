//! Joins a platform [`Adapter`] with the [`TokenService`]: every call carries a fresh bearer, a 401 is
//! retried once with a forced refresh, and calls are timed and counted in the metrics.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use secrecy::SecretString;

use super::batch::{Batches, MIN_JOBS};
use super::remote::{Remote, RemoteError, RemoteResult};
use super::throttle::Throttles;
use super::{RemoteFactory, reasons};
use crate::auth::service::TokenService;
use crate::crd::{ApiClient, Platform, PlatformApi, RemoteJob};
use crate::metrics::{ClientLabels, Metrics, RemoteCallLabels};
use crate::platform::{Adapter, Capabilities, PlatformConfig, RemoteView, remote_name};

pub struct Factory {
    pub tokens: Arc<TokenService>,
    pub metrics: Arc<Metrics>,
    pub batches: Arc<Batches>,
    pub throttles: Throttles,
}

/// Pure: the API generation an ApiClient uses.
pub fn platform_api(apic: &ApiClient) -> Option<PlatformApi> {
    apic.spec.platform_api.or(match apic.spec.platform {
        Platform::Runai => Some(PlatformApi::RunaiTrainingsV1),
        Platform::Openpai => Some(PlatformApi::OpenpaiV2),
        Platform::Dai => Some(PlatformApi::DaiExecutions),
        Platform::Generic => None,
    })
}

impl RemoteFactory for Factory {
    fn remote_for(&self, apic: &ApiClient) -> BoxFuture<'_, super::RemoteFor> {
        let apic = apic.clone();
        async move {
            let http = self
                .tokens
                .http(&apic)
                .await
                .map_err(|e| (reasons::CLIENT_NOT_READY, e.to_string()))?;
            let base_url = apic.spec.base_url.clone();
            let adapter = match platform_api(&apic) {
                Some(api) => Adapter::new(
                    http,
                    PlatformConfig {
                        base_url,
                        api,
                        username: None,
                    },
                ),
                None => Adapter::generic(http, &base_url),
            };
            let remote: Arc<dyn Remote> = Arc::new(PlatformRemote {
                adapter,
                throttle: self.throttles.limiter(&apic),
                apic,
                tokens: self.tokens.clone(),
                metrics: self.metrics.clone(),
                batches: self.batches.clone(),
            });
            Ok(remote)
        }
        .boxed()
    }
}

pub struct PlatformRemote {
    adapter: Adapter,
    /// spec.requestsPerSecond of the ApiClient, shared with every other reconcile using it.
    throttle: Option<Arc<governor::DefaultDirectRateLimiter>>,
    apic: ApiClient,
    tokens: Arc<TokenService>,
    metrics: Arc<Metrics>,
    batches: Arc<Batches>,
}

impl PlatformRemote {
    /// The job's status from a shared listing when enough jobs of its scope are active.
    async fn batched_get(&self, job: &RemoteJob, id: &str) -> Option<RemoteView> {
        let scope = self.adapter.list_scope(&job.spec)?;
        let scope = self
            .batches
            .scope(&format!("{}/{scope}", self.apic.uid().unwrap_or_default()));
        if scope.note(&job.uid().unwrap_or_default()) < MIN_JOBS {
            return None;
        }
        let listing = scope
            .listing(|| {
                self.with_token("list", move |a, t| {
                    async move { a.list(&t, &job.spec).await }.boxed()
                })
            })
            .await
            .ok()?;
        listing.get(id).cloned()
    }

    /// Runs `call` with a bearer; on 401 refreshes the token once and runs it again.
    async fn with_token<'a, T, F>(&'a self, op: &str, call: F) -> RemoteResult<T>
    where
        F: Fn(Adapter, SecretString) -> BoxFuture<'a, RemoteResult<T>>,
    {
        let started = Instant::now();
        // Time spent waiting for permits is the throttle's, not the platform's latency.
        let mut throttled = std::time::Duration::ZERO;
        let mut refused: Option<SecretString> = None;
        let result = loop {
            // The permit first, then the token: a long wait must not leave the caller holding a
            // bearer that expired meanwhile.
            if let Some(limiter) = &self.throttle {
                let waiting = Instant::now();
                limiter.until_ready().await;
                throttled += waiting.elapsed();
                self.metrics
                    .throttled_seconds
                    .get_or_create(&ClientLabels {
                        namespace: self.apic.namespace().unwrap_or_default(),
                        apiclient: self.apic.name_any(),
                    })
                    .inc_by(waiting.elapsed().as_secs_f64());
            }
            let token = match self.tokens.bearer(&self.apic, refused.as_ref()).await {
                Ok(t) => t,
                Err(e) => {
                    break Err(RemoteError::Auth {
                        message: e.to_string(),
                    });
                }
            };
            // OpenPAI ids are `user~name`: the user comes with the token.
            let adapter = match (&self.adapter, &token.username) {
                (Adapter::Openpai(a), Some(user)) => Adapter::Openpai(a.as_user(user)),
                _ => self.adapter.clone(),
            };
            match call(adapter, token.bearer.clone()).await {
                Err(RemoteError::Auth { .. }) if refused.is_none() => refused = Some(token.bearer),
                other => break other,
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(RemoteError::Retriable { .. }) => "retriable",
            Err(RemoteError::Auth { .. }) => "auth",
            Err(RemoteError::Conflict { .. }) => "conflict",
            Err(RemoteError::Permanent { .. }) => "permanent",
            Err(RemoteError::NotFound) => "not_found",
            Err(RemoteError::OutcomeUnknown { .. }) => "outcome_unknown",
        };
        let labels = RemoteCallLabels {
            platform: self.apic.spec.platform.as_str().into(),
            operation: op.into(),
            result: outcome.into(),
        };
        self.metrics.remote_calls.get_or_create(&labels).inc();
        self.metrics
            .remote_call_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().saturating_sub(throttled).as_secs_f64());
        result
    }
}

impl Remote for PlatformRemote {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lookup_by_name: self.adapter.has_names(),
            suspend_resume: self.adapter.suspends(),
        }
    }

    fn remote_name(&self, job: &RemoteJob, attempt: i32) -> String {
        remote_name(
            &job.namespace().unwrap_or_default(),
            &job.name_any(),
            &job.uid().unwrap_or_default(),
            attempt,
        )
    }

    fn get<'a>(
        &'a self,
        job: &'a RemoteJob,
        id: &'a str,
    ) -> BoxFuture<'a, RemoteResult<RemoteView>> {
        async move {
            if let Some(view) = self.batched_get(job, id).await {
                return Ok(view);
            }
            self.with_token("get", move |a, t| {
                async move { a.get(&t, &job.spec, id).await }.boxed()
            })
            .await
        }
        .boxed()
    }

    fn lookup<'a>(
        &'a self,
        job: &'a RemoteJob,
        name: &'a str,
    ) -> BoxFuture<'a, RemoteResult<Option<RemoteView>>> {
        self.with_token("lookup", move |a, t| {
            async move { a.lookup(&t, &job.spec, name).await }.boxed()
        })
        .boxed()
    }

    fn create<'a>(
        &'a self,
        job: &'a RemoteJob,
        name: &'a str,
    ) -> BoxFuture<'a, RemoteResult<RemoteView>> {
        self.with_token("create", move |a, t| {
            async move { a.create(&t, &job.spec, name).await }.boxed()
        })
        .boxed()
    }

    fn find_unknown_start<'a>(
        &'a self,
        job: &'a RemoteJob,
        since: Timestamp,
    ) -> BoxFuture<'a, RemoteResult<Option<RemoteView>>> {
        self.with_token("find_start", move |a, t| {
            async move { a.find_start(&t, &job.spec, since).await }.boxed()
        })
        .boxed()
    }

    fn cancel<'a>(&'a self, job: &'a RemoteJob, id: &'a str) -> BoxFuture<'a, RemoteResult<()>> {
        self.with_token("cancel", move |a, t| {
            async move { a.cancel(&t, &job.spec, id).await }.boxed()
        })
        .boxed()
    }

    fn suspend<'a>(&'a self, job: &'a RemoteJob, id: &'a str) -> BoxFuture<'a, RemoteResult<()>> {
        self.with_token("suspend", move |a, t| {
            async move { a.suspend(&t, &job.spec, id).await }.boxed()
        })
        .boxed()
    }

    fn resume<'a>(&'a self, _job: &'a RemoteJob, id: &'a str) -> BoxFuture<'a, RemoteResult<()>> {
        self.with_token("resume", move |a, t| {
            async move { a.resume(&t, id).await }.boxed()
        })
        .boxed()
    }
}
