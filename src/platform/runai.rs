//! Run:ai control-plane trainings API (generation C in /work/shared/platforms.md §1.2).
//!
//! Create/get/suspend/resume/delete go through `/api/v1/workloads/trainings`; lookup by name and
//! batched status go through `/api/v1/workloads?filterBy=name==…,projectId==…`. The name is ours and
//! `useGivenNameAsPrefix` is never set, so a name identifies one attempt.

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::error::{Idempotency, Result};
use super::http::{Answer, missing, seg, send, str_at};
use super::sanitize::sanitize_message;
use super::{Observation, PlatformConfig, ts_from_str};
use crate::crd::{RemoteJobPhase, RunaiJob};

const TRAININGS: &str = "/api/v1/workloads/trainings";
const WORKLOADS: &str = "/api/v1/workloads";
/// Page size for list calls (the API allows 1..500).
const PAGE: usize = 500;

/// Maps Run:ai's `Phase` enum (plus `desiredPhase`) onto our phases. Every documented word is
/// listed; anything else is Unknown. Only Completed, Failed and a requested deletion are terminal.
pub fn map_phase(actual: &str, desired: Option<&str>) -> RemoteJobPhase {
    use RemoteJobPhase::*;
    let deleting = desired.is_some_and(|d| d.eq_ignore_ascii_case("Deleted"));
    match actual.to_ascii_lowercase().as_str() {
        "creating" | "pending" => Queued,
        "initializing" | "resuming" | "running" | "updating" | "degraded" => Running,
        "stopping" | "stopped" if deleting => Cancelled,
        "stopping" | "stopped" => Suspended,
        // Deleting is what our cancel (DELETE) produces; the workload then disappears.
        "deleting" => Cancelled,
        "terminating" if deleting => Cancelled,
        // Pods winding down: not an outcome yet.
        "terminating" => Running,
        "completed" => Succeeded,
        "failed" => Failed,
        _ => Unknown,
    }
}

#[derive(Clone)]
pub struct RunaiAdapter {
    pub(crate) config: PlatformConfig,
    http: reqwest::Client,
}

impl RunaiAdapter {
    pub fn new(config: PlatformConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// The create body: typed fields first, then `specOverrides` merged into `spec`.
    pub fn request_body(remote_name: &str, job: &RunaiJob) -> Value {
        let mut spec = Map::new();
        spec.insert("image".into(), json!(job.image));
        if let Some(c) = &job.command {
            spec.insert("command".into(), json!(c));
        }
        if let Some(a) = &job.args {
            spec.insert("args".into(), json!(a));
        }
        if !job.environment.is_empty() {
            let env: Vec<Value> = job
                .environment
                .iter()
                .map(|e| json!({"name": e.name, "value": e.value}))
                .collect();
            spec.insert("environmentVariables".into(), Value::Array(env));
        }
        let mut compute = Map::new();
        if let Some(g) = job.gpu_devices_request {
            compute.insert("gpuDevicesRequest".into(), json!(g));
        }
        if let Some(m) = &job.cpu_memory_request {
            compute.insert("cpuMemoryRequest".into(), json!(m));
        }
        if !compute.is_empty() {
            spec.insert("compute".into(), Value::Object(compute));
        }
        if !job.node_pools.is_empty() {
            spec.insert("nodePools".into(), json!(job.node_pools));
        }
        let mut spec = Value::Object(spec);
        if let Some(o) = &job.spec_overrides {
            merge(&mut spec, o);
        }
        json!({"name": remote_name, "projectId": job.project_id, "clusterId": job.cluster_id, "spec": spec})
    }

    pub async fn submit(
        &self,
        token: &SecretString,
        remote_name: &str,
        job: &RunaiJob,
    ) -> Result<Observation> {
        let req = self
            .http
            .post(self.config.url(TRAININGS))
            .json(&Self::request_body(remote_name, job));
        // 202 per the current OpenAPI, 200 in API 2.18: any 2xx is accepted.
        let answer = send(req, token, Idempotency::Create).await?;
        self.training(&answer, Idempotency::Create)
    }

    pub async fn get(&self, token: &SecretString, id: &str) -> Result<Observation> {
        let req = self
            .http
            .get(self.config.url(&format!("{TRAININGS}/{}", seg(id))));
        let answer = send(req, token, Idempotency::Idempotent).await?;
        self.training(&answer, Idempotency::Idempotent)
    }

    pub async fn lookup(
        &self,
        token: &SecretString,
        remote_name: &str,
        project_id: &str,
    ) -> Result<Option<Observation>> {
        let filter = format!("name=={remote_name},projectId=={project_id}");
        let req = self
            .http
            .get(self.config.url(WORKLOADS))
            .query(&[("filterBy", filter.as_str()), ("limit", "10")]);
        let v = send(req, token, Idempotency::Idempotent).await?.json()?;
        let found = workloads(&v)
            .into_iter()
            .find(|w| str_at(w, "/name").as_deref() == Some(remote_name));
        Ok(found.map(|w| self.workload(w)))
    }

    /// All workloads, or those of one project (`scope` = projectId), following `next`.
    pub async fn list(
        &self,
        token: &SecretString,
        scope: Option<&str>,
    ) -> Result<Vec<Observation>> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let mut query = vec![
                ("limit".to_string(), PAGE.to_string()),
                ("offset".to_string(), offset.to_string()),
            ];
            if let Some(p) = scope {
                query.push(("filterBy".into(), format!("projectId=={p}")));
            }
            let req = self.http.get(self.config.url(WORKLOADS)).query(&query);
            let v = send(req, token, Idempotency::Idempotent).await?.json()?;
            let page = workloads(&v);
            let n = page.len();
            out.extend(page.into_iter().map(|w| self.workload(w)));
            match v.get("next").and_then(Value::as_u64) {
                Some(next) if n > 0 && next as usize > offset => offset = next as usize,
                _ => return Ok(out),
            }
        }
    }

    pub async fn cancel(&self, token: &SecretString, id: &str) -> Result<()> {
        let req = self
            .http
            .delete(self.config.url(&format!("{TRAININGS}/{}", seg(id))));
        send(req, token, Idempotency::Idempotent).await.map(drop)
    }

    pub async fn suspend(&self, token: &SecretString, id: &str) -> Result<()> {
        let req = self
            .http
            .post(self.config.url(&format!("{TRAININGS}/{}/suspend", seg(id))));
        send(req, token, Idempotency::Idempotent).await.map(drop)
    }

    pub async fn resume(&self, token: &SecretString, id: &str) -> Result<()> {
        let req = self
            .http
            .post(self.config.url(&format!("{TRAININGS}/{}/resume", seg(id))));
        send(req, token, Idempotency::Idempotent).await.map(drop)
    }

    /// A `Training1` body (create and get answers).
    fn training(&self, answer: &Answer, idempotency: Idempotency) -> Result<Observation> {
        let v = answer.json()?;
        let id = str_at(&v, "/workloadId")
            .or_else(|| str_at(&v, "/id"))
            .ok_or_else(|| missing("workloadId", idempotency))?;
        let actual = str_at(&v, "/actualPhase")
            .or_else(|| str_at(&v, "/phase"))
            .unwrap_or_default();
        let desired = str_at(&v, "/desiredPhase");
        Ok(Observation {
            phase: map_phase(&actual, desired.as_deref()),
            remote_state: sanitize_message(&actual),
            url: Some(self.config.url(&format!("{TRAININGS}/{}", seg(&id)))),
            remote_id: id,
            remote_name: str_at(&v, "/name"),
            created_at: ts_from_str(str_at(&v, "/createdAt").as_deref()),
            started_at: None,
            completed_at: ts_from_str(str_at(&v, "/completedAt").as_deref()),
            message: str_at(&v, "/phaseMessage")
                .map(|m| sanitize_message(&m))
                .filter(|m| !m.is_empty()),
        })
    }

    /// A generic `Workload` (list answers).
    fn workload(&self, w: &Value) -> Observation {
        let id = str_at(w, "/id").unwrap_or_default();
        let phase_word = str_at(w, "/phase").unwrap_or_default();
        let desired = if w.get("deletedAt").is_some_and(|d| !d.is_null()) {
            Some("Deleted")
        } else {
            None
        };
        Observation {
            phase: map_phase(&phase_word, desired),
            remote_state: sanitize_message(&phase_word),
            url: Some(self.config.url(&format!("{TRAININGS}/{}", seg(&id)))),
            remote_id: id,
            remote_name: str_at(w, "/name"),
            created_at: ts_from_str(str_at(w, "/createdAt").as_deref()),
            started_at: None,
            completed_at: ts_from_str(str_at(w, "/completedAt").as_deref()),
            message: str_at(w, "/phaseMessage")
                .map(|m| sanitize_message(&m))
                .filter(|m| !m.is_empty()),
        }
    }
}

