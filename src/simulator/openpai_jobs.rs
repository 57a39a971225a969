//! OpenPAI job documents of the simulator: state words, job summaries and details, and the job
//! protocol v2 validation (the parts of the rest-server's ajv schema and cross checks we rely on).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::common::sim_to_rfc3339;
use super::lifecycle::{JobKind, SimJob, Stage};
use super::state::{Inner, wall_now};

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

pub fn summary(inner: &Inner, job: &SimJob, step: f64) -> Value {
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

pub fn detail(inner: &Inner, job: &SimJob, step: f64) -> Value {
    let s = summary(inner, job, step);
    json!({"name": job.name, "debugId": job.id, "tags": [], "jobPriority": "default", "jobStatus": s, "taskRoles": {}})
}

pub fn valid_name(n: &str, extra: &[char]) -> bool {
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
