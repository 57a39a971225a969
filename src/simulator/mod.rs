//! `jobrelay simulate`: one HTTP server that plays Run:ai, OpenPAI and Eggplant DAI for tests and
//! demos, following /work/shared/platforms.md.
//!
//! Paths: `/runai/…`, `/openpai/…`, `/dai/…` (an ApiClient's baseUrl is `http://HOST:PORT/runai`
//! etc.), plus `/_admin/…`. Token endpoints: `/runai/auth/realms/<any>/protocol/openid-connect/token`
//! and `/dai/auth/realms/<any>/…/token` (Keycloak form, client_secret_post or _basic),
//! `/runai/api/v1/token` (JSON), `/openpai/api/v1/token` (form or JSON login).
//!
//! # Controlling outcomes
//! Settings travel inside the job itself, so a test needs nothing but a RemoteJob:
//! - `SIM_OUTCOME=succeed|fail|incomplete` (default succeed; incomplete is DAI's word, elsewhere a failure)
//! - `SIM_QUEUE_SECONDS=<f64>`: time spent queued (Run:ai Pending, OpenPAI WAITING)
//! - `SIM_RUN_SECONDS=<f64>`: time spent running
//! - `SIM_STATE=<word>`: report this state word instead of the natural one (until stopped/deleted),
//!   to exercise every state mapping (e.g. `Degraded`, `UNKNOWN`, `Exploded`).
//!
//! They are read from anywhere in the submitted body: Run:ai `spec.environmentVariables`
//! (`{name, value}`), OpenPAI `parameters` keys or `SIM_X=value` words in `commands`, DAI `extra`
//! keys (JSON fields of the execution, form fields of a legacy run).
//!
//! Life cycle: created → queued (`SIM_QUEUE_SECONDS`) → starting → running (`SIM_RUN_SECONDS`) → outcome,
//! with creating/starting/stopping/deleting each lasting `--step-seconds`. Pausing freezes that clock.
//!
//! # Admin API
//! - `GET/POST/DELETE /_admin/faults`: list, add (JSON [`FaultRule`]), clear fault rules.
//!   Example: `{"platform":"runai","op":"create","kind":"commit_then_drop","times":1}`; kinds
//!   `latency{ms}`, `unauthorized`, `rate_limit{retry_after}`, `status{status}`, `commit_then_drop`;
//!   ops `token, create, get, list, cancel, suspend, resume`.
//! - `GET/DELETE /_admin/counters`: [`Counters`] (creates per name, tokens per client, requests by
//!   route and status), or reset them.
//! - `POST /_admin/pause` `{"paused": true|false}`: freeze or release job progress.
//! - `GET /_admin/jobs`: every job with its current stage.

// Handlers bail out early with ready-made responses (`Result<_, Response>`); boxing them would only
// add noise to a test server.
#![allow(clippy::result_large_err)]

mod auth;
mod common;
mod dai;
mod external;
pub mod faults;
pub mod lifecycle;
mod openpai;
mod openpai_jobs;
mod runai;
mod shapes;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{FaultKind, FaultRule};
pub use state::Counters;

use common::Dropped;
use faults::{ConnCut, DropListener};
use state::Sim;

