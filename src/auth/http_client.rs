//! The outbound HTTP client of one ApiClient: TLS verified (plus an optional CA bundle), no redirects,
//! timeouts, plain http refused unless the ApiClient allows it (and the operator permits that), and
//! only addresses the operator's egress policy allows ([`crate::transport::egress`]).

use super::{AuthError, egress};
use crate::crd::ApiClientSpec;

/// Builds the client. `ca_pem`: the CA bundle read from `spec.tls.caBundleRef`, if any.
pub fn build(spec: &ApiClientSpec, ca_pem: Option<&[u8]>) -> Result<reqwest::Client, AuthError> {
    // No client (and so no request) for insecure options the operator does not permit.
    egress::check_insecure(spec, crate::transport::insecure_permitted())?;
    for (what, url) in egress::spec_urls(spec) {
        egress::check_url(what, url)?;
    }
    let mut b = crate::transport::client_builder()
        // Bearer tokens never travel over plain http unless the ApiClient says so.
        .https_only(!spec.allow_insecure_http);
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|_| AuthError::Tls("the CA bundle is not valid PEM".into()))?;
        if certs.is_empty() {
            return Err(AuthError::Tls("the CA bundle holds no certificate".into()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if spec.tls.as_ref().is_some_and(|t| t.insecure_skip_verify) {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| AuthError::Tls(format!("cannot build the HTTP client: {e}")))
}
