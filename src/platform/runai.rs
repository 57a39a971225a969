//! Run:ai control-plane trainings API (platforms.md §1.2, §1.6): create with our name (never
//! `useGivenNameAsPrefix`), accept 200 and 202, look up by `filterBy=name==…,projectId==…`.

use secrecy::SecretString;
use serde_json::{Value, json};

use super::http::send;
use super::{PlatformConfig, RemoteError, RemoteResult, RemoteView};
use crate::crd::{RemoteJobPhase as Phase, RemoteJobSpec, RunaiJob};
use crate::transport::sanitize;

#[derive(Clone, Debug)]
pub struct Runai {
    pub http: reqwest::Client,
    pub config: PlatformConfig,
}

/// Run:ai phase (complete enum of the OpenAPI) → our phase. Unknown words → Unknown.
pub fn map_phase(word: &str) -> Phase {
    match word {
        "Creating" | "Pending" | "Initializing" | "Resuming" => Phase::Queued,
        "Running" | "Degraded" | "Updating" => Phase::Running,
        "Completed" => Phase::Succeeded,
        "Failed" => Phase::Failed,
        "Stopped" | "Stopping" => Phase::Suspended,
        "Deleting" | "Terminating" => Phase::Cancelled,
        _ => Phase::Unknown,
    }
}

/// The create request body for a RemoteJob's Run:ai section.
pub fn create_body(job: &RunaiJob, name: &str) -> Value {
    let mut spec = json!({"image": job.image});
    if let Some(c) = &job.command {
        spec["command"] = json!(c);
    }
    if let Some(a) = &job.args {
        spec["args"] = json!(a);
    }
    if !job.environment.is_empty() {
        spec["environmentVariables"] = json!(
            job.environment
                .iter()
                .map(|e| json!({"name": e.name, "value": e.value}))
                .collect::<Vec<_>>()
        );
    }
    let mut compute = serde_json::Map::new();
    if let Some(g) = job.gpu_devices_request {
        compute.insert("gpuDevicesRequest".into(), json!(g));
    }
    if let Some(m) = &job.cpu_memory_request {
        compute.insert("cpuMemoryRequest".into(), json!(m));
    }
    if !compute.is_empty() {
        spec["compute"] = Value::Object(compute);
    }
    if !job.node_pools.is_empty() {
        spec["nodePools"] = json!(job.node_pools);
    }
    if let Some(Value::Object(extra)) = &job.spec_overrides {
        for (k, v) in extra {
            spec[k] = v.clone();
        }
    }
    json!({"name": name, "projectId": job.project_id, "clusterId": job.cluster_id, "useGivenNameAsPrefix": false, "spec": spec})
}

impl Runai {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// A training or a generic workload object → our view.
    fn view(&self, v: &Value) -> RemoteResult<RemoteView> {
        let id = v
            .get("workloadId")
            .or_else(|| v.get("id"))
            .and_then(Value::as_str);
        let word = v
            .get("actualPhase")
            .or_else(|| v.get("phase"))
            .and_then(Value::as_str)
            .unwrap_or("Unknown");
        let Some(id) = id else {
            return Err(RemoteError::Retriable {
                message: "Run:ai answered without a workload id".into(),
                retry_after: None,
            });
        };
        let message = v
            .get("phaseMessage")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(sanitize);
        Ok(RemoteView {
            id: id.to_string(),
            phase: map_phase(word),
            state: word.to_string(),
            message,
            url: Some(self.url(&format!("/api/v1/workloads/{id}"))),
            started_at: super::time_of(v.get("createdAt")),
            finished_at: super::time_of(v.get("completedAt")),
        })
    }

    fn body(spec: &RemoteJobSpec) -> RemoteResult<&RunaiJob> {
        spec.runai.as_ref().ok_or_else(|| RemoteError::Permanent {
            message: "spec.runai is not set".into(),
        })
    }

    pub async fn create(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
        name: &str,
    ) -> RemoteResult<RemoteView> {
        let body = create_body(Self::body(spec)?, name);
        let ans = send(
            self.http
                .post(self.url("/api/v1/workloads/trainings"))
                .json(&body),
            t,
            true,
        )
        .await?;
        self.view(&ans.body)
    }

