//! Run:ai control-plane trainings API (platforms.md §1.2, §1.5).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::common::{Shared, admit, error, iso, take_commit_then_drop, take_create_fault};
use super::jobs::{Job, Stage, vars_from_pairs};
use super::state::FaultKind;
use super::state::{State as Sim, now_ms};

const P: &str = "runai";

/// Run:ai's phase word for a stage.
pub fn phase(job: &Job, stage: Stage, now: i64) -> &'static str {
    match stage {
        Stage::Queued if now - job.epoch_ms < job.queue_ms / 2 => "Creating",
        Stage::Queued => "Pending",
        Stage::Running if now - job.started_ms() < 300 => "Initializing",
        Stage::Running => "Running",
        Stage::Succeeded => "Completed",
        Stage::Failed => "Failed",
        Stage::Stopped => "Stopped",
        Stage::Deleted => "Deleting",
    }
}

fn training(job: &Job, sim: &Sim) -> Value {
    let now = now_ms();
    let stage = job.stage(now, sim.lock().paused_at);
    let desired = match stage {
        Stage::Stopped => "Stopped",
        Stage::Deleted => "Deleted",
        _ => "Running",
    };
    json!({
        "name": job.name, "requestedName": job.name, "workloadId": job.id,
        "projectId": job.owner, "clusterId": job.body.get("clusterId"),
        "createdBy": "simulator", "createdAt": iso(job.created_ms),
        "desiredPhase": desired, "actualPhase": phase(job, stage, now),
        "spec": job.body.get("spec"),
    })
}

/// A generic workload; a deleted one (listed only under `?deleted=true`) shows `deletedAt` and the
/// phase it had when deleted if it had ended, else Deleting.
fn workload(job: &Job, sim: &Sim) -> Value {
    let now = now_ms();
    let stage = match job.deleted {
        Some((_, last @ (Stage::Succeeded | Stage::Failed))) => last,
        _ => job.stage(now, sim.lock().paused_at),
    };
    let mut w = json!({
        "id": job.id, "name": job.name, "type": "runai-job", "phase": phase(job, stage, now),
        "projectId": job.owner, "createdAt": iso(job.created_ms),
        "deletedAt": job.deleted.map(|(at, _)| iso(at)),
    });
    if matches!(stage, Stage::Succeeded | Stage::Failed) {
        w["completedAt"] = Value::String(iso(job.finished_ms()));
    }
    if stage == Stage::Failed {
        w["phaseMessage"] = Value::String("the training exited with code 1".into());
    }
    w
}

pub async fn create(
    State(sim): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(r) = admit(&sim, P, "create", &headers).await {
        return r;
    }
    let s = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (name, project) = (s("name"), s("projectId"));
    let image = body
        .pointer("/spec/image")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() || project.is_empty() || s("clusterId").is_empty() || image.is_empty() {
        return error(
            P,
            StatusCode::BAD_REQUEST,
            "",
            "name, projectId, clusterId and spec.image are required",
        );
    }
    let drop_answer = take_commit_then_drop(&sim, P);
    let job = {
        let mut inner = sim.lock();
        let taken = inner.jobs.values().any(|j| {
            j.platform == P
                && j.owner == project
                && j.name == name
                && j.frozen != Some(Stage::Deleted)
        });
        if taken {
            drop(inner);
            if take_create_fault(&sim, P, FaultKind::DuplicateAsBadRequest) {
                return error(
                    P,
                    StatusCode::BAD_REQUEST,
                    "",
                    &format!("workload {name} already exists in the project"),
                );
            }
            return error(
                P,
                StatusCode::CONFLICT,
                "",
                "Resource with this name already exists",
            );
        }
        let seq = Sim::next_seq(&mut inner);
        let id = format!("{:08x}-0000-4000-8000-{:012x}", seq, seq);
        let vars = vars_from_pairs(body.pointer("/spec/environmentVariables"));
        let job = Job::new(
            P,
            id.clone(),
            name.clone(),
            project,
            &vars,
            body.clone(),
            now_ms(),
        );
        sim.record_create(&mut inner, job.clone(), format!("{P}/{name}"));
        job
    };
    if let Some(lost) = drop_answer {
        return lost();
    }
    (StatusCode::ACCEPTED, axum::Json(training(&job, &sim))).into_response()
}

fn find(sim: &Sim, id: &str) -> Option<Job> {
    sim.job(P, id).filter(|j| j.frozen != Some(Stage::Deleted))
}

/// One job rendered as a training (`GET …/trainings/{id}`) or a generic workload (`GET …/workloads/{id}`).
async fn get_as(
    sim: Shared,
    headers: HeaderMap,
    id: String,
    render: fn(&Job, &Sim) -> Value,
) -> Response {
    if let Err(r) = admit(&sim, P, "get", &headers).await {
        return r;
    }
    match find(&sim, &id) {
        Some(job) => axum::Json(render(&job, &sim)).into_response(),
        None => error(P, StatusCode::NOT_FOUND, "", "Resource id not found."),
    }
}

pub async fn get(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    get_as(sim, headers, id, training).await
}

pub async fn get_workload(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    get_as(sim, headers, id, workload).await
}

/// `GET /api/v1/workloads?filterBy=name==x,projectId==y&deleted=true&offset&limit`
pub async fn list(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&sim, P, "list", &headers).await {
        return r;
    }
    let filters: Vec<(String, String)> = q
        .get("filterBy")
        .map(|f| {
            f.split(',')
                .filter_map(|c| c.split_once("=="))
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        })
        .unwrap_or_default();
    if filters.iter().any(|(k, _)| k == "name") {
        *sim.lock().counters.lookups.entry(P.into()).or_default() += 1;
    }
    let deleted = q.get("deleted").is_some_and(|d| d == "true");
    let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(50)
        .clamp(1, 500);
    let jobs: Vec<Job> = sim
        .lock()
        .jobs
        .values()
        .filter(|j| j.platform == P && (j.frozen == Some(Stage::Deleted)) == deleted)
        .filter(|j| {
            filters.iter().all(|(k, v)| match k.as_str() {
                "name" => &j.name == v,
                "projectId" => &j.owner == v,
                _ => true,
            })
        })
        .cloned()
        .collect();
    let page: Vec<Value> = jobs
        .iter()
        .skip(offset)
        .take(limit)
        .map(|j| workload(j, &sim))
        .collect();
    let mut out = json!({"workloads": page});
    if offset + limit < jobs.len() {
        out["next"] = json!(offset + limit);
    }
    axum::Json(out).into_response()
}

async fn action(sim: Shared, headers: HeaderMap, id: String, op: &str) -> Response {
    if let Err(r) = admit(&sim, P, op, &headers).await {
        return r;
    }
    let mut inner = sim.lock();
    let paused = inner.paused_at;
    let Some(job) = inner
        .jobs
        .get_mut(&id)
        .filter(|j| j.platform == P && j.frozen != Some(Stage::Deleted))
    else {
        drop(inner);
        return error(P, StatusCode::NOT_FOUND, "", "Resource id not found.");
    };
    let now = now_ms();
    match op {
        "suspend" => job.stop(now, paused),
        "resume" => job.resume(now),
        _ => job.delete(now, paused),
    }
    sim.persist(&inner);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"code": 202, "message": "Request has been accepted."})),
    )
        .into_response()
}

pub async fn delete(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    action(sim, headers, id, "cancel").await
}
pub async fn suspend(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    action(sim, headers, id, "suspend").await
}
pub async fn resume(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    action(sim, headers, id, "resume").await
}
