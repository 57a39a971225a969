//! Eggplant DAI execution service (platforms.md §3.2, §3.4; FastAPI-shaped errors). DAI has no
//! client-chosen names: every accepted start is a new execution with a server id.
//! `GET /execution_service/api/v1/executions?since=<RFC 3339>&model_id=` lists executions; this list
//! call is the simulator's guess at what the real service offers (documented as such in platforms.md).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::common::{Shared, admit, iso, take_commit_then_drop};
use super::jobs::{Job, Stage, vars_from_object};
use super::state::{State as Sim, now_ms};

const P: &str = "dai";

pub fn status_word(stage: Stage) -> &'static str {
    match stage {
        Stage::Queued => "Queued",
        Stage::Running => "Running",
        Stage::Succeeded => "Passed",
        Stage::Failed => "Failed",
        Stage::Stopped | Stage::Deleted => "Aborted",
    }
}

fn execution(job: &Job, sim: &Sim) -> Value {
    let stage = job.stage(now_ms(), sim.lock().paused_at);
    let done = !matches!(stage, Stage::Queued | Stage::Running);
    json!({
        "id": job.id, "status": status_word(stage), "model_id": job.body.get("model_id"),
        "test_case_id": job.body.get("test_case_id"),
        "created_at": iso(sim.platform_ms(job.created_ms)),
        "start_time": iso(sim.platform_ms(job.started_ms())),
        "end_time": done.then(|| iso(sim.platform_ms(job.finished_ms()))),
    })
}

fn unprocessable(msg: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({"detail": [{"loc": ["body"], "msg": msg, "type": "value_error"}]})),
    )
        .into_response()
}

pub async fn start(
    State(sim): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(r) = admit(&sim, P, "create", &headers).await {
        return r;
    }
    if ["model_id", "rerun_id", "script"]
        .iter()
        .all(|k| body.get(*k).is_none_or(Value::is_null))
    {
        return unprocessable("at least one of model_id, rerun_id or script is required");
    }
    let drop_answer = take_commit_then_drop(&sim, P);
    let job = {
        let mut inner = sim.lock();
        let seq = Sim::next_seq(&mut inner);
        let id = format!("{seq:08x}-dai0-4000-8000-{seq:012x}");
        let key = ["model_id", "script", "rerun_id"]
            .iter()
            .find_map(|k| {
                body.get(*k)
                    .filter(|v| !v.is_null())
                    .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
            })
            .unwrap_or_default();
        let job = Job::new(
            P,
            id.clone(),
            key.clone(),
            key.clone(),
            &vars_from_object(Some(&body)),
            body.clone(),
            now_ms(),
        );
        sim.record_create(&mut inner, job.clone(), format!("{P}/{key}"));
        job
    };
    if let Some(lost) = drop_answer {
        return lost();
    }
    (StatusCode::CREATED, axum::Json(execution(&job, &sim))).into_response()
}

pub async fn get(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admit(&sim, P, "get", &headers).await {
        return r;
    }
    let job = sim.job(P, &id);
    match job {
        Some(job) => axum::Json(execution(&job, &sim)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"detail": "Execution not found"})),
        )
            .into_response(),
    }
}

pub async fn list(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&sim, P, "list", &headers).await {
        return r;
    }
    let since = q
        .get("since")
        .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
        .unwrap_or(0);
    let jobs: Vec<Job> = sim
        .lock()
        .jobs
        .values()
        .filter(|j| j.platform == P && sim.platform_ms(j.created_ms) >= since)
        .cloned()
        .collect();
    let out: Vec<Value> = jobs
        .iter()
        .filter(|j| {
            q.get("model_id")
                .is_none_or(|m| j.body.get("model_id").and_then(Value::as_str) == Some(m))
        })
        .map(|j| execution(j, &sim))
        .collect();
    axum::Json(json!({"items": out})).into_response()
}

pub async fn abort(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admit(&sim, P, "cancel", &headers).await {
        return r;
    }
    let mut inner = sim.lock();
    let paused = inner.paused_at;
    let Some(job) = inner.jobs.get_mut(&id).filter(|j| j.platform == P) else {
        drop(inner);
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"detail": "Execution not found"})),
        )
            .into_response();
    };
    job.stop(now_ms(), paused);
    sim.persist(&inner);
    StatusCode::NO_CONTENT.into_response()
}
