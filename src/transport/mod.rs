//! The outbound HTTP layer under `auth` and `platform`: the baseline client (egress guard, no
//! redirects, timeouts), the admin's consent to insecure options, the bearer header, and the one
//! sanitizer every remote-derived string passes before it reaches status, events or logs.

pub mod egress;
pub mod sanitize;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub use sanitize::{forget_secrets, message_of, remember_bearer, remember_secrets, sanitize};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client builder with what every outbound request gets: names resolved through [`egress`],
/// redirects not followed, timeouts, our user agent. TLS and plain-http choices are the caller's.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(egress::GuardedResolver))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("jobrelay/", env!("CARGO_PKG_VERSION")))
}

/// `Authorization: Bearer …`, marked sensitive (never printed by reqwest/hyper debug output, and
/// not indexed by HTTP/2 header compression). Every bearer header goes through here.
pub fn with_bearer(req: reqwest::RequestBuilder, token: &SecretString) -> reqwest::RequestBuilder {
    match reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())) {
        Ok(mut v) => {
            v.set_sensitive(true);
            req.header(reqwest::header::AUTHORIZATION, v)
        }
        // Not a valid header value (a token with control characters): reqwest's own builder marks
        // it sensitive too and reports the error when the request is sent.
        Err(_) => req.bearer_auth(token.expose_secret()),
    }
}

static PERMIT_INSECURE: AtomicBool = AtomicBool::new(false);

/// Sets whether ApiClients may use `allowInsecureHttp` and `tls.insecureSkipVerify`
/// (`jobrelay run --permit-insecure`): the admin's consent, off by default.
pub fn permit_insecure(permit: bool) {
    PERMIT_INSECURE.store(permit, Ordering::SeqCst);
}

pub fn insecure_permitted() -> bool {
    PERMIT_INSECURE.load(Ordering::SeqCst)
}
