//! An ApiClient turned into a [`Session`] on its platform: the platform its API generation names, its
//! HTTP client, its token cache, its throttle, the shared listings.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::ResourceExt;
use secrecy::SecretString;

use crate::auth::service::TokenService;
use crate::auth::{AuthError, Token};
use crate::crd::conditions::reasons;
use crate::crd::{ApiClient, Platform, PlatformApi};
use crate::metrics::Metrics;
use crate::platform::batch::Batches;
use crate::platform::session::{Caller, Tokens};
use crate::platform::throttle::Throttles;
use crate::platform::{Endpoint, Session};

pub struct Factory {
    pub tokens: Arc<TokenService>,
    pub metrics: Arc<Metrics>,
    pub batches: Arc<Batches>,
    pub throttles: Throttles,
    /// Per ApiClient uid: why the last attempt to get a bearer failed (cleared when one is had), so
    /// that a failed call can say whether the token endpoint or the platform failed.
    pub token_failures: Arc<TokenFailures>,
}

#[derive(Default)]
pub struct TokenFailures(std::sync::Mutex<std::collections::HashMap<String, AuthError>>);

impl TokenFailures {
    fn record(&self, uid: &str, result: &Result<Token, AuthError>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => {
                map.remove(uid);
            }
            Err(e) => {
                map.insert(uid.to_string(), e.clone());
            }
        }
    }

    /// Why ApiClient `uid` has no bearer right now, if that is the case.
    pub fn get(&self, uid: &str) -> Option<AuthError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
    }
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

/// The bearers of one ApiClient.
struct ApiClientTokens {
    service: Arc<TokenService>,
    apic: ApiClient,
    failures: Arc<TokenFailures>,
}

impl Tokens for ApiClientTokens {
    fn bearer<'a>(
        &'a self,
        refused: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<Token, AuthError>> {
        async move {
            let result = self.service.bearer(&self.apic, refused).await;
            self.failures
                .record(&self.apic.uid().unwrap_or_default(), &result);
            result
        }
        .boxed()
    }
}

impl Factory {
    /// The session for `apic`, or why the ApiClient cannot be used (condition reason, message).
    pub async fn session(&self, apic: &ApiClient) -> Result<Arc<Session>, (&'static str, String)> {
        let http = self
            .tokens
            .http(apic)
            .await
            .map_err(|e| (reasons::CLIENT_NOT_READY, e.to_string()))?;
        let uid = apic.uid().unwrap_or_default();
        Ok(Arc::new(Session {
            platform: crate::platform::open(
                platform_api(apic),
                Endpoint::new(http, apic.spec.base_url.clone()),
            ),
            throttle: self.throttles.limiter(&uid, apic.spec.requests_per_second),
            caller: Caller {
                uid,
                namespace: apic.namespace().unwrap_or_default(),
                name: apic.name_any(),
                platform: apic.spec.platform.as_str().into(),
            },
            tokens: Box::new(ApiClientTokens {
                service: self.tokens.clone(),
                apic: apic.clone(),
                failures: self.token_failures.clone(),
            }),
            batches: self.batches.clone(),
            metrics: self.metrics.clone(),
        }))
    }
}
