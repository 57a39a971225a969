//! Eggplant DAI's legacy run API (platforms.md §3.3): form-encoded `/api/run`, `/api/run/progress`
//! (`id=` for one run, or `modelName=` + `limit=` for the latest runs of a model), `/api/run/abort` by
//! process id. Status words: Running, Passed, Failed, Incomplete (an aborted run ends Incomplete).
//! Times in the documented `2018-05-31 17:00:01.366412+01` form, on the simulator's (skewable) clock.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::common::{Shared, admit, dai_legacy_time, take_commit_then_drop};
use super::jobs::{Job, Stage};
use super::state::{State as Sim, now_ms};
use super::tokens::fields;

const P: &str = "dai";

fn status_word(stage: Stage) -> &'static str {
    match stage {
        Stage::Queued | Stage::Running => "Running",
        Stage::Succeeded => "Passed",
        Stage::Failed => "Failed",
        Stage::Stopped | Stage::Deleted => "Incomplete",
    }
}

fn run(job: &Job, sim: &Sim) -> Value {
    let stage = job.stage(now_ms(), sim.lock().paused_at);
    let done = !matches!(stage, Stage::Queued | Stage::Running);
    json!({
        "id": job.id, "modelname": job.name, "username": job.owner,
        "starttime": dai_legacy_time(sim.platform_ms(job.created_ms)),
        "endtime": done.then(|| dai_legacy_time(sim.platform_ms(job.finished_ms()))),
        "type": "model", "initiator": "api",
        "status": status_word(stage), "processid": job.body["processid"],
    })
}

fn bad(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"message": message, "description": message})),
    )
        .into_response()
}

pub async fn start(
    State(sim): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let claims = match admit(&sim, P, "create", &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let f = fields(&headers, &body);
    let (Some(model), Some(_group)) = (f.get("modelName"), f.get("group")) else {
        return bad(StatusCode::BAD_REQUEST, "modelName and group are required");
    };
    let drop_answer = take_commit_then_drop(&sim, P);
    let job = {
        let mut inner = sim.lock();
        let seq = Sim::next_seq(&mut inner);
        let id = format!("{seq:08x}-1e9a-4000-8000-{seq:012x}");
        let mut stored = json!(f);
        stored["processid"] = json!((4000 + seq).to_string());
        let vars = f
            .iter()
            .filter(|(k, _)| k.starts_with("SIM_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let user = claims["sub"].as_str().unwrap_or("").to_string();
        let job = Job::new(P, id.clone(), model.clone(), user, &vars, stored, now_ms());
        sim.record_create(&mut inner, job.clone(), format!("{P}/{model}"));
        job
    };
    if let Some(lost) = drop_answer {
        return lost();
    }
    axum::Json(run(&job, &sim)).into_response()
}

pub async fn progress(
    State(sim): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = admit(&sim, P, "get", &headers).await {
        return r;
    }
    let f = fields(&headers, &body);
    let runs: Vec<Job> = sim
        .lock()
        .jobs
        .values()
        .filter(|j| j.platform == P && j.body.get("processid").is_some())
        .cloned()
        .collect();
    if let Some(id) = f.get("id") {
        return match runs.iter().find(|j| &j.id == id) {
            Some(j) => axum::Json(run(j, &sim)).into_response(),
            None => bad(StatusCode::NOT_FOUND, "Run not found"),
        };
    }
    let Some(model) = f.get("modelName") else {
        return bad(StatusCode::BAD_REQUEST, "id or modelName is required");
    };
    let limit: usize = f.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let mut of_model: Vec<&Job> = runs.iter().filter(|j| &j.name == model).collect();
    of_model.sort_by_key(|j| std::cmp::Reverse(j.created_ms));
    axum::Json(
        of_model
            .into_iter()
            .take(limit)
            .map(|j| run(j, &sim))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

pub async fn abort(
    State(sim): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = admit(&sim, P, "cancel", &headers).await {
        return r;
    }
    let f = fields(&headers, &body);
    let pid = f.get("id").cloned().unwrap_or_default();
    let mut inner = sim.lock();
    let paused = inner.paused_at;
    let Some(job) = inner
        .jobs
        .values_mut()
        .find(|j| j.platform == P && j.body["processid"].as_str() == Some(pid.as_str()))
    else {
        drop(inner);
        return bad(StatusCode::NOT_FOUND, "Process not found");
    };
    job.stop(now_ms(), paused);
    sim.persist(&inner);
    axum::Json(json!({"message": "OK", "description": "Execution abort triggered"})).into_response()
}
