//! Where the operator's outbound HTTP may go: the operator-level egress policy.
//!
//! ApiClients are written by namespace users, and the operator — with its own network position — sends
//! credentials to the URLs they name and copies parts of the answers into status. The policy belongs to
//! whoever runs the operator (`jobrelay run --egress-allow/--egress-deny/--service-cidr`, chart values
//! `egress.*`), never to the ApiClients. By default it denies loopback, unspecified, link-local and
//! cloud-metadata addresses, the cluster's Service range (when given) and the apiserver's addresses
//! (discovered at start), and allows the rest (RFC 1918 included: on-premises platforms live there).
//!
//! [`decide`] is the one place that decides, for an address: an explicit deny entry wins; otherwise
//! the most specific matching entry among the allow entries and the default denies decides, an allow
//! entry winning a tie — so `--egress-allow 127.0.0.0/8` opens loopback, but `--egress-allow
//! 10.0.0.0/24` does not open the `kubernetes` Service's 10.0.0.1/32 (allow exactly that to open it).
//! It is applied to literal IPs in URLs ([`denied_host`]) and to every address a host name resolves to,
//! at every connection ([`GuardedResolver`]), so a DNS answer that changes later is caught too. Behind
//! an HTTP(S) proxy (HTTPS_PROXY) the proxy resolves names: there only literal IPs are checked here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock, RwLock};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What every refusal says (also how one is recognised in a transport error's causes).
pub const REFUSED: &str = "denied by the operator's egress policy";

/// An address range: `10.0.0.0/24`, `::1/128`, or a single address (`/32`, `/128` implied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then(|| Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix.min(32))
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix.min(128))
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not an IP address or CIDR (e.g. 10.0.0.0/24, fd00::/8)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.parse::<IpAddr>().map_err(|_| bad())?,
                Some(p.parse::<u8>().map_err(|_| bad())?),
            ),
            None => (s.parse::<IpAddr>().map_err(|_| bad())?, None),
        };
        match prefix {
            Some(p) => Cidr::new(addr, p).ok_or_else(bad),
            None => Ok(Cidr::host(addr)),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A range with why it is in the policy ("loopback", "service CIDR", "--egress-deny", …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub net: Cidr,
    pub why: String,
}

impl Rule {
    pub fn new(net: Cidr, why: &str) -> Rule {
        Rule {
            net,
            why: why.to_string(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.net, self.why)
    }
}

/// The operator's egress policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The admin's `--egress-deny` entries: always win.
    pub deny: Vec<Rule>,
    /// The admin's `--egress-allow` entries: open a default deny they are at least as specific as.
    pub allow: Vec<Rule>,
    /// What is denied unless allowed: [`Policy::builtin_denies`] plus the cluster's own addresses.
    pub default_deny: Vec<Rule>,
}

pub const LINK_LOCAL: &str = "link-local";
pub const METADATA: &str = "cloud metadata";

impl Policy {
    /// Loopback, unspecified, link-local and cloud metadata addresses.
    pub fn builtin_denies() -> Vec<Rule> {
        let r = |s: &str, why: &str| Rule::new(s.parse().expect("builtin CIDR"), why);
        vec![
            r("127.0.0.0/8", "loopback"),
            r("::1/128", "loopback"),
            r("0.0.0.0/8", "unspecified"),
            r("::/128", "unspecified"),
            r("169.254.0.0/16", LINK_LOCAL),
            r("fe80::/10", LINK_LOCAL),
            r("fd00:ec2::254/128", METADATA),
            r("100.100.100.200/32", METADATA),
            r("168.63.129.16/32", METADATA),
        ]
    }

    /// The allow entries `--allow-link-local` stands for.
    pub fn link_local_allows() -> Vec<Rule> {
        Self::builtin_denies()
            .into_iter()
            .filter(|r| r.why == LINK_LOCAL || r.why == METADATA)
            .map(|r| Rule::new(r.net, "--allow-link-local"))
            .collect()
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            deny: vec![],
            allow: vec![],
            default_deny: Policy::builtin_denies(),
        }
    }
}

/// A refusal: the address and the rule that refused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub ip: IpAddr,
    pub rule: Rule,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is in {}, {REFUSED}", self.ip, self.rule)
    }
}

impl std::error::Error for Denied {}

