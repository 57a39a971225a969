//! OpenPAI v2 jobs API (platforms.md §2.2–2.8): the job protocol is sent as text (`text/yaml`; JSON
//! text is YAML), the id is `<user>~<name>`, a 404 on GET means "not submitted", stop via executionType.
//! OpenPAI has no delete, so names are never reused: each attempt has its own name.

use std::sync::Arc;

use futures::FutureExt;
use serde_json::{Value, json};

use super::http::{Endpoint, send};
use super::model::{
    self, Bearer, Call, Capabilities, Job, Platform, RemoteError, RemoteResult, RemoteView, Search,
};
use crate::jobspec::{OpenpaiJob, RemoteJobPhase as Phase};

#[derive(Clone, Debug)]
pub struct Openpai {
    pub at: Endpoint,
    /// The pre-1.1 v1 API (`/api/v1/user/:u/jobs`) instead of v2.
    pub v1: bool,
    /// The user jobs are submitted as (ids are `user~name`); it comes with the token.
    pub user: Option<String>,
}

/// The documented `jobStatus.state` words (platforms.md §2.4; v1 has no STOPPING).
pub const KNOWN_STATES: &[&str] = &[
    "WAITING",
    "RUNNING",
    "STOPPING",
    "SUCCEEDED",
    "FAILED",
    "STOPPED",
    "UNKNOWN",
];

/// `jobStatus.state` → our phase (STOPPED is what a stop leads to: cancelled).
pub fn map_state(word: &str) -> Phase {
    match word {
        "WAITING" => Phase::Queued,
        "RUNNING" | "STOPPING" => Phase::Running,
        "SUCCEEDED" => Phase::Succeeded,
        "FAILED" => Phase::Failed,
        "STOPPED" => Phase::Cancelled,
        _ => Phase::Unknown,
    }
}

/// The job protocol v2 for a RemoteJob's OpenPAI section, under our name.
pub fn protocol(job: &OpenpaiJob, name: &str) -> Value {
    if let Some(Value::Object(p)) = &job.protocol {
        let mut p = p.clone();
        p.insert("name".into(), json!(name));
        return Value::Object(p);
    }
    let mut p = json!({
        "protocolVersion": 2,
        "name": name,
        "type": "job",
        "prerequisites": [{"name": "image", "type": "dockerimage", "uri": job.image}],
        "taskRoles": {
            job.task_role.clone(): {
                "instances": job.instances,
                "dockerImage": "image",
                "resourcePerInstance": {"cpu": job.cpu, "memoryMB": job.memory_mb, "gpu": job.gpu},
                "commands": job.commands,
            }
        },
        "defaults": {"virtualCluster": job.virtual_cluster},
    });
    if let Some(r) = job.job_retry_count {
        p["jobRetryCount"] = json!(r);
    }
    if !job.parameters.is_empty() {
        p["parameters"] = json!(job.parameters);
    }
    p
}

/// The v1 job config (pre-1.1 clusters) for a RemoteJob's OpenPAI section, under our name. A raw
/// `protocol` object is sent as the config with our `jobName`.
pub fn config_v1(job: &OpenpaiJob, name: &str) -> Value {
    if let Some(Value::Object(p)) = &job.protocol {
        let mut p = p.clone();
        p.insert("jobName".into(), json!(name));
        return Value::Object(p);
    }
    let mut c = json!({
        "jobName": name,
        "image": job.image,
        "virtualCluster": job.virtual_cluster,
        "taskRoles": [{
            "name": job.task_role,
            "taskNumber": job.instances,
            "cpuNumber": job.cpu,
            "memoryMB": job.memory_mb,
            "gpuNumber": job.gpu,
            "command": job.commands.join(" && "),
        }],
    });
    if let Some(r) = job.job_retry_count {
        c["retryCount"] = json!(r);
    }
    if !job.parameters.is_empty() {
        c["jobEnvs"] = json!(job.parameters);
    }
    c
}

