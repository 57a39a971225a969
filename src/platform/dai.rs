//! Eggplant DAI: the execution service (`/execution_service/api/v1/executions`, default) and the
//! legacy run API (`/api/run*`, form-encoded), chosen by `PlatformApi::DaiExecutions` /
//! `DaiLegacyRun` (/work/shared/platforms.md §3).
//!
//! DAI has no client-chosen name, so a start cannot be made idempotent:
//! - a start is never retried by this module; when its outcome is unknown (the connection dropped
//!   after sending, a timeout, or a 2xx without an id) [`DaiAdapter::submit`] returns
//!   `OutcomeUnknown`, and the caller must call [`DaiAdapter::reconcile_unknown_start`] instead
//!   of starting again;
//! - `reconcile_unknown_start` lists the runs of the same model (legacy: `POST /api/run/progress`
//!   with `modelName` and `limit`; execution service: `GET /execution_service/api/v1/executions`
//!   with `model_id` and `limit`, an endpoint the simulator offers but DAI's public docs do not show)
//!   and keeps those whose start time lies within `[sent_at - CLOCK_SKEW, sent_at + window]`.
//!
//! **Guarantee**: exactly one match → that run is ours with high likelihood (another client could
//! have started the same model in the same window; nothing on the wire tells the two apart).
//! No match → no run of that model started in the window *as far as the list shows*; starting
//! again is then safe unless the platform lists runs late. Several matches → ambiguous; the caller
//! must not start again and should surface the ambiguity (e.g. adopt none and report).

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::error::{Idempotency, PlatformError, Result};
use super::http::{missing, seg, send, str_at};
use super::runai::merge;
use super::sanitize::sanitize_message;
use super::{Observation, PlatformConfig, ts_from_millis, ts_from_str};
use crate::crd::{DaiJob, PlatformApi, RemoteJobPhase};

const EXECUTIONS: &str = "/execution_service/api/v1/executions";
/// Tolerated clock difference between us and DAI when matching start times.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5);
/// How many recent runs reconciliation looks at.
const RECONCILE_LIMIT: usize = 50;

/// Maps legacy `status` words (Running, Passed, Failed, Incomplete) and the execution service's
/// (guessed) words. Incomplete means the run did not finish: a failure, not a cancellation we
/// could tell apart.
pub fn map_status(status: &str) -> RemoteJobPhase {
    use RemoteJobPhase::*;
    match status.to_ascii_lowercase().as_str() {
        "queued" | "pending" | "waiting" | "scheduled" => Queued,
        "running" | "starting" | "executing" => Running,
        "passed" | "succeeded" | "success" | "completed" => Succeeded,
        "failed" | "error" | "errored" | "incomplete" => Failed,
        "aborted" | "cancelled" | "canceled" => Cancelled,
        _ => Unknown,
    }
}

/// What reconciliation of an unknown start found.
#[derive(Clone, Debug, PartialEq)]
pub enum StartReconciliation {
    /// Exactly one run of this model started in the window: adopt it.
    Found(Observation),
    /// No run started in the window; starting again is safe (see the module doc).
    NotStarted,
    /// Several runs match; do not start again, do not guess.
    Ambiguous(Vec<Observation>),
}

#[derive(Clone)]
pub struct DaiAdapter {
    pub(crate) config: PlatformConfig,
    http: reqwest::Client,
}

