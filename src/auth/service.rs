//! The token service both controllers share: reads an ApiClient's Secret (and CA bundle), builds and
//! caches its HTTP client, and hands out bearer tokens through the [`TokenCache`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};
use secrecy::SecretString;

use super::cache::TokenCache;
use super::ref_cache::{Entry, RefCache};
use super::{AuthError, Token, credentials, egress, http_client, sources};
use crate::crd::{ApiClient, CaBundleKind};
use crate::metrics::{Metrics, TokenRequestLabels};

pub struct TokenService {
    pub client: kube::Client,
    pub cache: TokenCache,
    pub metrics: Arc<Metrics>,
    /// uid → (generation, CA bundle version, client)
    http: Mutex<HashMap<String, (String, reqwest::Client)>>,
    /// CA bundles as the ApiClient controller's watches see them (a GET only on a miss).
    pub refs: Arc<RefCache>,
}

/// What the ApiClient controller learns from a refresh.
pub struct Refreshed {
    pub token: Token,
    /// resourceVersion of the Secret the token was obtained with.
    pub secret_version: String,
}

/// A Secret's data as a [`RefCache`] entry.
pub fn secret_entry(s: &Secret) -> Entry {
    Entry {
        version: s.resource_version().unwrap_or_default(),
        data: s
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect(),
    }
}

/// A ConfigMap's data as a [`RefCache`] entry.
pub fn config_map_entry(c: &ConfigMap) -> Entry {
    Entry {
        version: c.resource_version().unwrap_or_default(),
        data: c
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect(),
    }
}

impl TokenService {
    pub fn new(client: kube::Client, metrics: Arc<Metrics>) -> Self {
        TokenService {
            client,
            cache: TokenCache::default(),
            metrics,
            http: Mutex::new(HashMap::new()),
            refs: Arc::default(),
        }
    }

