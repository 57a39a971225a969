//! Simulated Run:ai control plane (/work/shared/platforms.md §1.2, §1.5), mounted at `/runai`.

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
use super::common::{durations, finish, gate, gate_token, sim_to_rfc3339, wall_to_rfc3339};
use super::faults::ConnCut;
use super::lifecycle::{JobKind, SimJob, Stage, controls_from};
use super::shapes::{Shape, error};
use super::state::{Inner, Sim, wall_now};

const P: &str = "runai";

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route(
            "/auth/realms/{realm}/protocol/openid-connect/token",
            post(keycloak_token),
        )
        .route("/api/v1/token", post(token))
        .route("/api/v1/workloads/trainings", post(create))
        .route(
            "/api/v1/workloads/trainings/{id}",
            get(get_training).delete(delete),
        )
        .route("/api/v1/workloads/trainings/{id}/suspend", post(suspend))
        .route("/api/v1/workloads/trainings/{id}/resume", post(resume))
        .route("/api/v1/workloads", get(list))
        .route("/api/v1/workloads/{id}", get(get_workload))
}

async fn keycloak_token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate_token(&sim, P, Shape::Keycloak).await {
        return r;
    }
    auth::keycloak_token(&sim, P, &headers, &body)
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate_token(&sim, P, Shape::Runai).await {
        return r;
    }
    auth::runai_token(&sim, &headers, &body)
}

/// Run:ai's word for a stage.
pub fn word(job: &SimJob, stage: Stage) -> String {
    let natural = match stage {
        Stage::Creating if job.resumed => "Resuming",
        Stage::Creating => "Creating",
        Stage::Queued => "Pending",
        Stage::Starting => "Initializing",
        Stage::Running => "Running",
        Stage::Succeeded => "Completed",
        Stage::Failed | Stage::Incomplete => "Failed",
        Stage::Stopping => "Stopping",
        Stage::Stopped => "Stopped",
        Stage::Deleting | Stage::Deleted => "Deleting",
    };
    match (&job.controls.state_word, stage) {
        (
            Some(w),
            Stage::Creating
            | Stage::Queued
            | Stage::Starting
            | Stage::Running
            | Stage::Succeeded
            | Stage::Failed
            | Stage::Incomplete,
        ) => w.clone(),
        _ => natural.to_string(),
    }
}

fn desired(job: &SimJob) -> &'static str {
    if job.delete_at.is_some() {
        "Deleted"
    } else if job.stop_at.is_some() {
        "Stopped"
    } else {
        "Running"
    }
}

fn training_json(inner: &Inner, job: &SimJob, step: f64) -> Value {
    let now = inner.now();
    let stage = job.stage(now, step);
    json!({
        "name": job.name, "requestedName": job.name, "workloadId": job.id, "projectId": job.owner,
        "departmentId": null, "clusterId": job.body.get("clusterId"), "createdBy": "simulator",
        "createdAt": wall_to_rfc3339(job.created_wall),
        "deletedAt": job.delete_at.map(|d| sim_to_rfc3339(d, now)),
        "desiredPhase": desired(job), "actualPhase": word(job, stage),
        "spec": job.body.get("spec"),
    })
}

fn workload_json(inner: &Inner, job: &SimJob, step: f64) -> Value {
    let now = inner.now();
    let stage = job.stage(now, step);
    let completed = if stage.is_final() {
        job.finished_at(step).map(|t| sim_to_rfc3339(t, now))
    } else {
        None
    };
    json!({
        "id": job.id, "name": job.name, "type": "training", "phase": word(job, stage), "phaseMessage": "",
        "projectId": job.owner, "clusterId": job.body.get("clusterId"), "namespace": format!("runai-{}", job.owner),
        "createdAt": wall_to_rfc3339(job.created_wall), "completedAt": completed,
        "deletedAt": job.delete_at.map(|d| sim_to_rfc3339(d, now)),
    })
}

/// DNS-1123 label.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

