//! `jobrelay simulate`: one HTTP server that plays Run:ai (`/runai`), OpenPAI (`/openpai`) and Eggplant
//! DAI (`/dai`) on the documented contracts (../shared/platforms.md), with fault injection and counters
//! for tests under `/_admin`. Only the remote platforms are simulated; everything else in the tests is real.
//!
//! Admin API:
//! - `GET /_admin/counters`: creates per platform/name, token requests per client/user, requests per
//!   route and status (`dropped` for an answer commit-then-drop never sent).
//! - `POST /_admin/faults` with a [`Fault`] (or a list) adds faults; `DELETE /_admin/faults` clears them.
//! - `POST /_admin/pause` / `POST /_admin/resume`: freeze / unfreeze every job's progress.
//! - `GET /_admin/jobs`: every job as stored.
//! - `POST /_admin/jobs/{id}/delete`: a person (or Run:ai's auto-deletion) deletes the job on the
//!   platform, finished or not; Run:ai then answers 404 by id and lists it under `?deleted=true`.
//! - `GET /_admin/requests`: the latest 10,000 requests with their arrival times (pacing checks).
//!
//! `Config::clock_skew_seconds` (`--clock-skew`) runs the platforms' clock ahead of (or behind) the
//! real one: DAI times, DAI's `since` filter and every `Date` header.

pub mod common;
pub mod dai;
pub mod dai_legacy;
pub mod external;
pub mod jobs;
pub mod jwt;
pub mod openpai;
pub mod openpai_v1;
pub mod runai;
pub mod state;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use common::Shared;
pub use state::{Config, Counters, Fault, FaultKind};

/// The simulator's routes over `state`.
pub fn router(state: Shared) -> Router {
    let realm = "/{platform}/auth/realms/{realm}/protocol/openid-connect/token";
    Router::new()
        .route(realm, post(tokens::realm_token))
        .route("/runai/api/v1/token", post(tokens::runai_token))
        .route("/runai/api/v1/workloads/trainings", post(runai::create))
        .route(
            "/runai/api/v1/workloads/trainings/{id}",
            get(runai::get).delete(runai::delete),
        )
        .route(
            "/runai/api/v1/workloads/trainings/{id}/suspend",
            post(runai::suspend),
        )
        .route(
            "/runai/api/v1/workloads/trainings/{id}/resume",
            post(runai::resume),
        )
        .route("/runai/api/v1/workloads", get(runai::list))
        .route("/runai/api/v1/workloads/{id}", get(runai::get_workload))
        .route("/openpai/api/v1/token", post(tokens::openpai_token))
        .route(
            "/openpai/api/v2/jobs",
            post(openpai::submit).get(openpai::list),
        )
        .route("/openpai/api/v2/jobs/{frame}", get(openpai::get))
        .route(
            "/openpai/api/v2/jobs/{frame}/executionType",
            put(openpai::execution_type),
        )
        .route("/openpai/api/v1/user/{user}/jobs", post(openpai_v1::submit))
        .route(
            "/openpai/api/v1/user/{user}/jobs/{name}",
            get(openpai_v1::get),
        )
        .route(
            "/openpai/api/v1/user/{user}/jobs/{name}/executionType",
            put(openpai_v1::execution_type),
        )
        .route(
            "/dai/execution_service/api/v1/executions",
            post(dai::start).get(dai::list),
        )
        .route(
            "/dai/execution_service/api/v1/executions/{id}",
            get(dai::get).delete(dai::abort),
        )
        .route("/dai/api/run", post(dai_legacy::start))
        .route("/dai/api/run/progress", post(dai_legacy::progress))
        .route("/dai/api/run/abort", post(dai_legacy::abort))
        .route("/_admin/counters", get(counters))
        .route("/_admin/faults", post(add_faults).delete(clear_faults))
        .route("/_admin/pause", post(pause))
        .route("/_admin/resume", post(resume))
        .route("/_admin/jobs", get(all_jobs))
        .route("/_admin/jobs/{id}/delete", post(delete_job))
        .route("/_admin/requests", get(request_log))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            openpai_api_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), skewed_date))
        .with_state(state)
}