/// Pure: why a job ended, from its exit fields (rest-server `jobStatus`, job-exit-spec): the exit code
/// and the spec's phrase, then the most specific text: the trigger message, the container's or
/// runtime's exit message, else the first lines of `appExitDiagnostics`. Short and sanitized.
pub fn exit_message(status: &Value) -> Option<String> {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let code = status.get("appExitCode").and_then(Value::as_i64);
    let spec = status.get("appExitSpec");
    let phrase = text(spec.and_then(|s| s.get("phrase")));
    let messages = status.get("appExitMessages");
    let detail = text(status.get("appExitTriggerMessage"))
        .or_else(|| text(messages.and_then(|m| m.get("container"))))
        .or_else(|| text(messages.and_then(|m| m.get("runtime"))))
        .or_else(|| text(messages.and_then(|m| m.get("launcher"))))
        .or_else(|| {
            let d = text(status.get("appExitDiagnostics"))?;
            let lines: Vec<&str> = d
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('['))
                .collect();
            (!lines.is_empty()).then(|| {
                lines
                    .iter()
                    .rev()
                    .take(2)
                    .rev()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
        })
        .or_else(|| text(spec.and_then(|s| s.get("reason"))));
    let head = match (code, phrase) {
        (Some(c), Some(p)) => Some(format!("exit code {c} ({p})")),
        (Some(c), None) => Some(format!("exit code {c}")),
        (None, Some(p)) => Some(p),
        (None, None) => None,
    };
    let all = match (head, detail) {
        (Some(h), Some(d)) => format!("{h}: {d}"),
        (Some(h), None) => h,
        (None, Some(d)) => d,
        (None, None) => return None,
    };
    let short: String = all.chars().take(300).collect();
    Some(crate::transport::sanitize(&short))
}

/// Pure: the webportal's job-detail page for `id` (`user~name`) under an OpenPAI `base` URL: the page
/// sits at the site root, beside the `/rest-server` prefix the API is reached through.
pub fn detail_url(base: &str, id: &str) -> String {
    let base = base.trim_end_matches('/');
    let site = base.strip_suffix("/rest-server").unwrap_or(base);
    let (user, name) = id.split_once('~').unwrap_or(("", id));
    let q = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "{site}/job-detail.html?username={}&jobName={}",
        q(user),
        q(name)
    )
}

impl Openpai {
    fn detail_url(&self, id: &str) -> String {
        detail_url(&self.at.base_url, id)
    }

    pub fn new(at: Endpoint, v1: bool) -> Self {
        Openpai { at, v1, user: None }
    }

    /// The same platform acting for `user`.
    pub fn as_user(&self, user: &str) -> Self {
        Openpai {
            user: Some(user.to_string()),
            ..self.clone()
        }
    }

    fn user(&self) -> RemoteResult<&str> {
        self.user.as_deref().ok_or_else(|| RemoteError::Permanent {
            message: "the OpenPAI user is not known".into(),
        })
    }

    /// The path of job `id` (`user~name`): v2 `/api/v2/jobs/user~name`, v1 `/api/v1/user/user/jobs/name`.
    fn job_path(&self, id: &str) -> String {
        match (self.v1, id.split_once('~')) {
            (true, Some((user, name))) => format!("/api/v1/user/{user}/jobs/{name}"),
            _ => format!("/api/v2/jobs/{id}"),
        }
    }

    fn view(&self, id: &str, v: &Value) -> RemoteView {
        let status = v.get("jobStatus").unwrap_or(v);
        let word = status
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN");
        let phase = map_state(word);
        let message = (phase == Phase::Failed)
            .then(|| exit_message(status))
            .flatten()
            .or_else(|| model::unrecognized(word, KNOWN_STATES));
        RemoteView {
            id: id.to_string(),
            phase,
            state: word.to_string(),
            message,
            url: Some(self.detail_url(id)),
            started_at: model::time_of(status.get("launchedTime")),
            finished_at: model::time_of(status.get("completedTime")),
        }
    }
}

