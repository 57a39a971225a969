//! `jobrelay run`: the operator (ApiClient and RemoteJob controllers in one process).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;

use crate::auth::service::TokenService;
use crate::controller::{api_client, remote_job};
use crate::leader;
use crate::metrics::Metrics;
use crate::server;
use crate::telemetry::{self, LogFormat};
use crate::transport::egress;

fn list(rules: &[egress::Rule]) -> String {
    rules
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Serve only these namespaces (repeat the flag or separate with commas; default: all namespaces).
    /// With a list, the operator watches each namespace on its own and needs no cluster-wide read of
    /// Secrets or ConfigMaps.
    #[arg(long = "namespace", env = "JOBRELAY_NAMESPACE", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Where /metrics is served.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub metrics_addr: SocketAddr,
    /// Where /healthz and /readyz are served.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub health_addr: SocketAddr,
    /// Elect a leader through a Lease so that only one replica reconciles.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease: one per installation (the chart derives it from the release),
    /// so that two installations in one namespace do not wait on each other.
    #[arg(long, default_value = "jobrelay-leader")]
    pub lease_name: String,
    /// Seconds a Lease outlives its holder's last renewal: the fail-over time after a crash.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub lease_duration_seconds: u64,
    /// A leader that could not renew for this many seconds stops reconciling (and exits, so that its
    /// pod restarts as a standby). Must be shorter than --lease-duration-seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=299))]
    pub renew_deadline_seconds: u64,
    /// Seconds between a standby's tries and a leader's renewals.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub retry_period_seconds: u64,
    /// Let ApiClients reach link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10,
    /// fd00:ec2::254, 100.100.100.200, 168.63.129.16), refused by default so that an ApiClient cannot be used to
    /// reach the node's metadata service. Same as --egress-allow for each of them.
    #[arg(long, env = "JOBRELAY_ALLOW_LINK_LOCAL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_link_local: bool,
    /// Egress policy: an address range ApiClients may reach although a default denies it (loopback,
    /// link-local, the Service range, …). Opens a default deny it is at least as specific as: to open
    /// an apiserver address, allow exactly that address. Repeatable, or comma-separated.
    #[arg(
        long = "egress-allow",
        env = "JOBRELAY_EGRESS_ALLOW",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub egress_allow: Vec<egress::Cidr>,
    /// Egress policy: an address range ApiClients may never reach (wins over every allow entry), e.g.
    /// 10.0.0.0/8 to keep private ranges off limits. Repeatable, or comma-separated.
    #[arg(
        long = "egress-deny",
        env = "JOBRELAY_EGRESS_DENY",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub egress_deny: Vec<egress::Cidr>,
    /// The cluster's Service range(s) (the apiserver's --service-cluster-ip-range), denied unless
    /// allowed; it cannot be read from the API. Without it only the `kubernetes` Service's address
    /// (and the apiserver's own addresses) are denied of the cluster's.
    #[arg(
        long = "service-cidr",
        env = "JOBRELAY_SERVICE_CIDR",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub service_cidrs: Vec<egress::Cidr>,
    /// Permit ApiClients to use `allowInsecureHttp` (credentials and bearers over plain http) and
    /// `tls.insecureSkipVerify` (an unverified server). Without it such an ApiClient is refused
    /// (Ready False, InsecureNotPermitted) and nothing is sent.
    #[arg(long, env = "JOBRELAY_PERMIT_INSECURE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub permit_insecure: bool,
    /// Reconciles run at once per controller (and per served namespace); more wait their turn.
    #[arg(long, default_value_t = crate::controller::scope::DEFAULT_CONCURRENT_RECONCILES,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
}

/// Pure: the operator's egress policy from its flags and the cluster's own addresses.
pub fn egress_policy(args: &Args, cluster: Vec<egress::Rule>) -> egress::Policy {
    let rules = |list: &[egress::Cidr], why: &str| -> Vec<egress::Rule> {
        list.iter().map(|c| egress::Rule::new(*c, why)).collect()
    };
    let mut allow = rules(&args.egress_allow, "--egress-allow");
    if args.allow_link_local {
        allow.extend(egress::Policy::link_local_allows());
    }
    let mut default_deny = egress::Policy::builtin_denies();
    default_deny.extend(rules(&args.service_cidrs, "service CIDR"));
    default_deny.extend(cluster);
    egress::Policy {
        deny: rules(&args.egress_deny, "--egress-deny"),
        allow,
        default_deny,
    }
}

