//! Where the operator's outbound HTTP may go. ApiClients are written by namespace users, and the
//! operator sends credentials to the URLs they name: an ApiClient must not be a way to reach the
//! node's cloud metadata service (and the credentials it hands out) or other link-local services.
//! Link-local and metadata addresses are refused — as literal IPs in URLs, and among the addresses a
//! host name resolves to (checked at every connection, so a DNS answer that changes later is caught
//! too) — unless the operator runs with `--allow-link-local`. A process-wide policy: it belongs to
//! whoever runs the operator, not to the ApiClients. Behind an HTTP(S) proxy (HTTPS_PROXY) the proxy
//! resolves names, so there only literal IPs are checked here and the proxy's own policy applies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

static ALLOW_LINK_LOCAL: AtomicBool = AtomicBool::new(false);

/// Sets the policy (from `jobrelay run --allow-link-local`).
pub fn allow_link_local(allow: bool) {
    ALLOW_LINK_LOCAL.store(allow, Ordering::SeqCst);
}

fn allowed() -> bool {
    ALLOW_LINK_LOCAL.load(Ordering::SeqCst)
}

/// What a refusal says (also recognised in transport errors to explain a failed connection).
pub const REFUSED: &str = "link-local or cloud metadata address refused";

/// Pure: link-local (169.254.0.0/16, fe80::/10) or a cloud metadata address (AWS fd00:ec2::254,
/// Alibaba 100.100.100.200, Azure's WireServer 168.63.129.16), also when an IPv6 address carries
/// one of those IPv4 addresses (mapped, compatible, NAT64 64:ff9b::/96, 6to4 2002::/16).
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                || v4 == Ipv4Addr::new(168, 63, 129, 16)
        }
        IpAddr::V6(v6) => {
            v6.is_unicast_link_local()
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || embedded_v4(v6).is_some_and(|v4| forbidden(IpAddr::V4(v4)))
        }
    }
}

/// The IPv4 address an IPv6 address stands for, in the forms that reach one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible: deprecated, still routed by some stacks),
        // 64:ff9b::a.b.c.d (NAT64, well-known prefix).
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0, 0, ..] | [0x64, 0xff9b, 0, 0, 0, 0, ..] => {
            Some(v4(s[6], s[7]))
        }
        // 6to4: 2002:AABB:CCDD::/48.
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

/// The forbidden literal IP `url` names, if any and unless allowed (host names are checked when
/// resolved).
pub fn forbidden_host(url: &str) -> Option<IpAddr> {
    if allowed() {
        return None;
    }
    let ip = match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return None,
    };
    forbidden(ip).then_some(ip)
}

/// Whether a failed request was stopped by [`GuardedResolver`] (read from the error's causes, never
/// from the URL).
pub fn refused(e: &reqwest::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.to_string().contains(REFUSED) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Pure: the resolved addresses that may be used; an error when there were some and none may.
pub fn filter(addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
    if allowed() {
        return Ok(addrs);
    }
    let found = addrs.len();
    let kept: Vec<SocketAddr> = addrs.into_iter().filter(|a| !forbidden(a.ip())).collect();
    if kept.is_empty() && found > 0 {
        return Err(format!(
            "{REFUSED}: the host resolves only to such addresses"
        ));
    }
    Ok(kept)
}

/// The system resolver, minus forbidden addresses.
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept = filter(addrs)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_addresses_are_forbidden() {
        let table = [
            ("169.254.169.254", true),
            ("169.254.0.1", true),
            ("100.100.100.200", true),
            ("fe80::1", true),
            ("fd00:ec2::254", true),
            ("::ffff:169.254.169.254", true),
            ("::169.254.169.254", true),
            ("64:ff9b::169.254.169.254", true),
            ("2002:a9fe:a9fe::1", true),
            ("168.63.129.16", true),
            ("64:ff9b::10.0.0.1", false),
            ("2002:0a00:0001::1", false),
            ("127.0.0.1", false),
            ("10.0.0.1", false),
            ("100.100.100.201", false),
            ("::1", false),
            ("2001:db8::1", false),
        ];
        for (ip, want) in table {
            assert_eq!(forbidden(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        assert_eq!(
            filter(vec![a("169.254.169.254:80"), a("10.1.2.3:80")]).unwrap(),
            vec![a("10.1.2.3:80")]
        );
        let err = filter(vec![a("169.254.169.254:80")]).unwrap_err();
        assert!(err.contains(REFUSED), "{err}");
        assert!(
            filter(vec![]).unwrap().is_empty(),
            "nothing found is not a refusal"
        );
    }

    /// Resolves every name to nothing but a refusal, as [`GuardedResolver`] does for a host that
    /// only has metadata addresses.
    struct Refusing;

    impl Resolve for Refusing {
        fn resolve(&self, _: Name) -> Resolving {
            Box::pin(async {
                Err(filter(vec!["169.254.169.254:80".parse().unwrap()])
                    .unwrap_err()
                    .into())
            })
        }
    }

    #[tokio::test]
    async fn a_refusal_is_recognised_in_a_transport_error() {
        let client = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(Refusing))
            .build()
            .unwrap();
        let err = client
            .get("http://tls-certificate-handshake.example/")
            .send()
            .await
            .unwrap_err();
        assert!(refused(&err), "{err:?}");
        assert!(err.is_connect());
    }
}
