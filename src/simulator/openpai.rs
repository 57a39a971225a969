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
use super::common::{Passed, durations, finish, gate, gate_token, sim_to_rfc3339};
use super::faults::ConnCut;
use super::lifecycle::{JobKind, SimJob, Stage, controls_from};
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

/// OpenPAI's `jobStatus.state` and FrameworkController sub-state for a stage.
pub fn words(job: &SimJob, stage: Stage) -> (String, &'static str) {
    let (state, sub) = match stage {
        Stage::Creating => ("WAITING", "AttemptCreationPending"),
        Stage::Queued => ("WAITING", "AttemptCreationRequested"),
        Stage::Starting => ("WAITING", "AttemptPreparing"),
        Stage::Running => ("RUNNING", "AttemptRunning"),
        Stage::Succeeded => ("SUCCEEDED", "Completed"),
        Stage::Failed | Stage::Incomplete => ("FAILED", "Completed"),
        // v1 knew no STOPPING.
        Stage::Stopping if job.kind == JobKind::OpenpaiV1 => ("STOPPED", "AttemptDeletionPending"),
        Stage::Stopping => ("STOPPING", "AttemptDeletionPending"),
        Stage::Stopped | Stage::Deleting | Stage::Deleted => ("STOPPED", "Completed"),
    };
    let state = match (&job.controls.state_word, stage) {
        (Some(w), s) if !matches!(s, Stage::Stopping | Stage::Stopped) => w.clone(),
        _ => state.to_string(),
    };
    (state, sub)
}

fn ms(sim_t: Option<f64>, now: f64) -> Value {
    match sim_t {
        Some(t) => json!(((t + (wall_now() - now)) * 1000.0) as i64),
        None => Value::Null,
    }
}

fn summary(inner: &Inner, job: &SimJob, step: f64) -> Value {
    let now = inner.now();
    let stage = job.stage(now, step);
    let (state, sub) = words(job, stage);
    let launched = (!matches!(stage, Stage::Creating | Stage::Queued | Stage::Starting))
        .then_some(job.origin + 2.0 * step + job.queue_seconds);
    let completed = if stage.is_final() {
        job.finished_at(step)
    } else if stage == Stage::Stopped {
        job.stop_at.map(|s| s + step)
    } else {
        None
    };
    let exit = match stage {
        Stage::Succeeded => json!(0),
        Stage::Failed | Stage::Incomplete => json!(1),
        Stage::Stopped => json!(-210),
        _ => Value::Null,
    };
    let vc = job
        .body
        .pointer("/defaults/virtualCluster")
        .or_else(|| job.body.get("virtualCluster"))
        .cloned()
        .unwrap_or(json!("default"));
    json!({
        "name": job.name, "username": job.owner, "state": state, "subState": sub,
        "executionType": if job.stop_at.is_some() { "STOP" } else { "START" },
        "submissionTime": (job.created_wall * 1000.0) as i64, "createdTime": (job.created_wall * 1000.0) as i64,
        "launchedTime": ms(launched, now), "completedTime": ms(completed, now), "appExitCode": exit,
        "virtualCluster": vc, "retries": 0, "totalGpuNumber": 0, "totalTaskNumber": 1, "tags": [], "debugId": job.id,
        "completedAt": completed.map(|c| sim_to_rfc3339(c, now)),
    })
}

fn detail(inner: &Inner, job: &SimJob, step: f64) -> Value {
    let s = summary(inner, job, step);
    json!({"name": job.name, "debugId": job.id, "tags": [], "jobPriority": "default", "jobStatus": s, "taskRoles": {}})
}

fn valid_name(n: &str, extra: &[char]) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c))
}

/// Validates a v2 protocol the way the rest-server's ajv schema and cross checks do (the parts
/// that matter to us).
pub fn validate_v2(
    p: &Value,
    virtual_clusters: &[String],
) -> Result<(), (StatusCode, &'static str, String)> {
    let bad = |m: String| Err((StatusCode::BAD_REQUEST, "InvalidProtocolError", m));
    if !matches!(p.get("protocolVersion"), Some(v) if v == &json!(2) || v == &json!("2")) {
        return bad("protocolVersion must be 2".into());
    }
    let name = p.get("name").and_then(Value::as_str).unwrap_or("");
    if !valid_name(name, &[]) {
        return bad("name should match pattern \"^[a-zA-Z0-9_-]+$\"".into());
    }
    if p.get("type").and_then(Value::as_str) != Some("job") {
        return bad("type should be equal to one of the allowed values: job".into());
    }
    let Some(roles) = p
        .get("taskRoles")
        .and_then(Value::as_object)
        .filter(|r| !r.is_empty())
    else {
        return bad("taskRoles should have at least one task role".into());
    };
    let prereqs: Vec<&Value> = p
        .get("prerequisites")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for (role_name, role) in roles {
        let ok_key = role_name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && role_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok_key {
            return bad(format!("task role name {role_name} is invalid"));
        }
        let res = role.get("resourcePerInstance");
        let int = |k: &str| res.and_then(|r| r.get(k)).is_some_and(Value::is_i64);
        if !(int("cpu") && int("memoryMB") && int("gpu")) {
            return bad(format!(
                "taskRoles.{role_name}.resourcePerInstance needs integer cpu, memoryMB and gpu"
            ));
        }
        if role
            .get("commands")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            return bad(format!(
                "taskRoles.{role_name}.commands should NOT have fewer than 1 items"
            ));
        }
        let image = role
            .get("dockerImage")
            .and_then(Value::as_str)
            .unwrap_or("");
        let found = prereqs.iter().any(|p| {
            p.get("name").and_then(Value::as_str) == Some(image)
                && p.get("type").and_then(Value::as_str) == Some("dockerimage")
                && p.get("uri").is_some()
        });
        if !found {
            return bad(format!("Prerequisite {image} does not exist."));
        }
    }
    let vc = p
        .pointer("/defaults/virtualCluster")
        .and_then(Value::as_str)
        .unwrap_or("default");
    if !virtual_clusters.iter().any(|v| v == vc) {
        return Err((
            StatusCode::BAD_REQUEST,
            "NoVirtualClusterError",
            format!("Virtual cluster {vc} is not found."),
        ));
    }
    Ok(())
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