/// With a clock skew configured, every answer's `Date` header shows the platforms' skewed clock.
async fn skewed_date(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if state.config.clock_skew_seconds != 0 {
        let at = k8s_openapi::jiff::Timestamp::from_millisecond(state.platform_ms(state::now_ms()));
        if let Some(v) = at
            .ok()
            .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string())
            .and_then(|t| axum::http::HeaderValue::from_str(&t).ok())
        {
            resp.headers_mut().insert(axum::http::header::DATE, v);
        }
    }
    resp
}

async fn count_requests(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let at = state::now_ms();
    let resp = next.run(req).await;
    if !route.starts_with("/_admin") {
        let outcome = match resp.extensions().get::<common::Dropped>() {
            Some(_) => "dropped".to_string(),
            None => resp.status().as_u16().to_string(),
        };
        let key = format!("{method} {route} {outcome}");
        let mut inner = state.lock();
        *inner.counters.requests.entry(key.clone()).or_default() += 1;
        inner.log_request(at, key);
    }
    resp
}

/// OpenPAI's limiter on all of its API (per client address; every client of the simulator is on
/// loopback, so one window for all), in front of its token check as in the rest-server.
async fn openpai_api_limit(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/openpai/")
        && let Some(r) = openpai::rate_limited(
            &state,
            "api".into(),
            state.config.openpai_requests_per_min,
            60,
        )
    {
        return r;
    }
    next.run(req).await
}

async fn counters(State(state): State<Shared>) -> Response {
    axum::Json(state.lock().counters.clone()).into_response()
}

async fn add_faults(State(state): State<Shared>, axum::Json(body): axum::Json<Value>) -> Response {
    let faults: Vec<Fault> = match body {
        Value::Array(_) => serde_json::from_value(body),
        other => serde_json::from_value(other).map(|f| vec![f]),
    }
    .unwrap_or_default();
    let n = faults.len();
    state.lock().faults.extend(faults);
    axum::Json(json!({"added": n})).into_response()
}

async fn clear_faults(State(state): State<Shared>) -> Response {
    state.lock().faults.clear();
    axum::Json(json!({"cleared": true})).into_response()
}

async fn pause(State(state): State<Shared>) -> Response {
    let mut inner = state.lock();
    inner.paused_at.get_or_insert(state::now_ms());
    axum::Json(json!({"paused": true})).into_response()
}

/// Unfreezes progress; jobs continue from where they were when paused.
async fn resume(State(state): State<Shared>) -> Response {
    let mut inner = state.lock();
    if let Some(at) = inner.paused_at.take() {
        let shift = state::now_ms() - at;
        inner.jobs.values_mut().for_each(|j| j.epoch_ms += shift);
        state.persist(&inner);
    }
    axum::Json(json!({"paused": false})).into_response()
}

async fn request_log(State(state): State<Shared>) -> Response {
    let log: Vec<Value> = state
        .lock()
        .request_log
        .iter()
        .map(|(at, r)| json!({"at": common::iso(*at), "request": r}))
        .collect();
    axum::Json(log).into_response()
}

async fn all_jobs(State(state): State<Shared>) -> Response {
    let jobs: Vec<_> = state.lock().jobs.values().cloned().collect();
    axum::Json(jobs).into_response()
}

async fn delete_job(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let mut inner = state.lock();
    let paused = inner.paused_at;
    let Some(job) = inner.jobs.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"deleted": false}))).into_response();
    };
    job.delete(state::now_ms(), paused);
    state.persist(&inner);
    axum::Json(json!({"deleted": true})).into_response()
}

/// A running simulator.
pub struct Handle {
    pub addr: SocketAddr,
    pub state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// `http://addr/<platform>`: an ApiClient baseUrl.
    pub fn base_url(&self, platform: &str) -> String {
        format!("http://{}/{platform}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts the simulator on `listen` (port 0 for any free port).
pub async fn start(config: Config, listen: SocketAddr) -> std::io::Result<Handle> {
    let state = Arc::new(state::State::new(config)?);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Handle {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}