fn workloads(v: &Value) -> Vec<&Value> {
    v.get("workloads")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Deep merge: objects merge key by key, anything else in `patch` replaces what is in `base`.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, pv) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), pv);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RemoteJobPhase::*;

    #[test]
    fn every_phase_maps() {
        let cases: &[(&str, Option<&str>, RemoteJobPhase)] = &[
            ("Creating", Some("Running"), Queued),
            ("Pending", None, Queued),
            ("Initializing", None, Running),
            ("Resuming", None, Running),
            ("Running", Some("Running"), Running),
            ("Updating", None, Running),
            ("Degraded", None, Running),
            ("Stopping", Some("Stopped"), Suspended),
            ("Stopped", Some("Stopped"), Suspended),
            ("Stopped", Some("Deleted"), Cancelled),
            ("Deleting", Some("Deleted"), Cancelled),
            ("Terminating", None, Running),
            ("Terminating", Some("Deleted"), Cancelled),
            ("Completed", None, Succeeded),
            ("Failed", None, Failed),
            ("Unknown", None, Unknown),
            ("Exploded", None, Unknown),
            ("", None, Unknown),
        ];
        for (actual, desired, want) in cases {
            assert_eq!(map_phase(actual, *desired), *want, "{actual} {desired:?}");
        }
    }

    #[test]
    fn spec_overrides_merge_into_spec() {
        let job: RunaiJob = serde_json::from_value(json!({
            "projectId": "p", "clusterId": "c", "image": "img", "gpuDevicesRequest": 1,
            "environment": [{"name": "A", "value": "1"}],
            "specOverrides": {"compute": {"cpuCoreRequest": 2}, "image": "other", "labels": [{"name": "x"}]}
        }))
        .unwrap();
        let body = RunaiAdapter::request_body("n", &job);
        assert_eq!(body["name"], "n");
        assert_eq!(body["spec"]["image"], "other");
        assert_eq!(
            body["spec"]["compute"],
            json!({"gpuDevicesRequest": 1, "cpuCoreRequest": 2})
        );
        assert_eq!(
            body["spec"]["environmentVariables"],
            json!([{"name": "A", "value": "1"}])
        );
        assert!(body.get("useGivenNameAsPrefix").is_none());
    }
}
