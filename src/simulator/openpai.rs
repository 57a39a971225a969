//! Simulated OpenPAI rest-server (/work/shared/platforms.md §2), mounted at `/openpai`: token login,
//! the v2 job API (YAML protocol) and the pre-1.1 v1 API (JSON config). Jobs are `user~name`;
//! names are never freed (no delete), submits and lists are rate-limited per user.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::auth;
use super::common::{Passed, durations, finish, gate, gate_token};
use super::faults::ConnCut;
use super::lifecycle::{JobKind, SimJob, controls_from};
use super::openpai_jobs::{detail, summary, valid_name, validate_v2};
use super::shapes::{Shape, openpai_error, rate_limited};
use super::state::{Inner, Sim, wall_now};

const P: &str = "openpai";

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/api/v1/token", post(token))
        .route("/api/v2/tokens", post(token))
        .route("/api/v2/authn/basic/login", post(token))
        .route("/api/v2/jobs", post(create_v2).get(list_v2))
        .route("/api/v2/jobs/{fw}", get(get_v2))
        .route("/api/v2/jobs/{fw}/executionType", put(execute_v2))
        .route("/api/v1/user/{user}/jobs", post(create_v1))
        .route("/api/v1/user/{user}/jobs/{name}", get(get_v1))
        .route(
            "/api/v1/user/{user}/jobs/{name}/executionType",
            put(execute_v1),
        )
        .route("/api/v1/jobs", get(list_v1))
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate_token(&sim, P, Shape::Openpai).await {
        return r;
    }
    auth::openpai_token(&sim, &headers, &body)
}

/// Stores a new job unless `user~name` exists (ever: OpenPAI never frees names).
fn store(sim: &Sim, kind: JobKind, user: &str, name: &str, body: Value) -> Result<(), Response> {
    let mut inner = sim.lock();
    if inner.jobs.iter().any(|j| {
        matches!(j.kind, JobKind::OpenpaiV2 | JobKind::OpenpaiV1)
            && j.owner == user
            && j.name == name
    }) {
        return Err(openpai_error(
            StatusCode::CONFLICT,
            "ConflictJobError",
            &format!("Job {user}~{name} already exists."),
        ));
    }
    let controls = controls_from(&body);
    let (queue_seconds, run_seconds) = durations(sim, &controls);
    let now = inner.now();
    inner.jobs.push(SimJob {
        kind,
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into(),
        owner: user.into(),
        created_wall: wall_now(),
        origin: now,
        resumed: false,
        stop_at: None,
        delete_at: None,
        queue_seconds,
        run_seconds,
        controls,
        process_id: 0,
        body,
    });
    inner.count_create(format!("{P}/{user}~{name}"));
    sim.persist(&inner);
    Ok(())
}

fn submit_limit(sim: &Sim, user: &str) -> Result<(), Response> {
    let (limit, window) = (
        sim.config.openpai_submit_limit,
        sim.config.openpai_submit_window_seconds,
    );
    sim.lock()
        .rate_check(user, "submit", limit, window as f64)
        .map_err(|ra| rate_limited(Shape::Openpai, ra))
}

async fn create_v2(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let passed = match gate(&sim, &headers, P, "create", Shape::Openpai).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = submit_limit(&sim, &passed.subject) {
        return r;
    }
    // The rest-server parses text/* bodies with js-yaml; a JSON content type arrives as an object
    // and is stringified to "[object Object]", which fails validation.
    let text_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/"));
    let text = String::from_utf8_lossy(&body);
    let parsed: Option<Value> = if text_body {
        serde_saphyr::from_str::<Value>(&text).ok()
    } else {
        None
    };
    let Some(protocol) = parsed.filter(Value::is_object) else {
        return openpai_error(
            StatusCode::BAD_REQUEST,
            "InvalidProtocolError",
            "The job protocol is not a YAML object.",
        );
    };
    if let Err((s, code, m)) = validate_v2(&protocol, &sim.config.openpai_virtual_clusters) {
        return openpai_error(s, code, &m);
    }
    let name = protocol["name"].as_str().unwrap_or_default().to_string();
    let user = passed.subject.clone();
    if let Err(r) = store(&sim, JobKind::OpenpaiV2, &user, &name, protocol) {
        return r;
    }
    let msg = format!("Update job {name} for user {user} successfully.");
    finish(
        &passed,
        &conn,
        (
            StatusCode::ACCEPTED,
            Json(json!({"status": 202, "message": msg})),
        )
            .into_response(),
    )
}