impl DaiAdapter {
    pub fn new(config: PlatformConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    fn legacy(&self) -> bool {
        self.config.effective_api() == Some(PlatformApi::DaiLegacyRun)
    }

    /// The execution-service start body; `extra` is merged in last.
    pub fn execution_body(job: &DaiJob) -> Value {
        let mut b = Map::new();
        b.insert("execution_type".into(), json!("executing"));
        let mut put = |k: &str, v: Value| {
            b.insert(k.into(), v);
        };
        if let Some(v) = &job.model_id {
            put("model_id", json!(v));
        }
        if let Some(v) = job.test_case_id {
            put("test_case_id", json!(v));
        }
        if let Some(v) = &job.script {
            put("script", json!(v));
        }
        if let Some(v) = job.rerun_id {
            put("rerun_id", json!(v));
        }
        if let Some(a) = &job.agent_id {
            put(
                "agent",
                json!({"agent_id": a, "is_hosted_agent": job.is_hosted_agent.unwrap_or(false)}),
            );
        }
        if let Some(a) = &job.asset_version_id {
            put(
                "asset",
                json!({"asset_version_id": a, "asset_path": job.asset_path}),
            );
        }
        if let Some(s) = &job.sut_id {
            put("sut", json!({"sut_id": s}));
        } else if !job.sut_criteria.is_empty() {
            put("sut", json!({"criteria": job.sut_criteria}));
        }
        if let Some(v) = job.step_pause_time {
            put("step_pause_time", json!(v));
        }
        let mut body = Value::Object(b);
        if let Some(extra) = &job.extra {
            merge(&mut body, extra);
        }
        body
    }

    /// The legacy `/api/run` form; `extra` entries become form fields.
    pub fn legacy_form(job: &DaiJob) -> Vec<(String, String)> {
        let mut f = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                f.push((k.to_string(), v));
            }
        };
        put("modelName", job.model_name.clone());
        put("group", job.group.clone());
        put("agentName", job.agent_name.clone());
        put("iterations", job.iterations.map(|i| i.to_string()));
        if let Some(Value::Object(extra)) = &job.extra {
            for (k, v) in extra {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                f.push((k.clone(), text));
            }
        }
        f
    }

    /// Starts a run. Never retried here; see the module doc for what to do on `OutcomeUnknown`.
    pub async fn submit(&self, token: &SecretString, job: &DaiJob) -> Result<Observation> {
        let req = if self.legacy() {
            self.http
                .post(self.config.url("/api/run"))
                .form(&Self::legacy_form(job))
        } else {
            self.http
                .post(self.config.url(EXECUTIONS))
                .json(&Self::execution_body(job))
        };
        let v = send(req, token, Idempotency::Create).await?.json()?;
        let id = start_id(&v).ok_or_else(|| missing("an execution id", Idempotency::Create))?;
        let mut o = self.observation(&v);
        o.remote_id = id.clone();
        o.url = Some(self.run_url(&id));
        if o.remote_state.is_empty() {
            o.remote_state = "Running".into();
            o.phase = RemoteJobPhase::Running;
        }
        Ok(o)
    }

    fn run_url(&self, id: &str) -> String {
        if self.legacy() {
            self.config.url("/api/run/progress")
        } else {
            self.config.url(&format!("{EXECUTIONS}/{}", seg(id)))
        }
    }

    pub async fn get(&self, token: &SecretString, id: &str) -> Result<Observation> {
        let v = self.raw_get(token, id).await?;
        let mut o = self.observation(&v);
        if o.remote_id.is_empty() {
            o.remote_id = id.to_string();
        }
        Ok(o)
    }

    async fn raw_get(&self, token: &SecretString, id: &str) -> Result<Value> {
        let req = if self.legacy() {
            self.http
                .post(self.config.url("/api/run/progress"))
                .form(&[("id", id)])
        } else {
            self.http
                .get(self.config.url(&format!("{EXECUTIONS}/{}", seg(id))))
        };
        let v = send(req, token, Idempotency::Idempotent).await?.json()?;
        // Progress may answer with a one-element list.
        Ok(match v {
            Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
            Value::Array(_) => {
                return Err(PlatformError::NotFound {
                    message: "run not found".into(),
                });
            }
            other => other,
        })
    }

    /// Aborts a run. Legacy abort takes the run's process id, read from its progress first.
    pub async fn cancel(&self, token: &SecretString, id: &str) -> Result<()> {
        if !self.legacy() {
            let req = self
                .http
                .delete(self.config.url(&format!("{EXECUTIONS}/{}", seg(id))));
            return send(req, token, Idempotency::Idempotent).await.map(drop);
        }
        let v = self.raw_get(token, id).await?;
        let pid = str_at(&v, "/processid")
            .ok_or_else(|| missing("processid", Idempotency::Idempotent))?;
        let req = self
            .http
            .post(self.config.url("/api/run/abort"))
            .form(&[("id", pid.as_str())]);
        send(req, token, Idempotency::Idempotent).await.map(drop)
    }

    /// After `submit` returned `OutcomeUnknown` for a start sent at `sent_at`: finds the run that
    /// start created, if any, among runs started in `[sent_at - CLOCK_SKEW, sent_at + window]`.
    pub async fn reconcile_unknown_start(
        &self,
        token: &SecretString,
        job: &DaiJob,
        sent_at: Timestamp,
        window: Duration,
    ) -> Result<StartReconciliation> {
        let limit = RECONCILE_LIMIT.to_string();
        let req = if self.legacy() {
            let model = job.model_name.clone().unwrap_or_default();
            self.http
                .post(self.config.url("/api/run/progress"))
                .form(&[("modelName", model.as_str()), ("limit", limit.as_str())])
        } else {
            let mut q = vec![("limit", limit.clone())];
            if let Some(m) = &job.model_id {
                q.push(("model_id", m.clone()));
            }
            self.http.get(self.config.url(EXECUTIONS)).query(&q)
        };
        let v = send(req, token, Idempotency::Idempotent).await?.json()?;
        let runs: Vec<Observation> = match &v {
            Value::Array(a) => a.iter().map(|r| self.observation(r)).collect(),
            _ => v
                .get("items")
                .or_else(|| v.get("data"))
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|r| self.observation(r)).collect())
                .unwrap_or_default(),
        };
        Ok(match_start_window(runs, sent_at, window))
    }

    fn observation(&self, v: &Value) -> Observation {
        let status = str_at(v, "/status").unwrap_or_default();
        let id = str_at(v, "/id")
            .or_else(|| str_at(v, "/execution_id"))
            .unwrap_or_default();
        let time = |keys: &[&str]| {
            keys.iter().find_map(|k| match v.get(*k) {
                Some(Value::String(s)) => ts_from_str(Some(s)),
                Some(Value::Number(n)) => ts_from_millis(n.as_i64()),
                _ => None,
            })
        };
        let started = time(&["starttime", "start_time", "started_at"]);
        Observation {
            phase: map_status(&status),
            remote_state: sanitize_message(&status),
            url: (!id.is_empty()).then(|| self.run_url(&id)),
            remote_id: id,
            remote_name: None,
            created_at: started,
            started_at: started,
            completed_at: time(&["endtime", "end_time", "ended_at"]),
            message: str_at(v, "/message")
                .map(|m| sanitize_message(&m))
                .filter(|m| !m.is_empty()),
        }
    }
}

