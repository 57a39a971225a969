//! Which URLs an ApiClient may name: none whose host is a forbidden literal IP (the policy and the
//! resolver guard are [`crate::transport::egress`]).

use super::AuthError;
use crate::transport::egress::{REFUSED, forbidden_host};
// `jobrelay run --allow-link-local` sets the policy through this path.
pub use crate::transport::egress::allow_link_local;

/// Refuses a URL whose host is a forbidden literal IP (host names are checked when resolved).
/// `what` names the field in the error, e.g. `spec.baseUrl`.
pub fn check_url(what: &str, url: &str) -> Result<(), AuthError> {
    match forbidden_host(url) {
        Some(ip) => Err(AuthError::InvalidSpec(format!(
            "{what}: {REFUSED} ({ip}); the operator allows it only when started with --allow-link-local"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_forbidden_literal_ips_are_refused_by_field() {
        let err = check_url("spec.baseUrl", "http://169.254.169.254/latest").unwrap_err();
        assert!(
            matches!(&err, AuthError::InvalidSpec(m) if m.starts_with("spec.baseUrl: ") && m.contains("--allow-link-local")),
            "{err}"
        );
        assert!(check_url("x", "http://[fe80::1]:8080/").is_err());
        assert!(
            check_url("x", "https://metadata.example/").is_ok(),
            "names are checked when resolved"
        );
        assert!(check_url("x", "http://127.0.0.1:8090/runai").is_ok());
    }
}