/// The cluster's own addresses, denied unless allowed: the apiserver's address as this process
/// reaches it (the kubeconfig's or in-cluster URL; a name is resolved), KUBERNETES_SERVICE_HOST,
/// and the `kubernetes` Service's ClusterIPs in `default` (and the addresses behind it, when the
/// operator may read its EndpointSlices). What cannot be read is logged and skipped.
async fn cluster_addresses(config: &kube::Config, client: &kube::Client) -> Vec<egress::Rule> {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use std::net::IpAddr;
    let mut found: Vec<(IpAddr, &str)> = Vec::new();
    if let Some(host) = config.cluster_url.host() {
        let host = host.trim_matches(['[', ']']);
        match host.parse::<IpAddr>() {
            Ok(ip) => found.push((ip, "apiserver")),
            Err(_) => match tokio::net::lookup_host((host, 0)).await {
                Ok(addrs) => found.extend(addrs.map(|a| (a.ip(), "apiserver"))),
                Err(e) => {
                    tracing::warn!(%host, error = %e, "cannot resolve the apiserver's name for the egress policy")
                }
            },
        }
    }
    if let Some(ip) = std::env::var("KUBERNETES_SERVICE_HOST")
        .ok()
        .and_then(|h| h.parse::<IpAddr>().ok())
    {
        found.push((ip, "kubernetes Service"));
    }
    let services: kube::Api<Service> = kube::Api::namespaced(client.clone(), "default");
    match services.get_opt("kubernetes").await {
        Ok(Some(s)) => {
            let spec = s.spec.unwrap_or_default();
            let ips = spec
                .cluster_ips
                .unwrap_or_default()
                .into_iter()
                .chain(spec.cluster_ip);
            found.extend(
                ips.filter_map(|i| i.parse::<IpAddr>().ok())
                    .map(|ip| (ip, "kubernetes Service")),
            );
        }
        Ok(None) => {}
        Err(e) => {
            tracing::info!(error = %e, "cannot read Service default/kubernetes; its address is denied through KUBERNETES_SERVICE_HOST and --service-cidr only")
        }
    }
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(client.clone(), "default");
    let lp = kube::api::ListParams::default().labels("kubernetes.io/service-name=kubernetes");
    match slices.list(&lp).await {
        Ok(list) => found.extend(
            list.items
                .iter()
                .flat_map(|s| {
                    s.endpoints
                        .iter()
                        .flatten()
                        .flat_map(|e| e.addresses.iter())
                })
                .filter_map(|a| a.parse::<IpAddr>().ok())
                .map(|ip| (ip, "apiserver")),
        ),
        Err(e) => {
            tracing::info!(error = %e, "cannot list the apiserver's EndpointSlices; its other addresses are not known")
        }
    }
    let mut rules: Vec<egress::Rule> = Vec::new();
    for (ip, why) in found {
        let rule = egress::Rule::new(egress::Cidr::host(ip), why);
        if !rules.iter().any(|r| r.net == rule.net) {
            rules.push(rule);
        }
    }
    rules
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    anyhow::ensure!(
        args.renew_deadline_seconds < args.lease_duration_seconds
            && args.retry_period_seconds < args.renew_deadline_seconds,
        "need --retry-period-seconds < --renew-deadline-seconds < --lease-duration-seconds"
    );
    let config = kube::Config::infer().await?;
    let client = kube::Client::try_from(config.clone())?;
    let policy = egress_policy(&args, cluster_addresses(&config, &client).await);
    tracing::info!(
        deny = %list(&policy.deny),
        allow = %list(&policy.allow),
        default_deny = %list(&policy.default_deny),
        permit_insecure = args.permit_insecure,
        "egress policy"
    );
    egress::set_policy(policy);
    crate::transport::permit_insecure(args.permit_insecure);
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let probes = server::Probes {
        ready: ready.clone(),
        metrics: metrics.clone(),
    };
    let health = server::serve(args.health_addr, server::health_router(probes), stopped()).await?;
    let metrics_at = server::serve(
        args.metrics_addr,
        server::metrics_router(metrics.clone()),
        stopped(),
    )
    .await?;
    tracing::info!(%health, metrics = %metrics_at, namespaces = ?args.namespaces, "jobrelay starting");

    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("jobrelay-{}", std::process::id()));
    let mut leadership = args.leader_elect.then(|| {
        let lease = leader::Config {
            lease_duration: Duration::from_secs(args.lease_duration_seconds),
            renew_deadline: Duration::from_secs(args.renew_deadline_seconds),
            retry_period: Duration::from_secs(args.retry_period_seconds),
            ..leader::Config::new(&args.lease_namespace, &args.lease_name, &identity)
        };
        leader::join(client.clone(), lease)
    });
    // A standby is Ready: readiness says the process serves, not that it leads, so a rolling update
    // can start the new pod while the old one still holds the Lease. Leadership is the
    // jobrelay_leader metric and a log line.
    ready.store(true, Ordering::Relaxed);
    if let Some(l) = leadership.as_mut() {
        tokio::spawn(report_leadership(
            l.changes(),
            metrics.clone(),
            identity.clone(),
        ));
        tracing::info!(%identity, lease = %args.lease_name, namespace = %args.lease_namespace, "waiting to lead");
        tokio::select! {
            _ = l.acquired() => {}
            _ = stopped() => {
                if let Some(l) = leadership.take() {
                    l.release().await;
                }
                return Ok(());
            }
        }
    } else {
        metrics.leader.set(1);
    }

    let reporter = Reporter {
        controller: "jobrelay".into(),
        instance: Some(identity),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let tokens = Arc::new(TokenService::new(client.clone(), metrics.clone()));
    let (refs, triggers) = api_client::ref_watches::RefWatches::new(client.clone());
    let refs = refs.caching(tokens.refs.clone());
    let shared = Arc::new(crate::controller::in_use::Shared::new(
        args.namespaces.clone(),
    ));
    shared.set_wake(refs.sender());
    let apic_ctx = Arc::new(api_client::Context {
        client: client.clone(),
        tokens: tokens.clone(),
        metrics: metrics.clone(),
        recorder: recorder.clone(),
        refs,
        shared: shared.clone(),
    });
    let factory = Arc::new(remote_job::platform_remote::Factory {
        batches: Default::default(),
        throttles: Default::default(),
        token_failures: Default::default(),
        tokens,
        metrics: metrics.clone(),
    });
    let kueue = crate::controller::queue::sync::detect(&client, &args.namespaces).await;
    let job_ctx = Arc::new(remote_job::Context {
        client: client.clone(),
        remotes: factory,
        recorder,
        metrics: metrics.clone(),
        not_before: Default::default(),
        written: Default::default(),
        shared,
        kueue,
    });

    let controllers = futures::future::join(
        api_client::run(
            apic_ctx,
            triggers,
            args.namespaces.clone(),
            args.max_concurrent_reconciles,
            stopped(),
        ),
        remote_job::runner::run(
            job_ctx,
            args.namespaces.clone(),
            args.max_concurrent_reconciles,
            stopped(),
        ),
    );
    let lost = async {
        match leadership.as_mut() {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = controllers => {}
        // A leader that cannot renew must stop before another replica may start: exit at once
        // (the pod restarts and joins as a standby).
        _ = lost => anyhow::bail!("lost the leader Lease (could not renew it in time); exiting so that another replica takes over"),
    }
    // The controllers finished their in-flight reconciles: hand the Lease over now instead of
    // letting a standby wait for it to expire.
    if let Some(l) = leadership.take() {
        l.release().await;
    }
    Ok(())
}

/// Mirrors leadership into the `jobrelay_leader` gauge and the log.
async fn report_leadership(
    mut changes: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    identity: String,
) {
    loop {
        let leading = *changes.borrow_and_update();
        metrics.leader.set(leading as i64);
        match leading {
            true => tracing::info!(%identity, "became leader"),
            false => tracing::info!(%identity, "not leading"),
        }
        if changes.changed().await.is_err() {
            metrics.leader.set(0);
            return;
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: Args,
    }

    fn args(flags: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("run").chain(flags.iter().copied()))
            .unwrap()
            .run
    }

    #[test]
    fn the_policy_from_flags() {
        let a = args(&[
            "--egress-allow=127.0.0.0/8",
            "--egress-allow",
            "10.0.0.0/24,192.168.0.9",
            "--egress-deny=10.9.0.0/16",
            "--service-cidr=10.0.0.0/24",
            "--allow-link-local",
            "--permit-insecure",
        ]);
        assert!(a.permit_insecure);
        let p = egress_policy(
            &a,
            vec![egress::Rule::new(
                "10.0.0.1".parse().unwrap(),
                "kubernetes Service",
            )],
        );
        let ok = |s: &str| egress::decide(s.parse().unwrap(), &p).map_err(|d| d.rule.why);
        assert_eq!(ok("127.0.0.1"), Ok(()));
        assert_eq!(ok("10.0.0.7"), Ok(()));
        assert_eq!(ok("10.0.0.1"), Err("kubernetes Service".into()));
        assert_eq!(ok("10.9.0.1"), Err("--egress-deny".into()));
        assert_eq!(ok("169.254.169.254"), Ok(()));
        assert_eq!(ok("::1"), Err("loopback".into()));
        let d = args(&[]);
        assert!(!d.permit_insecure && !d.allow_link_local);
        let p = egress_policy(&d, vec![]);
        assert!(egress::decide("10.0.0.7".parse().unwrap(), &p).is_ok());
        assert!(egress::decide("169.254.169.254".parse().unwrap(), &p).is_err());
        assert!(
            Cli::try_parse_from(["run", "--egress-allow=10.0.0.0/33"]).is_err(),
            "a bad CIDR is refused at start"
        );
    }
}
