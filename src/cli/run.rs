//! `jobrelay run`: the operator (ApiClient and RemoteJob controllers in one process).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;

use crate::auth::service::TokenService;
use crate::controller::{api_client, remote_job};
use crate::metrics::Metrics;
use crate::server;
use crate::telemetry::{self, LogFormat};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "JOBRELAY_NAMESPACE")]
    pub namespace: Option<String>,
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
    /// Let ApiClients reach link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10,
    /// fd00:ec2::254, 100.100.100.200, 168.63.129.16), refused by default so that an ApiClient cannot be used to
    /// reach the node's metadata service.
    #[arg(long, env = "JOBRELAY_ALLOW_LINK_LOCAL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_link_local: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
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
    tracing::info!(%health, metrics = %metrics_at, namespace = ?args.namespace, "jobrelay starting");

    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("jobrelay-{}", std::process::id()));
    let mut leadership = None;
    if args.leader_elect {
        let mut l = crate::leader::join(
            client.clone(),
            &args.lease_namespace,
            "jobrelay-leader",
            &identity,
            15,
        )
        .await?;
        tokio::select! {
            _ = l.acquired() => tracing::info!(%identity, "became leader"),
            _ = stopped() => return Ok(()),
        }
        leadership = Some(l);
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

    ready.store(true, Ordering::Relaxed);
    let lost = async move {
        match leadership.as_mut() {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = futures::future::join(
            api_client::run(apic_ctx, triggers, args.namespace.clone(), stopped()),
            remote_job::runner::run(job_ctx, args.namespace.clone(), stopped()),
        ) => {}
        _ = lost => anyhow::bail!("lost the leader lease; exiting so that another replica takes over"),
    }
    Ok(())
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