    pub async fn get(&self, t: &SecretString, id: &str) -> RemoteResult<RemoteView> {
        let ans = send(
            self.http
                .get(self.url(&format!("/api/v1/workloads/trainings/{id}"))),
            t,
            false,
        )
        .await?;
        self.view(&ans.body)
    }

    pub async fn lookup(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
        name: &str,
    ) -> RemoteResult<Option<RemoteView>> {
        let project = &Self::body(spec)?.project_id;
        let filter = format!("name=={name},projectId=={project}");
        let req = self
            .http
            .get(self.url("/api/v1/workloads"))
            .query(&[("filterBy", filter.as_str()), ("limit", "2")]);
        let ans = send(req, t, false).await?;
        let found = ans
            .body
            .get("workloads")
            .and_then(Value::as_array)
            .and_then(|w| {
                w.iter()
                    .find(|w| w.get("name").and_then(Value::as_str) == Some(name))
                    .cloned()
            });
        found.map(|w| self.view(&w)).transpose()
    }

    /// Every workload of the job's project (pages of 500, at most 20 pages): the batched status call.
    pub async fn list(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
    ) -> RemoteResult<Vec<RemoteView>> {
        let filter = format!("projectId=={}", Self::body(spec)?.project_id);
        let mut out = Vec::new();
        let mut offset = 0u64;
        for _ in 0..20 {
            let req = self.http.get(self.url("/api/v1/workloads")).query(&[
                ("filterBy", filter.as_str()),
                ("limit", "500"),
                ("offset", offset.to_string().as_str()),
            ]);
            let ans = send(req, t, false).await?;
            for w in ans
                .body
                .get("workloads")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push(self.view(w)?);
            }
            match ans.body.get("next").and_then(Value::as_u64) {
                Some(next) if next > offset => offset = next,
                _ => break,
            }
        }
        Ok(out)
    }

    pub async fn delete(&self, t: &SecretString, id: &str) -> RemoteResult<()> {
        send(
            self.http
                .delete(self.url(&format!("/api/v1/workloads/trainings/{id}"))),
            t,
            false,
        )
        .await
        .map(|_| ())
    }

    pub async fn action(&self, t: &SecretString, id: &str, action: &str) -> RemoteResult<()> {
        send(
            self.http
                .post(self.url(&format!("/api/v1/workloads/trainings/{id}/{action}"))),
            t,
            false,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_phase_maps() {
        let table = [
            ("Creating", Phase::Queued),
            ("Initializing", Phase::Queued),
            ("Resuming", Phase::Queued),
            ("Pending", Phase::Queued),
            ("Deleting", Phase::Cancelled),
            ("Running", Phase::Running),
            ("Updating", Phase::Running),
            ("Stopped", Phase::Suspended),
            ("Stopping", Phase::Suspended),
            ("Degraded", Phase::Running),
            ("Failed", Phase::Failed),
            ("Completed", Phase::Succeeded),
            ("Terminating", Phase::Cancelled),
            ("Unknown", Phase::Unknown),
            ("SomethingNew", Phase::Unknown),
        ];
        for (word, want) in table {
            assert_eq!(map_phase(word), want, "{word}");
        }
    }

    #[test]
    fn create_body_carries_our_name_and_merges_overrides() {
        let job: RunaiJob = serde_json::from_value(json!({
            "projectId": "5", "clusterId": "c", "image": "img", "gpuDevicesRequest": 1,
            "environment": [{"name": "A", "value": "1"}], "specOverrides": {"backoffLimit": 2}
        }))
        .unwrap();
        let b = create_body(&job, "ns-job-1");
        assert_eq!(b["name"], "ns-job-1");
        assert_eq!(b["useGivenNameAsPrefix"], false);
        assert_eq!(b["spec"]["compute"]["gpuDevicesRequest"], 1);
        assert_eq!(b["spec"]["environmentVariables"][0]["name"], "A");
        assert_eq!(b["spec"]["backoffLimit"], 2);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_word_maps_to_a_terminal_phase_by_accident(word in "\\PC{0,20}") {
            let p = map_phase(&word);
            if p.is_terminal() {
                prop_assert!(["Completed", "Failed", "Deleting", "Terminating"].contains(&word.as_str()));
            }
        }
    }
}