/// The run id in a start answer. The field name is not documented: accept `id`, `execution_id`
/// (and the legacy `runid`), as a string or a number.
pub fn start_id(v: &Value) -> Option<String> {
    ["/id", "/execution_id", "/runid"]
        .iter()
        .find_map(|p| str_at(v, p).filter(|id| !id.is_empty()))
}

/// The pure half of reconciliation: which runs started inside the window.
pub fn match_start_window(
    runs: Vec<Observation>,
    sent_at: Timestamp,
    window: Duration,
) -> StartReconciliation {
    let skew = SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default();
    let window = SignedDuration::try_from(window).unwrap_or_default();
    let (Ok(lo), Ok(hi)) = (sent_at.checked_sub(skew), sent_at.checked_add(window)) else {
        return StartReconciliation::Ambiguous(runs);
    };
    let mut hits: Vec<Observation> = runs
        .into_iter()
        .filter(|r| r.started_at.is_some_and(|t| t >= lo && t <= hi))
        .collect();
    match hits.len() {
        0 => StartReconciliation::NotStarted,
        1 => StartReconciliation::Found(hits.remove(0)),
        _ => StartReconciliation::Ambiguous(hits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RemoteJobPhase::*;

    #[test]
    fn statuses() {
        let cases = [
            ("Running", Running),
            ("Passed", Succeeded),
            ("Failed", Failed),
            ("Incomplete", Failed),
            ("Aborted", Cancelled),
            ("Queued", Queued),
            ("Weird", Unknown),
            ("", Unknown),
        ];
        for (w, want) in cases {
            assert_eq!(map_status(w), want, "{w}");
        }
    }

    #[test]
    fn start_ids() {
        let cases = [
            (json!({"id": "a", "status": "Running"}), Some("a")),
            (json!({"execution_id": "b"}), Some("b")),
            (json!({"execution_id": 42}), Some("42")),
            (json!({"runid": "c"}), Some("c")),
            (json!({"id": ""}), None),
            (json!({"id": "", "execution_id": "d"}), Some("d")),
            (json!({"status": "Running"}), None),
            (json!(null), None),
        ];
        for (v, want) in cases {
            assert_eq!(start_id(&v).as_deref(), want, "{v}");
        }
    }

    #[test]
    fn start_window() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let run = |id: &str, secs: i64| Observation {
            remote_id: id.into(),
            started_at: Some(t0.checked_add(SignedDuration::from_secs(secs)).unwrap()),
            ..Default::default()
        };
        let w = Duration::from_secs(30);
        assert_eq!(
            match_start_window(vec![run("old", -60)], t0, w),
            StartReconciliation::NotStarted
        );
        assert_eq!(
            match_start_window(vec![run("old", -60), run("a", 2)], t0, w),
            StartReconciliation::Found(run("a", 2))
        );
        assert_eq!(
            match_start_window(vec![run("skew", -3)], t0, w),
            StartReconciliation::Found(run("skew", -3))
        );
        assert!(
            matches!(match_start_window(vec![run("a", 1), run("b", 5)], t0, w), StartReconciliation::Ambiguous(v) if v.len() == 2)
        );
        assert_eq!(
            match_start_window(vec![], t0, w),
            StartReconciliation::NotStarted
        );
    }

    #[test]
    fn bodies() {
        let job: DaiJob = serde_json::from_value(
            json!({"modelId": "m", "agentId": "a", "extra": {"SIM_OUTCOME": "fail"}}),
        )
        .unwrap();
        let b = DaiAdapter::execution_body(&job);
        assert_eq!(b["execution_type"], "executing");
        assert_eq!(
            b["agent"],
            json!({"agent_id": "a", "is_hosted_agent": false})
        );
        assert_eq!(b["SIM_OUTCOME"], "fail");
        let legacy: DaiJob = serde_json::from_value(
            json!({"modelName": "m", "group": "g", "extra": {"SIM_RUN_SECONDS": 2}}),
        )
        .unwrap();
        let f = DaiAdapter::legacy_form(&legacy);
        assert!(
            f.contains(&("modelName".into(), "m".into()))
                && f.contains(&("SIM_RUN_SECONDS".into(), "2".into()))
        );
    }
}