/// Simulator settings. Credentials are plain strings on purpose: they are test fixtures.
#[derive(Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    /// Run:ai and DAI OAuth2 clients (id, secret).
    pub clients: Vec<(String, String)>,
    /// OpenPAI users (name, password).
    pub users: Vec<(String, String)>,
    /// Token lifetime for every platform; `None`: Run:ai 3600 s, DAI 300 s, OpenPAI 7 days.
    pub token_ttl: Option<u64>,
    pub state_file: Option<PathBuf>,
    /// Length of transitional stages (creating, starting, stopping, deleting).
    pub step_seconds: f64,
    /// Default queue and run times when the job does not say (`SIM_QUEUE_SECONDS`, `SIM_RUN_SECONDS`).
    pub queue_seconds: f64,
    pub run_seconds: f64,
    /// OpenPAI submits per user per window (0 = unlimited); OpenPAI's default is 60 per hour.
    pub openpai_submit_limit: u32,
    pub openpai_submit_window_seconds: u64,
    /// OpenPAI list calls per user per minute (0 = unlimited).
    pub openpai_list_limit: u32,
    pub openpai_virtual_clusters: Vec<String>,
    pub faults: Vec<FaultRule>,
    /// OIDC issuers whose RS256 tokens are accepted besides our own (keys from their JWKS).
    pub trust_issuers: Vec<String>,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.clients.iter().map(|(i, _)| i.as_str()).collect();
        let users: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("clients", &ids)
            .field("users", &users)
            .field("token_ttl", &self.token_ttl)
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// Fast schedules on an ephemeral port with one client (`test-client`/`test-secret`) and one
    /// OpenPAI user (`alice`/`alice-password`).
    pub fn for_tests() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 0).into(),
            clients: vec![("test-client".into(), "test-secret".into())],
            users: vec![("alice".into(), "alice-password".into())],
            token_ttl: None,
            state_file: None,
            step_seconds: 0.05,
            queue_seconds: 0.1,
            run_seconds: 0.3,
            openpai_submit_limit: 0,
            openpai_submit_window_seconds: 3600,
            openpai_list_limit: 0,
            openpai_virtual_clusters: vec!["default".into()],
            faults: Vec::new(),
            trust_issuers: Vec::new(),
        }
    }
}

/// A running simulator.
pub struct SimulatorHandle {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl SimulatorHandle {
    /// `http://ADDR/<platform>`, the baseUrl for an ApiClient of that platform.
    pub fn base_url(&self, platform: &str) -> String {
        format!("http://{}/{platform}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}/_admin/{path}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Binds and serves in the background.
pub async fn start(config: SimConfig) -> anyhow::Result<SimulatorHandle> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim::new(config)?);
    let app = router(sim);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            DropListener(listener),
            app.into_make_service_with_connect_info::<ConnCut>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
    });
    Ok(SimulatorHandle {
        addr,
        shutdown: Some(tx),
        task,
    })
}

fn router(sim: Arc<Sim>) -> Router {
    let admin = Router::new()
        .route(
            "/faults",
            get(faults_list).post(faults_add).delete(faults_clear),
        )
        .route("/counters", get(counters).delete(counters_reset))
        .route("/pause", post(pause))
        .route("/jobs", get(jobs));
    Router::new()
        .nest("/runai", runai::router())
        .nest("/openpai", openpai::router())
        .nest("/dai", dai::router())
        .nest("/_admin", admin)
        .layer(middleware::from_fn_with_state(sim.clone(), count_requests))
        .with_state(sim)
}

/// Counts every request by method, matched route and status (or `dropped`).
async fn count_requests(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = if resp.extensions().get::<Dropped>().is_some() {
        "dropped".to_string()
    } else {
        resp.status().as_u16().to_string()
    };
    *sim.lock()
        .counters
        .requests
        .entry(format!("{method} {route} {status}"))
        .or_default() += 1;
    resp
}

async fn faults_list(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().faults.clone()).into_response()
}

async fn faults_add(State(sim): State<Arc<Sim>>, Json(rule): Json<FaultRule>) -> Response {
    sim.lock().faults.push(rule);
    StatusCode::NO_CONTENT.into_response()
}

async fn faults_clear(State(sim): State<Arc<Sim>>) -> Response {
    sim.lock().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn counters(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().counters.clone()).into_response()
}

async fn counters_reset(State(sim): State<Arc<Sim>>) -> Response {
    sim.lock().counters = Counters::default();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(serde::Deserialize)]
struct Pause {
    paused: bool,
}

async fn pause(State(sim): State<Arc<Sim>>, Json(p): Json<Pause>) -> Response {
    let mut inner = sim.lock();
    inner.set_paused(p.paused);
    sim.persist(&inner);
    Json(json!({"paused": inner.paused()})).into_response()
}

async fn jobs(State(sim): State<Arc<Sim>>) -> Response {
    let inner = sim.lock();
    let now = inner.now();
    let step = sim.config.step_seconds;
    let list: Vec<_> = inner
        .jobs
        .iter()
        .map(|j| json!({"kind": j.kind, "id": j.id, "name": j.name, "owner": j.owner, "stage": format!("{:?}", j.stage(now, step))}))
        .collect();
    Json(list).into_response()
}