async fn create_v1(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    let passed = match gate(&sim, &headers, P, "create", Shape::Openpai).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if passed.subject != user {
        return openpai_error(
            StatusCode::FORBIDDEN,
            "ForbiddenUserError",
            &format!(
                "User {} is not allowed to do this operation.",
                passed.subject
            ),
        );
    }
    if let Err(r) = submit_limit(&sim, &user) {
        return r;
    }
    let Ok(config) = serde_json::from_slice::<Value>(&body) else {
        return openpai_error(
            StatusCode::BAD_REQUEST,
            "InvalidParametersError",
            "The job config is not JSON.",
        );
    };
    let name = config
        .get("jobName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let roles_ok = config
        .get("taskRoles")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    if !valid_name(&name, &['.'])
        || config
            .get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        || !roles_ok
    {
        return openpai_error(
            StatusCode::BAD_REQUEST,
            "InvalidParametersError",
            "jobName, image and taskRoles are required.",
        );
    }
    if let Err(r) = store(&sim, JobKind::OpenpaiV1, &user, &name, config) {
        return r;
    }
    finish(
        &passed,
        &conn,
        (
            StatusCode::ACCEPTED,
            Json(json!({"message": format!("update job {name} successfully")})),
        )
            .into_response(),
    )
}

fn find(inner: &Inner, user: &str, name: &str) -> Option<usize> {
    inner.jobs.iter().position(|j| {
        matches!(j.kind, JobKind::OpenpaiV2 | JobKind::OpenpaiV1)
            && j.owner == user
            && j.name == name
    })
}

fn no_job(fw: &str) -> Response {
    openpai_error(
        StatusCode::NOT_FOUND,
        "NoJobError",
        &format!("Job {fw} is not found."),
    )
}

async fn get_v2(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(fw): Path<String>,
) -> Response {
    if let Err(r) = gate(&sim, &headers, P, "get", Shape::Openpai).await {
        return r;
    }
    let Some((user, name)) = fw.split_once('~') else {
        return no_job(&fw);
    };
    let inner = sim.lock();
    match find(&inner, user, name) {
        Some(i) => Json(detail(&inner, &inner.jobs[i], sim.config.step_seconds)).into_response(),
        None => no_job(&fw),
    }
}

async fn get_v1(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((user, name)): Path<(String, String)>,
) -> Response {
    if let Err(r) = gate(&sim, &headers, P, "get", Shape::Openpai).await {
        return r;
    }
    let inner = sim.lock();
    match find(&inner, &user, &name) {
        Some(i) => Json(detail(&inner, &inner.jobs[i], sim.config.step_seconds)).into_response(),
        None => no_job(&format!("{user}~{name}")),
    }
}

/// STOP / START for both API generations.
fn execute(
    sim: &Sim,
    passed: &Passed,
    user: &str,
    name: &str,
    body: &[u8],
) -> Result<(), Response> {
    let value = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("value").and_then(Value::as_str).map(str::to_string));
    let Some(value) = value.filter(|v| v == "STOP" || v == "START") else {
        return Err(openpai_error(
            StatusCode::BAD_REQUEST,
            "InvalidParametersError",
            "value should be STOP or START",
        ));
    };
    let mut inner = sim.lock();
    let Some(i) = find(&inner, user, name) else {
        return Err(no_job(&format!("{user}~{name}")));
    };
    if passed.subject != user {
        return Err(openpai_error(
            StatusCode::FORBIDDEN,
            "ForbiddenUserError",
            &format!(
                "User {} is not allowed to do this operation.",
                passed.subject
            ),
        ));
    }
    let now = inner.now();
    let job = &mut inner.jobs[i];
    if value == "STOP" {
        job.stop_at.get_or_insert(now);
    } else if job.stop_at.take().is_some() {
        job.origin = now;
    }
    sim.persist(&inner);
    Ok(())
}

