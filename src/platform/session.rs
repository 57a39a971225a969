//! A [`Platform`] as one ApiClient uses it, the layer every platform shares: each call waits for the
//! ApiClient's throttle permit, carries a fresh bearer (a 401 is retried once with a forced refresh
//! before it surfaces as [`RemoteError::Auth`]), is timed and counted in the metrics; status reads come
//! from a shared listing when enough jobs of one scope are active ([`super::batch`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jiff::Timestamp;
use secrecy::SecretString;

use super::batch::{Batches, MIN_JOBS};
use super::model::{Capabilities, Platform, RemoteError, RemoteResult, RemoteView};
use crate::auth::{AuthError, Token};
use crate::jobspec::Job;
use crate::metrics::{ClientLabels, Metrics, RemoteCallLabels};

/// Where the bearers come from (the ApiClient's token cache).
pub trait Tokens: Send + Sync {
    /// A bearer; `refused`: the one the platform just answered 401 to (forces a refresh).
    fn bearer<'a>(
        &'a self,
        refused: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<Token, AuthError>>;
}

/// The ApiClient a session calls for: keys the shared listings, labels the metrics.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// The platform kind (metrics label).
    pub platform: String,
}

pub struct Session {
    pub platform: Arc<dyn Platform>,
    pub tokens: Box<dyn Tokens>,
    pub caller: Caller,
    /// spec.requestsPerSecond of the ApiClient, shared with every other reconcile using it.
    pub throttle: Option<Arc<governor::DefaultDirectRateLimiter>>,
    pub batches: Arc<Batches>,
    pub metrics: Arc<Metrics>,
}

impl Session {
    pub fn capabilities(&self) -> Capabilities {
        self.platform.capabilities()
    }

    /// The job's status; `job_uid` counts the job as active in its listing scope.
    pub async fn get(&self, spec: Job<'_>, job_uid: &str, id: &str) -> RemoteResult<RemoteView> {
        if let Some(view) = self.batched_get(spec, job_uid, id).await {
            return Ok(view);
        }
        self.call("get", |p, t| async move { p.get(&t, spec, id).await })
            .await
    }

    /// Finds a job by our name; `None` when the platform has none.
    pub async fn lookup(&self, spec: Job<'_>, name: &str) -> RemoteResult<Option<RemoteView>> {
        self.call(
            "lookup",
            |p, t| async move { p.lookup(&t, spec, name).await },
        )
        .await
    }

    /// Creates the job under `name`; returns what the platform said about it.
    pub async fn create(&self, spec: Job<'_>, name: &str) -> RemoteResult<RemoteView> {
        self.call(
            "create",
            |p, t| async move { p.create(&t, spec, name).await },
        )
        .await
    }

    /// For platforms without names: finds a start made at or after `since` whose answer we never saw.
    pub async fn find_start(
        &self,
        spec: Job<'_>,
        since: Timestamp,
    ) -> RemoteResult<Option<RemoteView>> {
        self.call("find_start", |p, t| async move {
            p.find_start(&t, spec, since).await
        })
        .await
    }

    pub async fn cancel(&self, spec: Job<'_>, id: &str) -> RemoteResult<()> {
        self.call("cancel", |p, t| async move { p.cancel(&t, spec, id).await })
            .await
    }

    pub async fn suspend(&self, spec: Job<'_>, id: &str) -> RemoteResult<()> {
        self.call(
            "suspend",
            |p, t| async move { p.suspend(&t, spec, id).await },
        )
        .await
    }

    pub async fn resume(&self, spec: Job<'_>, id: &str) -> RemoteResult<()> {
        self.call("resume", |p, t| async move { p.resume(&t, spec, id).await })
            .await
    }

    /// The job's status from a shared listing when enough jobs of its scope are active.
    async fn batched_get(&self, spec: Job<'_>, job_uid: &str, id: &str) -> Option<RemoteView> {
        let scope = self.platform.list_scope(spec)?;
        let scope = self.batches.scope(&format!("{}/{scope}", self.caller.uid));
        if scope.note(job_uid) < MIN_JOBS {
            return None;
        }
        let listing = scope
            .listing(|| self.call("list", |p, t| async move { p.list(&t, spec).await }))
            .await
            .ok()?;
        listing.get(id).cloned()
    }

    /// Runs `call` with a bearer; on 401 refreshes the token once and runs it again.
    async fn call<T, F, Fut>(&self, op: &str, call: F) -> RemoteResult<T>
    where
        F: Fn(Arc<dyn Platform>, SecretString) -> Fut,
        Fut: Future<Output = RemoteResult<T>>,
    {
        let started = Instant::now();
        // Time spent waiting for permits is the throttle's, not the platform's latency.
        let mut throttled = Duration::ZERO;
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
                        namespace: self.caller.namespace.clone(),
                        apiclient: self.caller.name.clone(),
                    })
                    .inc_by(waiting.elapsed().as_secs_f64());
            }
            let token = match self.tokens.bearer(refused.as_ref()).await {
                Ok(t) => t,
                Err(e) => {
                    break Err(RemoteError::Auth {
                        message: e.to_string(),
                    });
                }
            };
            let platform = token
                .username
                .as_deref()
                .and_then(|user| self.platform.for_user(user))
                .unwrap_or_else(|| self.platform.clone());
            match call(platform, token.bearer.clone()).await {
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
            platform: self.caller.platform.clone(),
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