/// Pure: may the operator connect to `ip`? An IPv6 address that carries an IPv4 address (mapped,
/// compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged as both.
pub fn decide(ip: IpAddr, policy: &Policy) -> Result<(), Denied> {
    let forms: Vec<IpAddr> = match ip {
        IpAddr::V6(v6) => std::iter::once(ip)
            .chain(embedded_v4(v6).map(IpAddr::V4))
            .collect(),
        IpAddr::V4(_) => vec![ip],
    };
    let denied = |rule: &Rule| Denied {
        ip,
        rule: rule.clone(),
    };
    let best = |rules: &[Rule]| -> Option<Rule> {
        rules
            .iter()
            .filter(|r| forms.iter().any(|f| r.net.contains(*f)))
            .max_by_key(|r| r.net.prefix())
            .cloned()
    };
    if let Some(rule) = best(&policy.deny) {
        return Err(denied(&rule));
    }
    match (best(&policy.default_deny), best(&policy.allow)) {
        (Some(d), Some(a)) if a.net.prefix() >= d.net.prefix() => Ok(()),
        (Some(d), _) => Err(denied(&d)),
        (None, _) => Ok(()),
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

static POLICY: LazyLock<RwLock<Arc<Policy>>> =
    LazyLock::new(|| RwLock::new(Arc::new(Policy::default())));

/// Sets the process-wide policy (`jobrelay run` does, once, before any request).
pub fn set_policy(policy: Policy) {
    *POLICY.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
}

/// The process-wide policy.
pub fn policy() -> Arc<Policy> {
    POLICY.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The literal IP a URL names, if any (host names are checked when resolved).
pub fn literal_ip(url: &str) -> Option<IpAddr> {
    match url::Url::parse(url).ok()?.host()?.to_owned() {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// The refusal of the literal IP `url` names, if any.
pub fn denied_host(url: &str) -> Option<Denied> {
    decide(literal_ip(url)?, &policy()).err()
}

/// The refusal [`GuardedResolver`] put in a failed request's causes (never read from the URL).
pub fn denial(e: &reqwest::Error) -> Option<String> {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if text.contains(REFUSED) {
            return Some(text);
        }
        cause = c.source();
    }
    None
}

/// Whether a failed request was stopped by [`GuardedResolver`].
pub fn refused(e: &reqwest::Error) -> bool {
    denial(e).is_some()
}

/// Pure: the resolved addresses that may be used; the refusal when there were some and none may.
pub fn filter(addrs: Vec<SocketAddr>, policy: &Policy) -> Result<Vec<SocketAddr>, Denied> {
    let mut first = None;
    let mut kept = Vec::new();
    for a in addrs {
        match decide(a.ip(), policy) {
            Ok(()) => kept.push(a),
            Err(d) => {
                first.get_or_insert(d);
            }
        }
    }
    match first {
        Some(d) if kept.is_empty() => Err(d),
        _ => Ok(kept),
    }
}

/// Resolves `host` as a connection would and applies the policy: for a check before any request
/// (names that do not resolve are not a refusal: the request will say so).
pub async fn check_host(host: &str) -> Result<(), Denied> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return decide(ip, &policy());
    }
    let Ok(found) = tokio::net::lookup_host((host, 0)).await else {
        return Ok(());
    };
    filter(found.collect(), &policy()).map(|_| ())
}

/// The system resolver, minus denied addresses.
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept = filter(addrs, &policy())?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rules(list: &[(&str, &str)]) -> Vec<Rule> {
        list.iter()
            .map(|(c, why)| Rule::new(c.parse().unwrap(), why))
            .collect()
    }

    #[test]
    fn cidrs_parse_normalise_and_match() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains(ip("10.255.0.1")) && !c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::ffff:10.0.0.1")), "families do not mix");
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().prefix(), 0);
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0/8",
            "1.2.3.4/x",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_policy_table() {
        let p = Policy::default();
        let table = [
            ("169.254.169.254", Some("link-local")),
            ("169.254.0.1", Some("link-local")),
            ("100.100.100.200", Some("cloud metadata")),
            ("168.63.129.16", Some("cloud metadata")),
            ("fe80::1", Some("link-local")),
            ("fd00:ec2::254", Some("cloud metadata")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::169.254.169.254", Some("link-local")),
            ("64:ff9b::169.254.169.254", Some("link-local")),
            ("2002:a9fe:a9fe::1", Some("link-local")),
            ("127.0.0.1", Some("loopback")),
            ("127.1.2.3", Some("loopback")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("0.0.0.0", Some("unspecified")),
            ("::", Some("unspecified")),
            ("10.0.0.1", None),
            ("192.168.1.1", None),
            ("172.16.0.1", None),
            ("64:ff9b::10.0.0.1", None),
            ("2002:0a00:0001::1", None),
            ("100.100.100.201", None),
            ("2001:db8::1", None),
            ("8.8.8.8", None),
        ];
        for (addr, want) in table {
            let got = decide(ip(addr), &p).err().map(|d| d.rule.why);
            assert_eq!(got.as_deref(), want, "{addr}");
        }
    }

    #[test]
    fn allow_opens_defaults_it_is_as_specific_as_and_deny_always_wins() {
        let p = Policy {
            deny: rules(&[
                ("10.9.0.0/16", "--egress-deny"),
                ("127.0.0.5", "--egress-deny"),
            ]),
            allow: rules(&[
                ("127.0.0.0/8", "--egress-allow"),
                ("10.0.0.0/8", "--egress-allow"),
                ("10.96.0.0/12", "--egress-allow"),
            ]),
            default_deny: [
                Policy::builtin_denies(),
                rules(&[
                    ("10.96.0.0/12", "service CIDR"),
                    ("10.96.0.1", "kubernetes Service"),
                    ("192.168.5.5", "apiserver"),
                ]),
            ]
            .concat(),
        };
        let table = [
            ("127.0.0.1", Ok(())),
            ("::1", Err("loopback")),
            ("127.0.0.5", Err("--egress-deny")),
            ("10.9.1.1", Err("--egress-deny")),
            ("10.1.1.1", Ok(())),
            ("10.96.3.4", Ok(())),
            ("10.96.0.1", Err("kubernetes Service")),
            ("192.168.5.5", Err("apiserver")),
            ("192.168.5.6", Ok(())),
            ("169.254.169.254", Err("link-local")),
        ];
        for (addr, want) in table {
            let got = decide(ip(addr), &p).map_err(|d| d.rule.why);
            assert_eq!(got, want.map_err(str::to_string), "{addr}");
        }
        // A service CIDR without an allow entry is denied, naming the rule.
        let p = Policy {
            default_deny: rules(&[("10.0.0.0/24", "service CIDR")]),
            ..Policy::default()
        };
        assert_eq!(
            decide(ip("10.0.0.1"), &p).unwrap_err().to_string(),
            "10.0.0.1 is in 10.0.0.0/24 (service CIDR), denied by the operator's egress policy"
        );
    }

    #[test]
    fn allow_link_local_opens_link_local_and_metadata_only() {
        let p = Policy {
            allow: Policy::link_local_allows(),
            ..Policy::default()
        };
        assert!(decide(ip("169.254.169.254"), &p).is_ok());
        assert!(decide(ip("fd00:ec2::254"), &p).is_ok());
        assert!(decide(ip("::ffff:169.254.169.254"), &p).is_ok());
        assert!(decide(ip("127.0.0.1"), &p).is_err());
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let p = Policy::default();
        assert_eq!(
            filter(vec![a("169.254.169.254:80"), a("10.1.2.3:80")], &p).unwrap(),
            vec![a("10.1.2.3:80")]
        );
        let err = filter(vec![a("169.254.169.254:80"), a("127.0.0.1:80")], &p).unwrap_err();
        assert!(err.to_string().contains(REFUSED), "{err}");
        assert!(
            filter(vec![], &p).unwrap().is_empty(),
            "nothing found is not a refusal"
        );
    }

    /// Resolves every name to nothing but a refusal, as [`GuardedResolver`] does for a host that
    /// only has denied addresses.
    struct Refusing;

    impl Resolve for Refusing {
        fn resolve(&self, _: Name) -> Resolving {
            Box::pin(async {
                Err(filter(
                    vec!["169.254.169.254:80".parse().unwrap()],
                    &Policy::default(),
                )
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
        let d = denial(&err).unwrap();
        assert!(d.contains("169.254.0.0/16 (link-local)"), "{d}");
        assert!(err.is_connect());
    }

    #[tokio::test]
    async fn hosts_are_checked_as_resolved() {
        // Runs with the default process policy (unit tests never set one).
        assert!(check_host("127.0.0.1").await.is_err());
        assert!(check_host("[::1]").await.is_err());
        assert!(check_host("localhost").await.is_err());
        assert!(check_host("10.2.3.4").await.is_ok());
        assert!(
            check_host("no-such-host.invalid").await.is_ok(),
            "unresolvable is for the request to report"
        );
    }
}
