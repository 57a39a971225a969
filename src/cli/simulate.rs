//! `jobrelay simulate`: run the platform simulator (see `jobrelay::simulator`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::simulator::{self, Config, Fault};

/// Flags of `jobrelay simulate` (its help text is on the subcommand in `cli/mod.rs`).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// An OAuth2 client accepted by the Run:ai and DAI token endpoints, as ID:SECRET (repeatable).
    #[arg(long = "client", value_name = "ID:SECRET")]
    pub clients: Vec<String>,
    /// An OpenPAI user, as NAME:PASSWORD (repeatable).
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub users: Vec<String>,
    /// Token lifetime in seconds for every platform (default: Run:ai 3600, OpenPAI 7 days, DAI 300).
    #[arg(long, value_name = "SECONDS")]
    pub token_ttl: Option<u64>,
    /// Keep jobs and counters in this file so a restarted simulator continues where it stopped.
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// OpenPAI submit rate limit per user and hour (OpenPAI's own default is 60); 0 = off.
    #[arg(long, default_value_t = 0)]
    pub openpai_submits_per_hour: u32,
    /// OpenPAI list rate limit per user and minute (OpenPAI's own default is 60); 0 = off.
    #[arg(long, default_value_t = 0)]
    pub openpai_lists_per_min: u32,
    /// OpenPAI limit on all its API calls per minute (OpenPAI's own default is 600 per client address;
    /// here every client is on loopback, so it is one budget); 0 = off.
    #[arg(long, default_value_t = 0)]
    pub openpai_requests_per_min: u32,
    /// A fault active from the start, as JSON, e.g.
    /// '{"platform":"runai","op":"create","kind":"commitThenDrop","count":1}'. Kinds: latency (latencyMs),
    /// unauthorized, tooManyRequests (retryAfter), serverError, unavailable (retryAfter), commitThenDrop,
    /// duplicateAsBadRequest (Run:ai: a create whose name is taken answers 400 instead of 409),
    /// routeNotFound (404 as for a route the server lacks), methodNotAllowed (405), notImplemented
    /// (501) — the last three show a platform without a status read (DAI: op get covers both reads).
    /// Ops: token, create, get, list, cancel, suspend, resume, or *. count 0 = forever. (repeatable)
    #[arg(long = "fault", value_name = "JSON")]
    pub faults: Vec<String>,
    /// Run the platforms' clock this many seconds ahead of the real one (negative: behind): the DAI
    /// times they answer, the `since` they filter by and every `Date` header (clock-skew tests).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_skew: i64,
    /// Also accept RS256 tokens of this OIDC issuer (keys from its JWKS), e.g. a Keycloak realm URL
    /// `http://127.0.0.1:8080/auth/realms/jobrelay` (repeatable).
    #[arg(long = "trust-issuer", value_name = "URL")]
    pub trust_issuers: Vec<String>,
}

fn pairs(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--{what} takes NAME:SECRET"))
        })
        .collect()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut clients = pairs(&args.clients, "client")?;
    let mut users = pairs(&args.users, "user")?;
    if clients.is_empty() && users.is_empty() {
        let secret = format!("{:032x}", rand::random::<u128>());
        clients.insert("demo-client".into(), secret.clone());
        users.insert("demo".into(), secret.clone());
        println!("demo credentials: --client demo-client:{secret} --user demo:{secret}");
    }
    let faults = args
        .faults
        .iter()
        .map(|f| serde_json::from_str::<Fault>(f).map_err(|e| anyhow::anyhow!("--fault {f}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = Config {
        clients,
        users,
        token_ttl: args.token_ttl.map(Duration::from_secs),
        state_file: args.state_file,
        openpai_submits_per_hour: args.openpai_submits_per_hour,
        openpai_lists_per_min: args.openpai_lists_per_min,
        openpai_requests_per_min: args.openpai_requests_per_min,
        faults,
        trust_issuers: args.trust_issuers,
        clock_skew_seconds: args.clock_skew,
    };
    let handle = simulator::start(config, args.listen).await?;
    println!(
        "simulator listening on http://{} (/runai, /openpai, /dai, /_admin)",
        handle.addr
    );
    tokio::signal::ctrl_c().await?;
    handle.stop().await;
    Ok(())
}