    /// Drops the cached tokens and HTTP clients of ApiClients `alive(uid)` says are gone.
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        self.cache.retain(&alive);
        self.http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|uid, _| alive(uid));
        crate::transport::forget_secrets(&alive);
    }

    fn ns(apic: &ApiClient) -> String {
        apic.namespace().unwrap_or_default()
    }

    /// Reads the credentials Secret.
    pub async fn secret(&self, apic: &ApiClient) -> Result<Secret, AuthError> {
        let name = &apic.spec.credentials_secret_ref.name;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &Self::ns(apic));
        match api.get_opt(name).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(AuthError::SecretNotFound(name.clone())),
            Err(e) => Err(AuthError::Unreachable(format!(
                "reading Secret {name}: {e}"
            ))),
        }
    }

    async fn ca_bundle(&self, apic: &ApiClient) -> Result<Option<(String, Vec<u8>)>, AuthError> {
        let Some(r) = apic
            .spec
            .tls
            .as_ref()
            .and_then(|t| t.ca_bundle_ref.as_ref())
        else {
            return Ok(None);
        };
        let ns = Self::ns(apic);
        let missing = || {
            AuthError::Tls(format!(
                "CA bundle {}/{} key {} not found",
                ns, r.name, r.key
            ))
        };
        let key = (r.kind, ns.clone(), r.name.clone());
        let entry = match self.refs.get(&key) {
            Some(e) => e,
            None => {
                self.refs.want(&key);
                let e = self
                    .read_ref(r.kind, &ns, &r.name)
                    .await
                    .ok_or_else(missing)?;
                self.refs.offer(&key, e.clone());
                e
            }
        };
        let bytes = entry.data.get(&r.key).cloned().ok_or_else(missing)?;
        let version = entry.version;
        Ok(Some((version, bytes)))
    }

    /// A GET of a referenced Secret or ConfigMap (`None`: absent or unreadable).
    async fn read_ref(&self, kind: CaBundleKind, ns: &str, name: &str) -> Option<Entry> {
        match kind {
            CaBundleKind::Secret => Api::<Secret>::namespaced(self.client.clone(), ns)
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|s| secret_entry(&s)),
            CaBundleKind::ConfigMap => Api::<ConfigMap>::namespaced(self.client.clone(), ns)
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|c| config_map_entry(&c)),
        }
    }

    /// The HTTP client of `apic` (rebuilt when its spec or CA bundle changes).
    pub async fn http(&self, apic: &ApiClient) -> Result<reqwest::Client, AuthError> {
        let ca = match self.ca_bundle(apic).await {
            Ok(ca) => ca,
            // Being deleted, its CA bundle may be gone already: cancels go on with the client built
            // while it existed.
            Err(e) => {
                let cached = apic.metadata.deletion_timestamp.as_ref().and_then(|_| {
                    self.http
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&apic.uid().unwrap_or_default())
                        .map(|(_, c)| c.clone())
                });
                return cached.ok_or(e);
            }
        };
        let version = format!(
            "{}/{}",
            apic.metadata.generation.unwrap_or(0),
            ca.as_ref().map(|c| c.0.as_str()).unwrap_or("")
        );
        let uid = apic.uid().unwrap_or_default();
        let cached = self
            .http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
            .cloned();
        if let Some((_, c)) = cached.filter(|(v, _)| *v == version) {
            return Ok(c);
        }
        let client = http_client::build(&apic.spec, ca.as_ref().map(|c| c.1.as_slice()))?;
        self.http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid, (version, client.clone()));
        Ok(client)
    }

    fn refresh_before(apic: &ApiClient) -> Option<std::time::Duration> {
        apic.spec
            .refresh_before
            .as_deref()
            .and_then(crate::crd::duration::parse)
    }

    fn key(apic: &ApiClient, secret_version: &str) -> (String, String) {
        (
            apic.uid().unwrap_or_default(),
            format!("{}/{secret_version}", apic.metadata.generation.unwrap_or(0)),
        )
    }

    /// Obtains (or reuses) a token with the Secret as it is now. Used by the ApiClient controller.
    /// First the operator's policy: insecure options need its consent, and every URL of the spec
    /// must resolve to an address the egress policy allows — refused before anything is sent.
    pub async fn refresh(&self, apic: &ApiClient) -> Result<Refreshed, AuthError> {
        egress::check_insecure(&apic.spec, crate::transport::insecure_permitted())?;
        for (what, url) in egress::spec_urls(&apic.spec) {
            egress::check_url_resolved(what, url).await?;
        }
        // The Secret's version as its watch shows it: a token cached for that version is served
        // without reading the Secret (the ApiClient is reconciled whenever a job starts or stops
        // using it; a GET each time was one Secret read per job). A change or deletion reaches
        // the watch, which reconciles the ApiClient again. Not watched (yet): read it now.
        let watched = (
            crate::crd::CaBundleKind::Secret,
            Self::ns(apic),
            apic.spec.credentials_secret_ref.name.clone(),
        );
        let (secret_version, read) = match self.refs.version(&watched) {
            Some(v) => (v, None),
            None => {
                let secret = self.secret(apic).await?;
                (secret.resource_version().unwrap_or_default(), Some(secret))
            }
        };
        let (id, version) = Self::key(apic, &secret_version);
        let token = self
            .cache
            .get(&id, &version, Self::refresh_before(apic), None, || {
                self.read_and_fetch(apic, read)
            })
            .await?;
        Ok(Refreshed {
            token,
            secret_version,
        })
    }

    /// A bearer for calls to the platform. `refused`: the token a platform just answered 401 to.
    /// Uses the Secret version the ApiClient controller last recorded, so it does not read the Secret
    /// on every call.
    pub async fn bearer(
        &self,
        apic: &ApiClient,
        refused: Option<&SecretString>,
    ) -> Result<Token, AuthError> {
        let recorded = apic
            .status
            .as_ref()
            .and_then(|s| s.credentials_version.clone())
            .unwrap_or_default();
        let (id, version) = Self::key(apic, &recorded);
        self.cache
            .get_current(&id, &version, Self::refresh_before(apic), refused, || {
                self.read_and_fetch(apic, None)
            })
            .await
    }

    /// A token from the Secret already `read`, or read now.
    async fn read_and_fetch(
        &self,
        apic: &ApiClient,
        read: Option<Secret>,
    ) -> Result<Token, AuthError> {
        let secret = match read {
            Some(s) => s,
            None => self.secret(apic).await?,
        };
        self.fetch(apic, secret).await
    }

    async fn fetch(&self, apic: &ApiClient, secret: Secret) -> Result<Token, AuthError> {
        let uid = apic.uid().unwrap_or_default();
        let result = async {
            let creds = credentials::read(&apic.spec, &secret)?;
            // Known before any request carries them: whatever a remote answer echoes of them is
            // removed from every message (transport::sanitize).
            crate::transport::remember_secrets(&uid, creds.secret_values());
            let http = self.http(apic).await?;
            let token = sources::fetch(&http, &apic.spec, &creds).await?;
            crate::transport::remember_bearer(&uid, &token.bearer);
            Ok::<Token, AuthError>(token)
        }
        .await;
        let label = TokenRequestLabels {
            namespace: Self::ns(apic),
            apiclient: apic.name_any(),
            result: match &result {
                Ok(_) => "success".into(),
                Err(e) => e.reason().into(),
            },
        };
        // Only requests that went to a token endpoint count (a static token is no request).
        if apic.spec.auth.bearer_token.is_none() {
            self.metrics.client_seen(&label.namespace, &label.apiclient);
            self.metrics.token_requests.get_or_create(&label).inc();
        }
        result
    }
}
