//! OpenPAI's pre-1.1 v1 jobs API (platforms.md §2.3): JSON job config, jobs under `/api/v1/user/:u/jobs`,
//! states WAITING, RUNNING, SUCCEEDED, STOPPED, FAILED, UNKNOWN (no STOPPING).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::common::{Shared, admit, error, take_commit_then_drop};
use super::jobs::{Job, Stage, vars_from_pairs};
use super::state::now_ms;

const P: &str = "openpai";

fn state_word(stage: Stage) -> &'static str {
    match stage {
        Stage::Queued => "WAITING",
        Stage::Running => "RUNNING",
        Stage::Succeeded => "SUCCEEDED",
        Stage::Failed => "FAILED",
        Stage::Stopped | Stage::Deleted => "STOPPED",
    }
}

fn id(user: &str, name: &str) -> String {
    format!("v1:{user}~{name}")
}

/// `POST /api/v1/user/:username/jobs` with `{jobName, image, taskRoles:[…], jobEnvs?}`.
pub async fn submit(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(user): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let claims = match admit(&sim, P, "create", &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if claims["sub"].as_str() != Some(user.as_str()) {
        return error(
            P,
            StatusCode::FORBIDDEN,
            "ForbiddenUserError",
            &format!(
                "User {} is not allowed to do operation for {user}",
                claims["sub"]
            ),
        );
    }
    if let Some(r) = super::openpai::submit_limited(&sim, &user) {
        return r;
    }
    let name = body
        .get("jobName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    let roles = body
        .get("taskRoles")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty());
    if !valid_name
        || body
            .get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        || roles.is_none()
    {
        return error(
            P,
            StatusCode::BAD_REQUEST,
            "InvalidParametersError",
            "jobName, image and taskRoles are required",
        );
    }
    let drop_answer = take_commit_then_drop(&sim, P);
    {
        let mut inner = sim.lock();
        let key = id(&user, &name);
        if inner.jobs.contains_key(&key) {
            drop(inner);
            return error(
                P,
                StatusCode::CONFLICT,
                "ConflictJobError",
                &format!("Job {name} already exists."),
            );
        }
        let vars = vars_from_pairs(
            body.get("jobEnvs")
                .map(|e| match e {
                    Value::Object(m) => Value::Array(
                        m.iter()
                            .map(|(k, v)| json!({"name": k, "value": v}))
                            .collect(),
                    ),
                    other => other.clone(),
                })
                .as_ref(),
        );
        sim.record_create(
            &mut inner,
            Job::new(
                P,
                key,
                name.clone(),
                user.clone(),
                &vars,
                body.clone(),
                now_ms(),
            ),
            format!("{P}/{name}"),
        );
    }
    if let Some(lost) = drop_answer {
        return lost();
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"message": format!("update job {name} successfully")})),
    )
        .into_response()
}

pub async fn get(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path((user, name)): Path<(String, String)>,
) -> Response {
    if let Err(r) = admit(&sim, P, "get", &headers).await {
        return r;
    }
    let job = sim.lock().jobs.get(&id(&user, &name)).cloned();
    let Some(job) = job else {
        return error(
            P,
            StatusCode::NOT_FOUND,
            "NoJobError",
            &format!("Job {name} is not found."),
        );
    };
    let stage = job.stage(now_ms(), sim.lock().paused_at);
    let exit = match stage {
        Stage::Succeeded => json!(0),
        Stage::Failed => json!(1),
        _ => Value::Null,
    };
    axum::Json(json!({"name": name, "jobStatus": {"username": user, "state": state_word(stage), "appExitCode": exit}})).into_response()
}

pub async fn execution_type(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path((user, name)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(r) = admit(&sim, P, "cancel", &headers).await {
        return r;
    }
    let value = body.get("value").and_then(Value::as_str).unwrap_or("");
    let mut inner = sim.lock();
    let paused = inner.paused_at;
    let Some(job) = inner.jobs.get_mut(&id(&user, &name)) else {
        drop(inner);
        return error(
            P,
            StatusCode::NOT_FOUND,
            "NoJobError",
            &format!("Job {name} is not found."),
        );
    };
    match value {
        "STOP" => job.stop(now_ms(), paused),
        "START" => job.resume(now_ms()),
        _ => {
            drop(inner);
            return error(
                P,
                StatusCode::BAD_REQUEST,
                "InvalidParametersError",
                "value should be STOP or START",
            );
        }
    }
    sim.persist(&inner);
    axum::Json(json!({"message": format!("execute job {name} successfully")})).into_response()
}
