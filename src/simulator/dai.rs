//! Simulated Eggplant DAI (/work/shared/platforms.md §3), mounted at `/dai`: a Keycloak-shaped token
//! endpoint, the execution service (FastAPI-style errors; its GET and list endpoints are guesses,
//! as the public docs show none) and the legacy form-encoded run API.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::auth;
use super::common::{Passed, durations, finish, gate, gate_token, sim_to_rfc3339, wall_to_rfc3339};
use super::faults::ConnCut;
use super::lifecycle::{JobKind, SimJob, Stage, controls_from};
use super::shapes::{Shape, error};
use super::state::{Inner, Sim, wall_now};

const P: &str = "dai";
const EXEC: &str = "/execution_service/api/v1/executions";

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route(
            "/auth/realms/{realm}/protocol/openid-connect/token",
            post(token),
        )
        .route(EXEC, post(start).get(list))
        .route(&format!("{EXEC}/{{id}}"), get(get_execution).delete(abort))
        .route("/api/run", post(legacy_start))
        .route("/api/run/progress", post(legacy_progress))
        .route("/api/run/abort", post(legacy_abort))
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate_token(&sim, P, Shape::Keycloak).await {
        return r;
    }
    auth::keycloak_token(&sim, P, &headers, &body)
}

/// DAI's status word: Running until the end, then Passed / Failed / Incomplete; an abort shows as
/// Aborted (execution service, a guess) or Incomplete (legacy).
pub fn word(job: &SimJob, stage: Stage) -> String {
    let natural = match stage {
        Stage::Creating | Stage::Queued | Stage::Starting | Stage::Running => "Running",
        Stage::Succeeded => "Passed",
        Stage::Failed => "Failed",
        Stage::Incomplete => "Incomplete",
        _ if job.kind == JobKind::DaiLegacy => "Incomplete",
        _ => "Aborted",
    };
    match (&job.controls.state_word, stage) {
        (Some(w), s)
            if !matches!(
                s,
                Stage::Stopping | Stage::Stopped | Stage::Deleting | Stage::Deleted
            ) =>
        {
            w.clone()
        }
        _ => natural.to_string(),
    }
}

fn run_json(inner: &Inner, job: &SimJob, step: f64) -> Value {
    let now = inner.now();
    let stage = job.stage(now, step);
    let end = if stage.is_final() {
        job.finished_at(step)
    } else {
        job.stop_at.or(job.delete_at)
    };
    let end = end.map(|e| sim_to_rfc3339(e, now));
    let status = word(job, stage);
    if job.kind == JobKind::DaiLegacy {
        json!({
            "id": job.id, "modelname": job.name, "username": job.owner, "starttime": wall_to_rfc3339(job.created_wall),
            "endtime": end, "type": "model", "agentname": job.body.get("agentName"), "initiator": "api",
            "status": status, "processid": job.process_id.to_string(),
        })
    } else {
        json!({
            "id": job.id, "execution_id": job.id, "status": status, "model_id": job.body.get("model_id"),
            "start_time": wall_to_rfc3339(job.created_wall), "end_time": end,
        })
    }
}

fn new_job(
    sim: &Sim,
    inner: &mut Inner,
    kind: JobKind,
    name: String,
    owner: &str,
    body: Value,
) -> SimJob {
    let controls = controls_from(&body);
    let (queue_seconds, run_seconds) = durations(sim, &controls);
    inner.next_pid += 1;
    SimJob {
        kind,
        id: uuid::Uuid::new_v4().to_string(),
        name,
        owner: owner.to_string(),
        created_wall: wall_now(),
        origin: inner.now(),
        resumed: false,
        stop_at: None,
        delete_at: None,
        queue_seconds,
        run_seconds,
        controls,
        process_id: inner.next_pid,
        body,
    }
}

/// Stores the run, counts it, answers; cuts the connection when commit-then-drop was injected.
fn commit(sim: &Sim, passed: &Passed, conn: &ConnCut, job: SimJob, status: StatusCode) -> Response {
    let step = sim.config.step_seconds;
    let mut inner = sim.lock();
    let answer = run_json(&inner, &job, step);
    inner.count_create(format!("{P}/{}", job.name));
    inner.jobs.push(job);
    sim.persist(&inner);
    drop(inner);
    finish(passed, conn, (status, Json(answer)).into_response())
}

fn unprocessable(msg: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": [{"loc": ["body"], "msg": msg, "type": "value_error"}]})),
    )
        .into_response()
}

async fn start(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let passed = match gate(&sim, &headers, P, "create", Shape::DaiExecution).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(body) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
    else {
        return unprocessable("body must be a JSON object");
    };
    if body.get("execution_type").is_some_and(|t| t != "executing") {
        return unprocessable("execution_type must be 'executing'");
    }
    let name = ["model_id", "script", "rerun_id"]
        .iter()
        .find_map(|k| body.get(*k))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    let Some(name) = name else {
        return unprocessable("one of model_id, rerun_id or script is required");
    };
    let job = {
        let mut inner = sim.lock();
        new_job(
            &sim,
            &mut inner,
            JobKind::DaiExecution,
            name,
            &passed.subject,
            body,
        )
    };
    commit(&sim, &passed, &conn, job, StatusCode::CREATED)
}