async fn execute_v2(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    Path(fw): Path<String>,
    body: Bytes,
) -> Response {
    let passed = match gate(&sim, &headers, P, "cancel", Shape::Openpai).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some((user, name)) = fw.split_once('~') else {
        return no_job(&fw);
    };
    if let Err(r) = execute(&sim, &passed, user, name, &body) {
        return r;
    }
    let msg = format!("Execute job {fw} successfully.");
    finish(
        &passed,
        &conn,
        (
            StatusCode::ACCEPTED,
            Json(json!({"status": 202, "message": msg})),
        )
            .into_response(),
    )
}

async fn execute_v1(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    Path((user, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let passed = match gate(&sim, &headers, P, "cancel", Shape::Openpai).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = execute(&sim, &passed, &user, &name, &body) {
        return r;
    }
    finish(
        &passed,
        &conn,
        (
            StatusCode::OK,
            Json(json!({"message": format!("execute job {name} successfully")})),
        )
            .into_response(),
    )
}

#[derive(serde::Deserialize)]
struct ListQuery {
    username: Option<String>,
    state: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
    #[serde(rename = "withTotalCount")]
    with_total_count: Option<bool>,
}

fn listing(sim: &Sim, subject: &str, q: &ListQuery) -> Result<Vec<Value>, Response> {
    let limit = q.limit.unwrap_or(5000);
    if limit > 50000 {
        return Err(openpai_error(
            StatusCode::BAD_REQUEST,
            "InvalidParametersError",
            "limit should be <= 50000",
        ));
    }
    let (list_limit, window) = (sim.config.openpai_list_limit, 60.0);
    let mut inner = sim.lock();
    inner
        .rate_check(subject, "list", list_limit, window)
        .map_err(|ra| rate_limited(Shape::Openpai, ra))?;
    let users: Option<Vec<&str>> = q.username.as_deref().map(|u| u.split(',').collect());
    let states: Option<Vec<&str>> = q.state.as_deref().map(|s| s.split(',').collect());
    let step = sim.config.step_seconds;
    let inner = &*inner;
    Ok(inner
        .jobs
        .iter()
        .rev()
        .filter(|j| matches!(j.kind, JobKind::OpenpaiV2 | JobKind::OpenpaiV1))
        .filter(|j| users.as_ref().is_none_or(|u| u.contains(&j.owner.as_str())))
        .map(|j| summary(inner, j, step))
        .filter(|s| {
            states
                .as_ref()
                .is_none_or(|st| st.iter().any(|w| s["state"] == *w))
        })
        .skip(q.offset.unwrap_or(0))
        .take(limit)
        .collect())
}

async fn list_v2(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let passed = match gate(&sim, &headers, P, "list", Shape::Openpai).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match listing(&sim, &passed.subject, &q) {
        Ok(items) if q.with_total_count == Some(true) => {
            Json(json!({"totalCount": items.len(), "data": items})).into_response()
        }
        Ok(items) => Json(Value::Array(items)).into_response(),
        Err(r) => r,
    }
}

async fn list_v1(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let passed = match gate(&sim, &headers, P, "list", Shape::Openpai).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match listing(&sim, &passed.subject, &q) {
        Ok(items) => Json(Value::Array(items)).into_response(),
        Err(r) => r,
    }
}
