//! Tokens: reading credentials from the referenced Secret, obtaining a bearer from them (one source per
//! auth method), and caching it per ApiClient. Secret values are `SecretString` everywhere: their
//! `Debug` is redacted and they never reach status, events, logs, metrics or error messages.

pub mod cache;
pub mod credentials;
pub mod egress;
pub mod http_client;
pub mod ref_cache;
pub mod service;
pub mod sources;

use jiff::Timestamp;
use secrecy::SecretString;

use crate::crd::conditions::reasons;

/// A bearer token and what we know of its life.
#[derive(Clone, Debug)]
pub struct Token {
    pub bearer: SecretString,
    pub obtained_at: Timestamp,
    /// `None`: the token does not expire (static tokens, OpenPAI application tokens).
    pub expires_at: Option<Timestamp>,
    /// Set when the lifetime was not given and a default was assumed.
    pub note: Option<String>,
    /// The user the token belongs to, when the platform says (OpenPAI ids are `user~name`).
    pub username: Option<String>,
}

/// Why no token could be had. Messages never contain secret values.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("Secret {0} not found")]
    SecretNotFound(String),
    #[error("Secret {secret} has no key {key}")]
    SecretKeyMissing { secret: String, key: String },
    #[error("the credentials were refused: {0}")]
    InvalidCredentials(String),
    #[error("token endpoint unreachable: {0}")]
    Unreachable(String),
    #[error("TLS error: {0}")]
    Tls(String),
    #[error("invalid token response: {0}")]
    InvalidResponse(String),
    #[error("OIDC discovery failed: {0}")]
    Discovery(String),
    #[error("invalid ApiClient: {0}")]
    InvalidSpec(String),
    /// The operator's egress policy refuses where the ApiClient points (the message names the rule).
    #[error("{0}")]
    EgressDenied(String),
    /// An insecure option the operator was not started to permit.
    #[error("{0}")]
    InsecureNotPermitted(String),
}

impl AuthError {
    /// The Ready condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::SecretNotFound(_) => reasons::SECRET_NOT_FOUND,
            AuthError::SecretKeyMissing { .. } => reasons::SECRET_KEY_MISSING,
            AuthError::InvalidCredentials(_) => reasons::INVALID_CREDENTIALS,
            AuthError::Unreachable(_) => reasons::TOKEN_ENDPOINT_UNREACHABLE,
            AuthError::Tls(_) => reasons::TLS_ERROR,
            AuthError::InvalidResponse(_) => reasons::INVALID_TOKEN_RESPONSE,
            AuthError::Discovery(_) => reasons::DISCOVERY_FAILED,
            AuthError::InvalidSpec(_) => reasons::INVALID_SPEC,
            AuthError::EgressDenied(_) => reasons::EGRESS_DENIED,
            AuthError::InsecureNotPermitted(_) => reasons::INSECURE_NOT_PERMITTED,
        }
    }

    /// Transient: retry with backoff (and keep a still-valid token in use meanwhile).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AuthError::Unreachable(_) | AuthError::Discovery(_) | AuthError::InvalidResponse(_)
        )
    }
}

/// Reads the `exp` claim (seconds) of a JWT without verifying it: only used to know when to refresh.
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The reason and message a RemoteJob carries when its ApiClient is refused by the operator's own
/// policy (egress or insecure options): the ApiClient's, so the job says why, not just "not Ready".
pub fn policy_refusal(client: &crate::crd::ApiClient) -> Option<(&'static str, String)> {
    let ready = crate::crd::conditions::find(
        &client.status.as_ref()?.conditions,
        crate::crd::conditions::types::READY,
    )?;
    let reason = [reasons::EGRESS_DENIED, reasons::INSECURE_NOT_PERMITTED]
        .into_iter()
        .find(|r| *r == ready.reason)?;
    (ready.status == crate::crd::conditions::FALSE).then(|| {
        (
            reason,
            format!(
                "ApiClient {}: {}",
                kube::ResourceExt::name_any(client),
                ready.message
            ),
        )
    })
}

pub fn jwt_expiry(token: &str) -> Option<Timestamp> {
    let exp = jwt_claims(token)?.get("exp")?.as_i64()?;
    Timestamp::from_second(exp).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jwt_expiry_without_verifying() {
        let t = crate::simulator::jwt::sign(
            b"k",
            &serde_json::json!({"exp": 1_900_000_000, "username": "u"}),
        );
        assert_eq!(jwt_expiry(&t).unwrap().as_second(), 1_900_000_000);
        assert_eq!(jwt_claims(&t).unwrap()["username"], "u");
        assert!(jwt_expiry("not-a-jwt").is_none());
    }

    #[test]
    fn reasons_and_transience() {
        assert_eq!(
            AuthError::SecretNotFound("s".into()).reason(),
            reasons::SECRET_NOT_FOUND
        );
        assert!(AuthError::Unreachable("x".into()).is_transient());
        assert!(!AuthError::InvalidCredentials("x".into()).is_transient());
    }
}