fn find(inner: &Inner, kind: JobKind, pred: impl Fn(&SimJob) -> bool) -> Option<usize> {
    inner.jobs.iter().position(|j| j.kind == kind && pred(j))
}

async fn get_execution(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate(&sim, &headers, P, "get", Shape::DaiExecution).await {
        return r;
    }
    let inner = sim.lock();
    match find(&inner, JobKind::DaiExecution, |j| j.id == id) {
        Some(i) => Json(run_json(&inner, &inner.jobs[i], sim.config.step_seconds)).into_response(),
        None => error(
            Shape::DaiExecution,
            StatusCode::NOT_FOUND,
            "Execution not found",
        ),
    }
}

async fn abort(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let passed = match gate(&sim, &headers, P, "cancel", Shape::DaiExecution).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut inner = sim.lock();
    let Some(i) = find(&inner, JobKind::DaiExecution, |j| j.id == id) else {
        return error(
            Shape::DaiExecution,
            StatusCode::NOT_FOUND,
            "Execution not found",
        );
    };
    let now = inner.now();
    inner.jobs[i].stop_at.get_or_insert(now);
    sim.persist(&inner);
    drop(inner);
    finish(&passed, &conn, StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
struct ListQuery {
    model_id: Option<String>,
    limit: Option<usize>,
}

/// Recent executions, newest first (a simulator guess; used by reconcile_unknown_start).
async fn list(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = gate(&sim, &headers, P, "list", Shape::DaiExecution).await {
        return r;
    }
    let inner = sim.lock();
    let step = sim.config.step_seconds;
    let items: Vec<Value> = inner
        .jobs
        .iter()
        .rev()
        .filter(|j| {
            j.kind == JobKind::DaiExecution
                && q.model_id
                    .as_ref()
                    .is_none_or(|m| j.body.get("model_id").and_then(Value::as_str) == Some(m))
        })
        .take(q.limit.unwrap_or(50))
        .map(|j| run_json(&inner, j, step))
        .collect();
    Json(Value::Array(items)).into_response()
}

fn form(body: &[u8]) -> serde_json::Map<String, Value> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

fn legacy_bad(msg: &str) -> Response {
    error(Shape::DaiLegacy, StatusCode::BAD_REQUEST, msg)
}

async fn legacy_start(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let passed = match gate(&sim, &headers, P, "create", Shape::DaiLegacy).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let f = form(&body);
    let model = f
        .get("modelName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if model.is_empty()
        || f.get("group")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return legacy_bad("modelName and group are required");
    }
    let job = {
        let mut inner = sim.lock();
        new_job(
            &sim,
            &mut inner,
            JobKind::DaiLegacy,
            model,
            &passed.subject,
            Value::Object(f),
        )
    };
    commit(&sim, &passed, &conn, job, StatusCode::OK)
}

async fn legacy_progress(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let op = if f.contains_key("id") { "get" } else { "list" };
    if let Err(r) = gate(&sim, &headers, P, op, Shape::DaiLegacy).await {
        return r;
    }
    let inner = sim.lock();
    let step = sim.config.step_seconds;
    if let Some(id) = f.get("id").and_then(Value::as_str) {
        return match find(&inner, JobKind::DaiLegacy, |j| j.id == id) {
            Some(i) => Json(run_json(&inner, &inner.jobs[i], step)).into_response(),
            None => error(Shape::DaiLegacy, StatusCode::NOT_FOUND, "Run not found"),
        };
    }
    let Some(model) = f.get("modelName").and_then(Value::as_str) else {
        return legacy_bad("id or modelName is required");
    };
    let limit = f
        .get("limit")
        .and_then(Value::as_str)
        .and_then(|l| l.parse().ok())
        .unwrap_or(10usize);
    let items: Vec<Value> = inner
        .jobs
        .iter()
        .rev()
        .filter(|j| j.kind == JobKind::DaiLegacy && j.name == model)
        .take(limit)
        .map(|j| run_json(&inner, j, step))
        .collect();
    Json(Value::Array(items)).into_response()
}

async fn legacy_abort(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let passed = match gate(&sim, &headers, P, "cancel", Shape::DaiLegacy).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let f = form(&body);
    let Some(pid) = f
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return legacy_bad("id must be the run's process id (an integer)");
    };
    let mut inner = sim.lock();
    let Some(i) = find(&inner, JobKind::DaiLegacy, |j| j.process_id == pid) else {
        return error(Shape::DaiLegacy, StatusCode::NOT_FOUND, "Process not found");
    };
    let now = inner.now();
    inner.jobs[i].stop_at.get_or_insert(now);
    sim.persist(&inner);
    drop(inner);
    finish(
        &passed,
        &conn,
        Json(json!({"message": "OK", "description": "Execution abort triggered"})).into_response(),
    )
}
