//! Run:ai control-plane trainings API (platforms.md §1.2, §1.6): create with our name (never
//! `useGivenNameAsPrefix`), accept 200 and 202, look up by `filterBy=name==…,projectId==…`.

use futures::FutureExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::http::{Endpoint, send};
use super::model::{
    self, Bearer, Call, Capabilities, Job, Platform, RemoteError, RemoteResult, RemoteView, Search,
};
use super::runai_deleted;
use crate::jobspec::{RemoteJobPhase as Phase, RunaiJob};
use crate::transport::sanitize;

#[derive(Clone, Debug)]
pub struct Runai(pub Endpoint);

/// The complete `Phase` enum of the OpenAPI (platforms.md §1.2).
pub const KNOWN_PHASES: &[&str] = &[
    "Creating",
    "Initializing",
    "Resuming",
    "Pending",
    "Deleting",
    "Running",
    "Updating",
    "Stopped",
    "Stopping",
    "Degraded",
    "Failed",
    "Completed",
    "Terminating",
    "Unknown",
];

/// Run:ai phase (complete enum of the OpenAPI) → our phase. Unknown words → Unknown.
pub fn map_phase(word: &str) -> Phase {
    match word {
        "Creating" | "Pending" | "Initializing" | "Resuming" => Phase::Queued,
        "Running" | "Degraded" | "Updating" => Phase::Running,
        "Completed" => Phase::Succeeded,
        "Failed" => Phase::Failed,
        "Stopped" | "Stopping" => Phase::Suspended,
        // Going away, not gone: not terminal (a finished workload being deleted keeps its phase).
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
    /// A training or a generic workload object → our view.
    pub(super) fn view(&self, v: &Value) -> RemoteResult<RemoteView> {
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
        let message = match (model::unrecognized(word, KNOWN_PHASES), message) {
            (Some(u), Some(m)) => Some(format!("{u}: {m}")),
            (u, m) => u.or(m),
        };
        Ok(RemoteView {
            id: id.to_string(),
            phase: map_phase(word),
            state: word.to_string(),
            message,
            url: Some(self.0.url(&format!("/api/v1/workloads/{id}"))),
            started_at: model::time_of(v.get("createdAt")),
            finished_at: model::time_of(v.get("completedAt")),
        })
    }

    fn body(spec: Job<'_>) -> RemoteResult<&RunaiJob> {
        model::body(spec.runai, "runai")
    }

    /// Every workload `filter` selects, live or (`deleted`) only deleted ones: pages of 500, at most
    /// 20 pages.
    async fn workloads(&self, t: &Bearer, filter: &str, deleted: bool) -> RemoteResult<Vec<Value>> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for _ in 0..20 {
            let mut query = vec![
                ("filterBy", filter.to_string()),
                ("limit", "500".to_string()),
                ("offset", offset.to_string()),
            ];
            if deleted {
                query.push(("deleted", "true".to_string()));
            }
            let req = self.0.get("/api/v1/workloads").query(&query);
            let ans = send(req, t, false).await?;
            if let Some(page) = ans.body.get("workloads").and_then(Value::as_array) {
                out.extend(page.iter().cloned());
            }
            match ans.body.get("next").and_then(Value::as_u64) {
                Some(next) if next > offset => offset = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// Workload `id` answered 404: look it up among the project's deleted workloads (the name is not
    /// known here, so by project and id). Not there either: gone, as the 404 said.
    async fn deleted(&self, t: &Bearer, spec: Job<'_>, id: &str) -> RemoteResult<RemoteView> {
        // Without the job's Run:ai section there is no project to look in: the 404 stands.
        let Ok(job) = Self::body(spec) else {
            return Err(RemoteError::NotFound);
        };
        let filter = format!("projectId=={}", job.project_id);
        let listed = self
            .workloads(t, &filter, true)
            .await
            .map_err(runai_deleted::lookup_failed)?;
        match listed.iter().find(|w| runai_deleted::is_workload(w, id)) {
            Some(w) => Ok(runai_deleted::after_deletion(
                self.view(w)?,
                w.get("deletedAt"),
            )),
            None => Err(RemoteError::NotFound),
        }
    }

    /// A call on training `id` (`then`: a sub-path such as `/suspend`) whose answer we do not need.
    async fn on_training(
        &self,
        t: &Bearer,
        method: Method,
        id: &str,
        then: &str,
    ) -> RemoteResult<()> {
        let path = format!("/api/v1/workloads/trainings/{id}{then}");
        send(self.0.request(method, &path), t, false)
            .await
            .map(|_| ())
    }
}

impl Platform for Runai {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NAMED_SUSPENDABLE
    }

    fn create<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, name: &'a str) -> Call<'a, RemoteView> {
        async move {
            let body = create_body(Self::body(spec)?, name);
            let req = self.0.post("/api/v1/workloads/trainings").json(&body);
            match send(req, t, true).await {
                Ok(ans) => self.view(&ans.body),
                // The trainings create documents 400 but not 409 for a taken name: on any refusal
                // (our intent is open) look the name up first; ours is adopted, not rejected.
                Err(e @ (RemoteError::Permanent { .. } | RemoteError::Conflict { .. })) => {
                    match self.lookup(t, spec, name).await {
                        Ok(Some(found)) => Ok(found),
                        Ok(None) => Err(e),
                        Err(lookup) => Err(lookup),
                    }
                }
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn get<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, id: &'a str) -> Call<'a, RemoteView> {
        async move {
            let req = self.0.get(&format!("/api/v1/workloads/trainings/{id}"));
            match send(req, t, false).await {
                Ok(ans) => self.view(&ans.body),
                // Deleted on the platform: it may have finished first (runai_deleted).
                Err(RemoteError::NotFound) => self.deleted(t, spec, id).await,
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn lookup<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, name: &'a str) -> Search<'a> {
        async move {
            let project = &Self::body(spec)?.project_id;
            let filter = format!("name=={name},projectId=={project}");
            let req = self
                .0
                .get("/api/v1/workloads")
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
        .boxed()
    }

    fn list_scope(&self, spec: Job<'_>) -> Option<String> {
        spec.runai
            .as_ref()
            .map(|r| format!("project/{}", r.project_id))
    }

    /// Every workload of the job's project.
    fn list<'a>(&'a self, t: &'a Bearer, spec: Job<'a>) -> Call<'a, Vec<RemoteView>> {
        async move {
            let filter = format!("projectId=={}", Self::body(spec)?.project_id);
            let listed = self.workloads(t, &filter, false).await?;
            listed.iter().map(|w| self.view(w)).collect()
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, t: &'a Bearer, _spec: Job<'a>, id: &'a str) -> Call<'a, ()> {
        self.on_training(t, Method::DELETE, id, "").boxed()
    }

    fn suspend<'a>(&'a self, t: &'a Bearer, _spec: Job<'a>, id: &'a str) -> Call<'a, ()> {
        self.on_training(t, Method::POST, id, "/suspend").boxed()
    }

    fn resume<'a>(&'a self, t: &'a Bearer, _spec: Job<'a>, id: &'a str) -> Call<'a, ()> {
        self.on_training(t, Method::POST, id, "/resume").boxed()
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
            ("Deleting", Phase::Unknown),
            ("Running", Phase::Running),
            ("Updating", Phase::Running),
            ("Stopped", Phase::Suspended),
            ("Stopping", Phase::Suspended),
            ("Degraded", Phase::Running),
            ("Failed", Phase::Failed),
            ("Completed", Phase::Succeeded),
            ("Terminating", Phase::Unknown),
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
                prop_assert!(["Completed", "Failed"].contains(&word.as_str()));
            }
        }
    }
}

/// Against responses shaped as Run:ai publishes them (tests/fixtures/runai, README names the sources).
#[cfg(test)]
#[path = "runai_recorded.rs"]
mod recorded;
