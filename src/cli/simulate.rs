//! `jobrelay simulate`: runs the platform simulator in the foreground (see `jobrelay::simulator`).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::simulator::{FaultRule, SimConfig, start};

const AFTER_HELP: &str = "\
Serves Run:ai under /runai, OpenPAI under /openpai, Eggplant DAI under /dai, admin under /_admin.

Jobs control their own fate through settings in the job body (Run:ai environment variables,
OpenPAI parameters or `SIM_X=value` words in commands, DAI extra fields):
  SIM_OUTCOME=succeed|fail|incomplete   how the run ends (default succeed)
  SIM_QUEUE_SECONDS=N                   seconds queued (Pending / WAITING)
  SIM_RUN_SECONDS=N                     seconds running
  SIM_STATE=WORD                        report WORD as the platform state (mapping tests)

Admin API: GET/POST/DELETE /_admin/faults, GET/DELETE /_admin/counters,
POST /_admin/pause {\"paused\":true}, GET /_admin/jobs.";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// An OAuth2 client for Run:ai and DAI, as ID:SECRET (repeatable).
    #[arg(long = "client", value_parser = pair)]
    pub clients: Vec<(String, String)>,
    /// An OpenPAI user, as NAME:PASSWORD (repeatable).
    #[arg(long = "user", value_parser = pair)]
    pub users: Vec<(String, String)>,
    /// Token lifetime in seconds for every platform (default: Run:ai 3600, DAI 300, OpenPAI 7 days).
    #[arg(long)]
    pub token_ttl: Option<u64>,
    /// Keep jobs and their progress in this file across restarts.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Seconds each transitional stage (creating, starting, stopping, deleting) lasts.
    #[arg(long, default_value_t = 1.0)]
    pub step_seconds: f64,
    /// Default seconds queued when the job does not set SIM_QUEUE_SECONDS.
    #[arg(long, default_value_t = 5.0)]
    pub queue_seconds: f64,
    /// Default seconds running when the job does not set SIM_RUN_SECONDS.
    #[arg(long, default_value_t = 30.0)]
    pub run_seconds: f64,
    /// OpenPAI submits per user per window (0 = unlimited).
    #[arg(long, default_value_t = 60)]
    pub openpai_submit_limit: u32,
    /// OpenPAI submit window in seconds.
    #[arg(long, default_value_t = 3600)]
    pub openpai_submit_window_seconds: u64,
    /// OpenPAI list calls per user per minute (0 = unlimited).
    #[arg(long, default_value_t = 60)]
    pub openpai_list_limit: u32,
    /// OpenPAI virtual clusters that exist (repeatable; default: default).
    #[arg(long = "openpai-vc")]
    pub openpai_virtual_clusters: Vec<String>,
    /// A fault rule PLATFORM:OP:KIND[=ARG][xTIMES], e.g. runai:create:commit_then_drop,
    /// openpai:*:status=503x2, dai:get:latency=200, *:token:rate_limit=3 (repeatable).
    #[arg(long = "fault", value_parser = FaultRule::parse)]
    pub faults: Vec<FaultRule>,
    /// Also accept RS256 tokens of this OIDC issuer (e.g. a Keycloak realm URL); keys are read
    /// from its discovery document's jwks_uri (repeatable).
    #[arg(long = "trust-issuer")]
    pub trust_issuers: Vec<String>,
}

fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err("expected NAME:SECRET".into()),
    }
}

fn made_up(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = SimConfig {
        listen: args.listen,
        clients: args.clients,
        users: args.users,
        token_ttl: args.token_ttl,
        state_file: args.state_file,
        step_seconds: args.step_seconds,
        queue_seconds: args.queue_seconds,
        run_seconds: args.run_seconds,
        openpai_submit_limit: args.openpai_submit_limit,
        openpai_submit_window_seconds: args.openpai_submit_window_seconds,
        openpai_list_limit: args.openpai_list_limit,
        openpai_virtual_clusters: if args.openpai_virtual_clusters.is_empty() {
            vec!["default".into()]
        } else {
            args.openpai_virtual_clusters
        },
        faults: args.faults,
        trust_issuers: args.trust_issuers,
    };
    // Demo credentials go to stdout only when the user gave none: they are made up for this run.
    if config.clients.is_empty() {
        let c = ("demo-client".to_string(), made_up("secret"));
        println!("demo client (Run:ai, DAI): {}:{}", c.0, c.1);
        config.clients.push(c);
    }
    if config.users.is_empty() {
        let u = ("demo".to_string(), made_up("password"));
        println!("demo user (OpenPAI): {}:{}", u.0, u.1);
        config.users.push(u);
    }
    let handle = start(config).await?;
    println!(
        "simulator listening on http://{} (/runai, /openpai, /dai, /_admin)",
        handle.addr
    );
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