impl Platform for Openpai {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NAMED
    }

    fn for_user(&self, user: &str) -> Option<Arc<dyn Platform>> {
        Some(Arc::new(self.as_user(user)))
    }

    fn create<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, name: &'a str) -> Call<'a, RemoteView> {
        async move {
            let job = model::body(spec.openpai, "openpai")?;
            let req = if self.v1 {
                let path = format!("/api/v1/user/{}/jobs", self.user()?);
                self.at.post(&path).json(&config_v1(job, name))
            } else {
                let text = protocol(job, name).to_string();
                self.at
                    .post("/api/v2/jobs")
                    .header("content-type", "text/yaml")
                    .body(text)
            };
            send(req, t, true).await?;
            // The 202 body is not the job: read it back (the rest-server writes it before answering).
            let id = format!("{}~{name}", self.user()?);
            Ok(RemoteView {
                id: id.clone(),
                phase: Phase::Queued,
                state: "WAITING".into(),
                message: None,
                url: Some(self.detail_url(&id)),
                ..Default::default()
            })
        }
        .boxed()
    }

    fn get<'a>(&'a self, t: &'a Bearer, _spec: Job<'a>, id: &'a str) -> Call<'a, RemoteView> {
        async move {
            let ans = send(self.at.get(&self.job_path(id)), t, false).await?;
            Ok(self.view(id, &ans.body))
        }
        .boxed()
    }

    fn lookup<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, name: &'a str) -> Search<'a> {
        async move {
            let id = format!("{}~{name}", self.user()?);
            match self.get(t, spec, &id).await {
                Ok(v) => Ok(Some(v)),
                Err(RemoteError::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    /// One user per ApiClient (the token's); the v1 API has no list call.
    fn list_scope(&self, _spec: Job<'_>) -> Option<String> {
        (!self.v1).then(|| "user".into())
    }

    /// Every job of our user.
    fn list<'a>(&'a self, t: &'a Bearer, _spec: Job<'a>) -> Call<'a, Vec<RemoteView>> {
        async move {
            let user = self.user()?;
            let req = self.at.get("/api/v2/jobs").query(&[("username", user)]);
            let ans = send(req, t, false).await?;
            Ok(model::items(&ans.body, "data")
                .iter()
                .filter_map(|j| {
                    let name = j.get("name").and_then(Value::as_str)?;
                    let owner = j.get("username").and_then(Value::as_str).unwrap_or(user);
                    Some(self.view(&format!("{owner}~{name}"), j))
                })
                .collect())
        }
        .boxed()
    }

    /// OpenPAI has no delete: stop via executionType.
    fn cancel<'a>(&'a self, t: &'a Bearer, _spec: Job<'a>, id: &'a str) -> Call<'a, ()> {
        async move {
            let req = self
                .at
                .request(
                    reqwest::Method::PUT,
                    &format!("{}/executionType", self.job_path(id)),
                )
                .json(&json!({"value": "STOP"}));
            send(req, t, false).await.map(|_| ())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map() {
        for (w, p) in [
            ("WAITING", Phase::Queued),
            ("RUNNING", Phase::Running),
            ("STOPPING", Phase::Running),
            ("SUCCEEDED", Phase::Succeeded),
            ("FAILED", Phase::Failed),
            ("STOPPED", Phase::Cancelled),
            ("UNKNOWN", Phase::Unknown),
            ("new", Phase::Unknown),
        ] {
            assert_eq!(map_state(w), p, "{w}");
        }
    }

    #[test]
    fn typed_fields_make_a_valid_protocol_and_raw_protocols_get_our_name() {
        let job: OpenpaiJob = serde_json::from_value(
            json!({"image": "ubuntu", "commands": ["echo hi"], "parameters": {"A": "1"}}),
        )
        .unwrap();
        let p = protocol(&job, "n-1");
        assert_eq!(p["name"], "n-1");
        assert_eq!(
            p["taskRoles"]["main"]["dockerImage"],
            p["prerequisites"][0]["name"]
        );
        assert_eq!(p["defaults"]["virtualCluster"], "default");
        assert_eq!(p["parameters"]["A"], "1");
        let raw: OpenpaiJob =
            serde_json::from_value(json!({"protocol": {"name": "theirs", "type": "job"}})).unwrap();
        assert_eq!(protocol(&raw, "ours")["name"], "ours");
    }
}

/// Against responses shaped as OpenPAI's rest-server sends them (tests/fixtures/openpai).
#[cfg(test)]
mod recorded {
    use super::*;
    use crate::platform::http::classify_recorded as class;
    use crate::platform::{fixture, fixture_bytes};

    fn pai() -> Openpai {
        Openpai::new(
            Endpoint::new(
                reqwest::Client::new(),
                "https://pai.example.com/rest-server",
            ),
            false,
        )
        .as_user("demo")
    }

    #[test]
    fn an_unrecognized_state_is_shown_with_its_word() {
        let id = "demo~j";
        let mut j = fixture!("openpai/job-status-running.json");
        j["jobStatus"]["state"] = "ARCHIVED".into();
        let v = pai().view(id, &j);
        assert_eq!((v.phase, v.state.as_str()), (Phase::Unknown, "ARCHIVED"));
        assert_eq!(
            v.message.as_deref(),
            Some("unrecognized state 'ARCHIVED' from the platform")
        );
        j["jobStatus"]["state"] = "UNKNOWN".into();
        assert_eq!(pai().view(id, &j).message, None, "a documented word");
    }

    #[test]
    fn a_job_detail_reads_state_and_epoch_ms_times() {
        let id = "demo~team-a-train-0f9a2d3e-1";
        let v = pai().view(id, &fixture!("openpai/job-status-running.json"));
        assert_eq!((v.phase, v.state.as_str()), (Phase::Running, "RUNNING"));
        assert_eq!(
            v.started_at.map(|t| t.to_string()).as_deref(),
            Some("2024-03-01T10:00:30Z")
        );
        assert_eq!(v.finished_at, None);
        let v = pai().view(id, &fixture!("openpai/job-status-failed.json"));
        assert_eq!((v.phase, v.state.as_str()), (Phase::Failed, "FAILED"));
        assert!(v.finished_at.is_some());
    }

    #[test]
    fn a_failed_job_says_why_from_its_exit_fields_and_links_its_detail_page() {
        let id = "demo~team-a-train-0f9a2d3e-1";
        let v = pai().view(id, &fixture!("openpai/job-status-failed.json"));
        assert_eq!(
            v.message.as_deref(),
            Some("exit code 1 (ContainerNonZeroExitCode): PodFailed: main-0 exited with code 1")
        );
        assert_eq!(
            v.url.as_deref(),
            Some(
                "https://pai.example.com/job-detail.html?username=demo&jobName=team-a-train-0f9a2d3e-1"
            )
        );
        let mut only_diag = fixture!("openpai/job-status-failed.json")["jobStatus"].clone();
        for k in ["appExitTriggerMessage", "appExitMessages", "appExitSpec"] {
            only_diag[k] = Value::Null;
        }
        assert_eq!(
            exit_message(&only_diag).as_deref(),
            Some(
                "exit code 1: File \"train.py\", line 3, in <module> | ModuleNotFoundError: No module named 'torch'"
            )
        );
        let running = pai().view(id, &fixture!("openpai/job-status-running.json"));
        assert_eq!(running.message, None);
    }

    #[test]
    fn detail_urls() {
        for (base, want) in [
            (
                "http://pai/rest-server/",
                "http://pai/job-detail.html?username=u&jobName=n-1",
            ),
            (
                "http://pai:9186",
                "http://pai:9186/job-detail.html?username=u&jobName=n-1",
            ),
        ] {
            assert_eq!(detail_url(base, "u~n-1"), want);
        }
    }

    #[test]
    fn list_summaries_are_flat() {
        let list = fixture!("openpai/jobs-list.json");
        let views: Vec<RemoteView> = super::model::items(&list, "data")
            .iter()
            .map(|j| pai().view("x", j))
            .collect();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].phase, Phase::Succeeded);
        assert_eq!(views[0].message, None, "exit code 0 is no failure");
        assert_eq!(views[1].phase, Phase::Queued);
    }

    #[test]
    fn documented_errors_classify() {
        assert_eq!(
            class(404, fixture_bytes!("openpai/error-404-no-job.json")),
            RemoteError::NotFound
        );
        assert!(matches!(
            class(409, fixture_bytes!("openpai/error-409-conflict.json")),
            RemoteError::Conflict { message } if message.contains("already exists")
        ));
        assert_eq!(
            fixture!("openpai/submit-202.json")["status"],
            202,
            "the 202 body is not the job: create reads no job from it"
        );
    }
}