async fn create(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let passed = match gate(&sim, &headers, P, "create", Shape::Runai).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            Shape::Runai,
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        );
    };
    let s = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (name, project, cluster) = (s("name"), s("projectId"), s("clusterId"));
    let image = body
        .pointer("/spec/image")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() || project.is_empty() || cluster.is_empty() || image.is_empty() {
        return error(
            Shape::Runai,
            StatusCode::BAD_REQUEST,
            "name, projectId, clusterId and spec.image are required.",
        );
    }
    if !valid_name(&name) {
        return error(
            Shape::Runai,
            StatusCode::BAD_REQUEST,
            "name must be a DNS-1123 label (lowercase alphanumerics and '-', at most 63).",
        );
    }
    let step = sim.config.step_seconds;
    let mut inner = sim.lock();
    let now = inner.now();
    let taken = inner.jobs.iter().any(|j| {
        j.kind == JobKind::Runai
            && j.owner == project
            && j.name == name
            && j.stage(now, step) != Stage::Deleted
    });
    if taken {
        return error(
            Shape::Runai,
            StatusCode::CONFLICT,
            "Resource with this name already exists",
        );
    }
    let controls = controls_from(&body);
    let (queue_seconds, run_seconds) = durations(&sim, &controls);
    let job = SimJob {
        kind: JobKind::Runai,
        id: uuid::Uuid::new_v4().to_string(),
        name: name.clone(),
        owner: project,
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
    };
    let answer = training_json(&inner, &job, step);
    inner.jobs.push(job);
    inner.count_create(format!("{P}/{name}"));
    sim.persist(&inner);
    drop(inner);
    finish(
        &passed,
        &conn,
        (StatusCode::ACCEPTED, Json(answer)).into_response(),
    )
}

fn not_found() -> Response {
    error(
        Shape::Runai,
        StatusCode::NOT_FOUND,
        "Resource id not found.",
    )
}

/// Index of a live (not yet removed) Run:ai job.
fn find(inner: &Inner, id: &str, step: f64) -> Option<usize> {
    let now = inner.now();
    inner.jobs.iter().position(|j| {
        j.kind == JobKind::Runai && j.id == id && j.stage(now, step) != Stage::Deleted
    })
}

async fn get_training(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate(&sim, &headers, P, "get", Shape::Runai).await {
        return r;
    }
    let step = sim.config.step_seconds;
    let inner = sim.lock();
    match find(&inner, &id, step) {
        Some(i) => Json(training_json(&inner, &inner.jobs[i], step)).into_response(),
        None => not_found(),
    }
}

async fn get_workload(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate(&sim, &headers, P, "get", Shape::Runai).await {
        return r;
    }
    let step = sim.config.step_seconds;
    let inner = sim.lock();
    match find(&inner, &id, step) {
        Some(i) => Json(workload_json(&inner, &inner.jobs[i], step)).into_response(),
        None => not_found(),
    }
}

/// Applies a state change to a live job and answers 202 in Run:ai's shape.
async fn change(
    sim: Arc<Sim>,
    conn: ConnCut,
    headers: HeaderMap,
    id: String,
    op: &str,
    apply: fn(&mut SimJob, f64),
) -> Response {
    let passed = match gate(&sim, &headers, P, op, Shape::Runai).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let step = sim.config.step_seconds;
    let mut inner = sim.lock();
    let Some(i) = find(&inner, &id, step) else {
        return not_found();
    };
    let now = inner.now();
    apply(&mut inner.jobs[i], now);
    sim.persist(&inner);
    drop(inner);
    finish(
        &passed,
        &conn,
        (
            StatusCode::ACCEPTED,
            Json(json!({"code": 202, "message": "Request has been accepted."})),
        )
            .into_response(),
    )
}

async fn delete(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    change(sim, conn, headers, id, "cancel", |j, now| {
        j.delete_at.get_or_insert(now);
    })
    .await
}

async fn suspend(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    change(sim, conn, headers, id, "suspend", |j, now| {
        j.stop_at.get_or_insert(now);
    })
    .await
}

async fn resume(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(conn): ConnectInfo<ConnCut>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    change(sim, conn, headers, id, "resume", |j, now| {
        if j.stop_at.take().is_some() {
            j.origin = now;
            j.resumed = true;
        }
    })
    .await
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(rename = "filterBy")]
    filter_by: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
    deleted: Option<bool>,
}

async fn list(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = gate(&sim, &headers, P, "list", Shape::Runai).await {
        return r;
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return error(
            Shape::Runai,
            StatusCode::BAD_REQUEST,
            "limit must be between 1 and 500.",
        );
    }
    let filters: Vec<(String, String)> = q
        .filter_by
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter_map(|f| {
            f.split_once("==")
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let step = sim.config.step_seconds;
    let inner = sim.lock();
    let now = inner.now();
    let matching: Vec<Value> = inner
        .jobs
        .iter()
        .filter(|j| j.kind == JobKind::Runai)
        .filter(|j| (j.stage(now, step) == Stage::Deleted) == q.deleted.unwrap_or(false))
        .map(|j| workload_json(&inner, j, step))
        .filter(|w| {
            filters
                .iter()
                .all(|(k, v)| w.get(k).and_then(Value::as_str) == Some(v.as_str()))
        })
        .collect();
    let offset = q.offset.unwrap_or(0);
    let page: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
    let mut body = json!({"workloads": page});
    if offset + limit < matching.len() {
        body["next"] = json!(offset + limit);
    }
    Json(body).into_response()
}
