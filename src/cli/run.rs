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
    /// reach the node's metadata service.
    #[arg(long, env = "JOBRELAY_ALLOW_LINK_LOCAL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_link_local: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    anyhow::ensure!(
        args.renew_deadline_seconds < args.lease_duration_seconds
            && args.retry_period_seconds < args.renew_deadline_seconds,
        "need --retry-period-seconds < --renew-deadline-seconds < --lease-duration-seconds"
    );
    crate::auth::egress::allow_link_local(args.allow_link_local);
    let client = kube::Client::try_default().await?;
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
    let apic_ctx = Arc::new(api_client::Context {
        client: client.clone(),
        tokens: tokens.clone(),
        metrics: metrics.clone(),
        recorder: recorder.clone(),
        refs,
    });
    let factory = Arc::new(remote_job::platform_remote::Factory {
        batches: Default::default(),
        throttles: Default::default(),
        tokens,
        metrics: metrics.clone(),
    });
    let job_ctx = Arc::new(remote_job::Context {
        client: client.clone(),
        remotes: factory,
        recorder,
        metrics: metrics.clone(),
        not_before: Default::default(),
    });

    let controllers = futures::future::join(
        api_client::run(apic_ctx, triggers, args.namespaces.clone(), stopped()),
        remote_job::runner::run(job_ctx, args.namespaces.clone(), stopped()),
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
