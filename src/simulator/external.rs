//! Tokens from an external OIDC issuer (e.g. the Keycloak of `hack/testenv/keycloak`), accepted in
//! addition to the simulator's own HS256 tokens when started with `--trust-issuer URL`.
//!
//! Keys come from `{issuer}/.well-known/openid-configuration` → `jwks_uri`. They are fetched on
//! first use and again when a token names an unknown `kid` (at most every few seconds), so a key
//! rotation at the issuer is picked up without a restart. Only RS256 is accepted. The audience is
//! not checked (Keycloak's client-credentials tokens carry `account` or nothing useful); issuer,
//! signature and expiry are.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::sync::Mutex;

/// Least time between two key refreshes triggered by unknown key ids.
const REFRESH_GAP: Duration = Duration::from_secs(5);

struct RsaKey {
    issuer: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, RsaKey>,
    fetched: Option<Instant>,
}

/// The issuers we trust and their cached signing keys.
pub struct TrustedIssuers {
    issuers: Vec<String>,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

impl TrustedIssuers {
    pub fn new(issuers: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let issuers = issuers
            .into_iter()
            .map(|i| i.trim_end_matches('/').to_string())
            .collect();
        Self {
            issuers,
            http,
            keys: Mutex::new(Keys::default()),
        }
    }

    /// The token's subject (`azp`, else `preferred_username`, else `sub`) when it verifies.
    pub async fn verify(&self, token: &str, now: f64) -> Option<String> {
        let (input, sig) = token.rsplit_once('.')?;
        let (header, payload) = input.split_once('.')?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "RS256" {
            return None;
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let iss = claims.get("iss")?.as_str()?.trim_end_matches('/');
        if !self.issuers.iter().any(|i| i == iss) || claims.get("exp")?.as_f64()? <= now {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched.is_none_or(|t| t.elapsed() >= REFRESH_GAP);
        if !keys.by_kid.contains_key(&kid) && stale {
            keys.by_kid = self.fetch().await;
            keys.fetched = Some(Instant::now());
        }
        let key = keys.by_kid.get(&kid).filter(|k| k.issuer == iss)?;
        let public = RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        };
        public
            .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
            .ok()?;
        ["azp", "preferred_username", "sub"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .map(str::to_string)
    }

    /// All RSA keys of all issuers; an issuer that cannot be reached contributes none.
    async fn fetch(&self) -> HashMap<String, RsaKey> {
        let mut out = HashMap::new();
        for issuer in &self.issuers {
            let jwks = match self.jwks(issuer).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(%issuer, error = %e, "could not fetch the issuer's keys");
                    continue;
                }
            };
            for k in jwks
                .get("keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let field = |f: &str| {
                    k.get(f)
                        .and_then(Value::as_str)
                        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                };
                if k.get("kty").and_then(Value::as_str) != Some("RSA") {
                    continue;
                }
                if let (Some(n), Some(e)) = (field("n"), field("e")) {
                    let kid = k
                        .get("kid")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    out.insert(
                        kid,
                        RsaKey {
                            issuer: issuer.clone(),
                            n,
                            e,
                        },
                    );
                }
            }
        }
        out
    }

    async fn jwks(&self, issuer: &str) -> anyhow::Result<Value> {
        let discovery: Value = self
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("discovery document has no jwks_uri"))?;
        Ok(self
            .http
            .get(uri)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}
