//! OpenPAI rest-server v2 jobs API (platforms.md §2.2–2.7): YAML submission, `user~name` ids, no delete,
//! stop via executionType, names never reusable, plain-text 429s from the rate limiters (§2.7).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::common::{Shared, admit, error, take_commit_then_drop};
use super::jobs::{Job, Stage, vars_from_object};
use super::state::{State as Sim, now_ms};

const P: &str = "openpai";

/// express-rate-limit as OpenPAI configures it (§2.7): at most `limit` hits per `window_s` seconds for
/// `key`. The hit over the limit gets a plain-text 429 with `X-RateLimit-*` and a `Retry-After` of the
/// whole window; it is not counted. `limit` 0: no limit.
pub fn rate_limited(sim: &Sim, key: String, limit: u32, window_s: u32) -> Option<Response> {
    if limit == 0 {
        return None;
    }
    let now = now_ms();
    let mut inner = sim.lock();
    let hits = inner.rate_windows.entry(key).or_default();
    hits.retain(|t| now - t < i64::from(window_s) * 1000);
    if hits.len() < limit as usize {
        hits.push(now);
        return None;
    }
    drop(inner);
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests, please try again later.",
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(window_s));
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    Some(r)
}

/// The submit limiter of v2 and the v1 seed API (per user and hour).
pub fn submit_limited(sim: &Sim, user: &str) -> Option<Response> {
    rate_limited(
        sim,
        format!("submit/{user}"),
        sim.config.openpai_submits_per_hour,
        3600,
    )
}

pub fn state_word(stage: Stage) -> &'static str {
    match stage {
        Stage::Queued => "WAITING",
        Stage::Running => "RUNNING",
        Stage::Succeeded => "SUCCEEDED",
        Stage::Failed => "FAILED",
        Stage::Stopped | Stage::Deleted => "STOPPED",
    }
}

fn status(job: &Job, sim: &Sim) -> Value {
    let stage = job.stage(now_ms(), sim.lock().paused_at);
    let done = matches!(stage, Stage::Succeeded | Stage::Failed | Stage::Stopped);
    let exit = match stage {
        Stage::Succeeded => json!(0),
        Stage::Failed => json!(1),
        Stage::Stopped => json!(-210),
        _ => Value::Null,
    };
    let mut status = json!({
        "name": job.name, "username": job.owner, "state": state_word(stage),
        "executionType": if stage == Stage::Stopped { "STOP" } else { "START" },
        "submissionTime": job.created_ms, "createdTime": job.created_ms,
        "launchedTime": (stage != Stage::Queued).then_some(job.started_ms()),
        "completedTime": done.then_some(job.finished_ms()), "appExitCode": exit, "retries": 0,
        "virtualCluster": job.body.pointer("/defaults/virtualCluster").cloned().unwrap_or(json!("default")),
        "appExitSpec": null, "appExitDiagnostics": null, "appExitTriggerMessage": null, "appExitType": null,
    });
    if stage == Stage::Failed {
        // The exit fields of a failed job, as the rest-server fills them from the job-exit-spec.
        status["appExitSpec"] = json!({
            "code": 1, "phrase": "ContainerNonZeroExitCode", "issuer": "PAI_RUNTIME",
            "causer": "USER_CONTAINER", "type": "USER_FAILURE", "stage": "RUNNING",
        });
        status["appExitDiagnostics"] =
            json!("[ExitCode]: 1\n[ExitDiagnostics]:\nsimulated failure (SIM_OUTCOME=fail)\n");
        status["appExitTriggerMessage"] = json!("simulated failure (SIM_OUTCOME=fail)");
        status["appExitType"] = json!("USER_FAILURE");
    }
    status
}

/// Minimal protocol validation, as the rest-server's ajv schema and prerequisite checks do.
fn validate(p: &Value) -> Result<(), String> {
    let name = p.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("data.name should match pattern \"^[a-zA-Z0-9_-]+$\"".into());
    }
    if p.get("type").and_then(Value::as_str) != Some("job") || p.get("protocolVersion").is_none() {
        return Err("data should have required property 'protocolVersion' and type 'job'".into());
    }
    let roles = p
        .get("taskRoles")
        .and_then(Value::as_object)
        .filter(|r| !r.is_empty())
        .ok_or("data should have required property 'taskRoles'")?;
    let prereqs: Vec<&str> = p
        .get("prerequisites")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|x| x.get("type").and_then(Value::as_str) == Some("dockerimage"))
        .filter_map(|x| x.get("name").and_then(Value::as_str))
        .collect();
    for (role, spec) in roles {
        let image = spec
            .get("dockerImage")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !prereqs.contains(&image) {
            return Err(format!("Prerequisite {image} does not exist."));
        }
        if spec
            .get("commands")
            .and_then(Value::as_array)
            .is_none_or(|c| c.is_empty())
        {
            return Err(format!(
                "data.taskRoles['{role}'] should have required property 'commands'"
            ));
        }
    }
    Ok(())
}

