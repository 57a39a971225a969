//! Which URLs an ApiClient may name, and whether its insecure options are permitted: the operator's
//! policy ([`crate::transport::egress`], [`crate::transport::insecure_permitted`]) applied to the spec,
//! before any request.

use super::AuthError;
use crate::crd::ApiClientSpec;
use crate::transport::egress::{check_host, denied_host};

/// Refuses a URL whose host is a literal IP the egress policy denies (host names are checked when
/// resolved). `what` names the field in the error, e.g. `spec.baseUrl`.
pub fn check_url(what: &str, url: &str) -> Result<(), AuthError> {
    match denied_host(url) {
        Some(d) => Err(AuthError::EgressDenied(format!("{what}: {d}"))),
        None => Ok(()),
    }
}

/// Resolves the host of `url` as a connection would and refuses it when every address is denied:
/// the ApiClient says EgressDenied before a RemoteJob sends anything (the resolver guard still
/// checks every connection).
pub async fn check_url_resolved(what: &str, url: &str) -> Result<(), AuthError> {
    check_url(what, url)?;
    let Some(host) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return Ok(());
    };
    check_host(&host)
        .await
        .map_err(|d| AuthError::EgressDenied(format!("{what} ({host}): {d}")))
}

/// The URLs of a spec, by field.
pub fn spec_urls(spec: &ApiClientSpec) -> Vec<(&'static str, &str)> {
    let mut urls = vec![("spec.baseUrl", spec.base_url.as_str())];
    if let Some(o) = &spec.auth.oauth2 {
        for (what, url) in [
            ("spec.auth.oauth2.tokenUrl", &o.token_url),
            ("spec.auth.oauth2.issuerUrl", &o.issuer_url),
            ("spec.auth.oauth2.loginUrl", &o.login_url),
        ] {
            if let Some(url) = url {
                urls.push((what, url.as_str()));
            }
        }
    }
    urls
}

/// Pure: refuses `allowInsecureHttp` and `tls.insecureSkipVerify` unless the operator permits them.
pub fn check_insecure(spec: &ApiClientSpec, permitted: bool) -> Result<(), AuthError> {
    let mut used = Vec::new();
    if spec.allow_insecure_http {
        used.push("spec.allowInsecureHttp");
    }
    if spec.tls.as_ref().is_some_and(|t| t.insecure_skip_verify) {
        used.push("spec.tls.insecureSkipVerify");
    }
    if used.is_empty() || permitted {
        return Ok(());
    }
    Err(AuthError::InsecureNotPermitted(format!(
        "{} not permitted: the operator runs without --permit-insecure (chart value security.permitInsecure); nothing was sent",
        used.join(" and ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_denied_literal_ips_are_refused_by_field_and_rule() {
        let err = check_url("spec.baseUrl", "http://169.254.169.254/latest").unwrap_err();
        assert!(
            matches!(&err, AuthError::EgressDenied(m) if m.starts_with("spec.baseUrl: 169.254.169.254 is in 169.254.0.0/16 (link-local)")),
            "{err}"
        );
        assert_eq!(err.reason(), "EgressDenied");
        assert!(check_url("x", "http://[fe80::1]:8080/").is_err());
        assert!(check_url("x", "http://127.0.0.1:8090/runai").is_err());
        assert!(
            check_url("x", "https://metadata.example/").is_ok(),
            "names are checked when resolved"
        );
        assert!(check_url("x", "http://10.1.2.3:8090/runai").is_ok());
    }

    #[tokio::test]
    async fn resolved_hosts_are_checked_before_any_request() {
        let err = check_url_resolved("spec.baseUrl", "http://localhost:1/x")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AuthError::EgressDenied(m) if m.contains("(loopback)") && m.contains("spec.baseUrl (localhost)")),
            "{err}"
        );
        assert!(
            check_url_resolved("x", "https://no-such-host.invalid/")
                .await
                .is_ok()
        );
    }

    #[test]
    fn insecure_options_need_the_operators_consent() {
        let spec: ApiClientSpec = serde_json::from_value(serde_json::json!({
            "platform": "runai", "baseUrl": "http://10.0.0.5:8090",
            "auth": {"runaiToken": {}}, "credentialsSecretRef": {"name": "s"},
            "allowInsecureHttp": true, "tls": {"insecureSkipVerify": true}
        }))
        .unwrap();
        let err = check_insecure(&spec, false).unwrap_err();
        assert_eq!(err.reason(), "InsecureNotPermitted");
        let m = err.to_string();
        assert!(
            m.contains("spec.allowInsecureHttp and spec.tls.insecureSkipVerify")
                && m.contains("--permit-insecure"),
            "{m}"
        );
        assert!(check_insecure(&spec, true).is_ok());
        let mut safe = spec.clone();
        safe.allow_insecure_http = false;
        safe.tls = None;
        assert!(check_insecure(&safe, false).is_ok());
    }
}
