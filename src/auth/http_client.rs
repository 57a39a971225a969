//! The outbound HTTP client of one ApiClient: TLS verified (plus an optional CA bundle), no redirects,
//! timeouts, plain http refused unless the ApiClient allows it (and the operator permits that), and
//! only addresses the operator's egress policy allows ([`crate::transport::egress`]).
//!
//! ApiClients with the same TLS options share one client: each client carries its own TLS
//! configuration with the parsed system root store (hundreds of KiB), so one per ApiClient cost
//! about half a GiB with 1000 ApiClients. Nothing in a client is per ApiClient (the bearer is set
//! per request, no cookies), and the checks below still run for every ApiClient.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::{AuthError, egress};
use crate::crd::ApiClientSpec;

/// What makes two clients differ: plain http allowed, certificates not verified, the extra CA bundle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Options {
    allow_http: bool,
    skip_verify: bool,
    ca_pem: Option<Vec<u8>>,
}

/// Distinct option sets are few (most ApiClients use the system roots); a bound keeps rotating CA
/// bundles from growing it without end.
const MAX_SHARED: usize = 64;

fn shared() -> &'static Mutex<HashMap<Options, reqwest::Client>> {
    static CLIENTS: OnceLock<Mutex<HashMap<Options, reqwest::Client>>> = OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

/// Builds the client, or hands out the one already built for the same options. `ca_pem`: the CA
/// bundle read from `spec.tls.caBundleRef`, if any.
pub fn build(spec: &ApiClientSpec, ca_pem: Option<&[u8]>) -> Result<reqwest::Client, AuthError> {
    // No client (and so no request) for insecure options the operator does not permit.
    egress::check_insecure(spec, crate::transport::insecure_permitted())?;
    for (what, url) in egress::spec_urls(spec) {
        egress::check_url(what, url)?;
    }
    let options = options(spec, ca_pem);
    let mut clients = shared().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(&options) {
        return Ok(c.clone());
    }
    let client = build_new(&options)?;
    if clients.len() >= MAX_SHARED {
        clients.clear();
    }
    clients.insert(options, client.clone());
    Ok(client)
}

/// Pure: the options `spec` needs from its client (the URLs are not among them).
fn options(spec: &ApiClientSpec, ca_pem: Option<&[u8]>) -> Options {
    Options {
        allow_http: spec.allow_insecure_http,
        skip_verify: spec.tls.as_ref().is_some_and(|t| t.insecure_skip_verify),
        ca_pem: ca_pem.map(<[u8]>::to_vec),
    }
}

fn build_new(options: &Options) -> Result<reqwest::Client, AuthError> {
    let mut b = crate::transport::client_builder()
        // Bearer tokens never travel over plain http unless the ApiClient says so.
        .https_only(!options.allow_http);
    if let Some(pem) = &options.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|_| AuthError::Tls("the CA bundle is not valid PEM".into()))?;
        if certs.is_empty() {
            return Err(AuthError::Tls("the CA bundle holds no certificate".into()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if options.skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| AuthError::Tls(format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> ApiClientSpec {
        let mut v = serde_json::json!({
            "platform": "runai", "baseUrl": "https://a.example",
            "auth": {"runaiToken": {}},
            "credentialsSecretRef": {"name": "s"},
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn clients_are_shared_by_options_not_by_apiclient() {
        let plain = options(&spec(serde_json::json!({})), None);
        let other_url = spec(serde_json::json!({"baseUrl": "https://b.example"}));
        assert_eq!(
            options(&other_url, None),
            plain,
            "another platform, same client"
        );
        let differ = [
            options(&spec(serde_json::json!({"allowInsecureHttp": true})), None),
            options(
                &spec(serde_json::json!({"tls": {"insecureSkipVerify": true}})),
                None,
            ),
            options(&spec(serde_json::json!({})), Some(b"pem A")),
        ];
        for o in &differ {
            assert_ne!(*o, plain);
        }
        assert_ne!(
            options(&spec(serde_json::json!({})), Some(b"pem B")),
            differ[2],
            "each CA bundle its own client"
        );
    }
}