pub async fn submit(State(sim): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let claims = match admit(&sim, P, "create", &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let user = claims["sub"].as_str().unwrap_or("").to_string();
    // The rest-server's order: token check, submit limiter, then protocol validation.
    if let Some(r) = submit_limited(&sim, &user) {
        return r;
    }
    // js-yaml.safeLoad of the text body: JSON text is YAML too.
    let parsed = serde_json::from_str(&body)
        .or_else(|_| serde_saphyr::from_str::<Value>(&body).map_err(|_| ()));
    let protocol: Value = match parsed {
        Ok(v) => v,
        Err(_) => {
            return error(
                P,
                StatusCode::BAD_REQUEST,
                "InvalidProtocolError",
                "job protocol is not valid YAML/JSON",
            );
        }
    };
    if let Err(m) = validate(&protocol) {
        return error(P, StatusCode::BAD_REQUEST, "InvalidProtocolError", &m);
    }
    let name = protocol["name"].as_str().unwrap_or("").to_string();
    let id = format!("{user}~{name}");
    let drop_answer = take_commit_then_drop(&sim, P);
    {
        let mut inner = sim.lock();
        let now = now_ms();
        if inner.jobs.contains_key(&id) {
            drop(inner);
            return error(
                P,
                StatusCode::CONFLICT,
                "ConflictJobError",
                &format!("Job {id} already exists."),
            );
        }
        let vars = vars_from_object(protocol.get("parameters"));
        sim.record_create(
            &mut inner,
            Job::new(
                P,
                id.clone(),
                name.clone(),
                user.clone(),
                &vars,
                protocol.clone(),
                now,
            ),
            format!("{P}/{name}"),
        );
    }
    if let Some(lost) = drop_answer {
        return lost();
    }
    let msg = format!("Update job {name} for user {user} successfully.");
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": 202, "message": msg})),
    )
        .into_response()
}

pub async fn get(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(frame): Path<String>,
) -> Response {
    if let Err(r) = admit(&sim, P, "get", &headers).await {
        return r;
    }
    let job = sim.job(P, &frame);
    match job {
        Some(job) => {
            axum::Json(json!({"name": job.name, "jobStatus": status(&job, &sim), "taskRoles": {}}))
                .into_response()
        }
        None => error(
            P,
            StatusCode::NOT_FOUND,
            "NoJobError",
            &format!("Job {frame} is not found."),
        ),
    }
}

/// `GET /api/v2/jobs?username=a,b&state=RUNNING,WAITING&keyword=`
pub async fn list(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let user = match admit(&sim, P, "list", &headers).await {
        Ok(claims) => claims["sub"].as_str().unwrap_or("").to_string(),
        Err(r) => return r,
    };
    if let Some(r) = rate_limited(
        &sim,
        format!("list/{user}"),
        sim.config.openpai_lists_per_min,
        60,
    ) {
        return r;
    }
    let users: Option<Vec<&str>> = q.get("username").map(|u| u.split(',').collect());
    let states: Option<Vec<&str>> = q.get("state").map(|u| u.split(',').collect());
    let jobs: Vec<Job> = sim
        .lock()
        .jobs
        .values()
        .filter(|j| j.platform == P)
        .cloned()
        .collect();
    let out: Vec<Value> = jobs
        .iter()
        .filter(|j| users.as_ref().is_none_or(|u| u.contains(&j.owner.as_str())))
        .filter(|j| q.get("keyword").is_none_or(|k| j.name.contains(k.as_str())))
        .map(|j| status(j, &sim))
        .filter(|s| {
            states
                .as_ref()
                .is_none_or(|st| st.contains(&s["state"].as_str().unwrap_or("")))
        })
        .collect();
    axum::Json(out).into_response()
}

pub async fn execution_type(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(frame): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(r) = admit(&sim, P, "cancel", &headers).await {
        return r;
    }
    let value = body.get("value").and_then(Value::as_str).unwrap_or("");
    if value != "STOP" && value != "START" {
        return error(
            P,
            StatusCode::BAD_REQUEST,
            "InvalidParametersError",
            "value should be STOP or START",
        );
    }
    let mut inner = sim.lock();
    let paused = inner.paused_at;
    let Some(job) = inner.jobs.get_mut(&frame).filter(|j| j.platform == P) else {
        drop(inner);
        return error(
            P,
            StatusCode::NOT_FOUND,
            "NoJobError",
            &format!("Job {frame} is not found."),
        );
    };
    if value == "STOP" {
        job.stop(now_ms(), paused)
    } else {
        job.resume(now_ms())
    }
    sim.persist(&inner);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": 202, "message": format!("Execute job {frame} successfully.")})),
    )
        .into_response()
}
