//! OpenPAI rest-server: the v2 job API (YAML job protocol) and the pre-1.1 v1 API (JSON config),
//! chosen by `PlatformApi::OpenpaiV2` / `OpenpaiV1` (/work/shared/platforms.md §2).
//!
//! Jobs are addressed as `<user>~<name>` (the framework name); the user is the token's owner and
//! comes from [`PlatformConfig::username`]. OpenPAI has no delete: names are never reused, cancel
//! means `executionType STOP`.

use secrecy::SecretString;
use serde_json::{Value, json};

use super::error::{Idempotency, PlatformError, Result};
use super::http::{seg, send, str_at};
use super::sanitize::sanitize_message;
use super::{Observation, PlatformConfig, ts_from_millis};
use crate::crd::{OpenpaiJob, PlatformApi, RemoteJobPhase};

/// Maps `jobStatus.state` (v1 and v2 share the words; v1 lacks STOPPING). Terminal: SUCCEEDED,
/// FAILED, STOPPED. STOPPING is still in flight.
pub fn map_state(state: &str) -> RemoteJobPhase {
    use RemoteJobPhase::*;
    match state.to_ascii_uppercase().as_str() {
        "WAITING" => Queued,
        "RUNNING" | "STOPPING" => Running,
        "SUCCEEDED" => Succeeded,
        "FAILED" => Failed,
        "STOPPED" => Cancelled,
        _ => Unknown,
    }
}

#[derive(Clone)]
pub struct OpenpaiAdapter {
    pub(crate) config: PlatformConfig,
    http: reqwest::Client,
}

impl OpenpaiAdapter {
    pub fn new(config: PlatformConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    fn v1(&self) -> bool {
        self.config.effective_api() == Some(PlatformApi::OpenpaiV1)
    }

    fn user(&self) -> Result<&str> {
        self.config
            .username
            .as_deref()
            .ok_or(PlatformError::Permanent {
                message: "OpenPAI needs the username the token belongs to".into(),
            })
    }

    /// Job protocol v2 from the typed fields, or the given protocol with our name.
    pub fn protocol_v2(remote_name: &str, job: &OpenpaiJob) -> Value {
        if let Some(p) = &job.protocol {
            let mut p = p.clone();
            if let Value::Object(m) = &mut p {
                m.insert("name".into(), json!(remote_name));
            }
            return p;
        }
        let mut role = json!({
            "instances": job.instances,
            "dockerImage": "image",
            "resourcePerInstance": {"cpu": job.cpu, "memoryMB": job.memory_mb, "gpu": job.gpu},
            "commands": job.commands,
        });
        if job.commands.is_empty() {
            role["commands"] = json!(["true"]);
        }
        let mut p = json!({
            "protocolVersion": 2,
            "name": remote_name,
            "type": "job",
            "prerequisites": [{"name": "image", "type": "dockerimage", "uri": job.image.clone().unwrap_or_default()}],
            "taskRoles": {job.task_role.clone(): role},
            "defaults": {"virtualCluster": job.virtual_cluster},
        });
        if !job.parameters.is_empty() {
            p["parameters"] = json!(job.parameters);
        }
        if let Some(n) = job.job_retry_count {
            p["jobRetryCount"] = json!(n);
        }
        p
    }

    /// The v1 JSON job config (a given `protocol` is sent as the config, with our `jobName`).
    pub fn config_v1(remote_name: &str, job: &OpenpaiJob) -> Value {
        if let Some(p) = &job.protocol {
            let mut p = p.clone();
            if let Value::Object(m) = &mut p {
                m.insert("jobName".into(), json!(remote_name));
            }
            return p;
        }
        let mut c = json!({
            "jobName": remote_name,
            "image": job.image.clone().unwrap_or_default(),
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
        if let Some(n) = job.job_retry_count {
            c["retryCount"] = json!(n);
        }
        if !job.parameters.is_empty() {
            c["jobEnvs"] = json!(job.parameters);
        }
        c
    }

    pub async fn submit(
        &self,
        token: &SecretString,
        remote_name: &str,
        job: &OpenpaiJob,
    ) -> Result<Observation> {
        let user = self.user()?;
        let req = if self.v1() {
            self.http
                .post(self.config.url(&format!("/api/v1/user/{}/jobs", seg(user))))
                .json(&Self::config_v1(remote_name, job))
        } else {
            let yaml =
                serde_saphyr::to_string(&Self::protocol_v2(remote_name, job)).map_err(|e| {
                    PlatformError::Permanent {
                        message: sanitize_message(&format!("job protocol: {e}")),
                    }
                })?;
            // text/yaml: the server parses text bodies with js-yaml; application/json would break it.
            self.http
                .post(self.config.url("/api/v2/jobs"))
                .header(http::header::CONTENT_TYPE, "text/yaml")
                .body(yaml)
        };
        // The 202 body is a message, not the job; the job is visible right away as WAITING.
        send(req, token, Idempotency::Create).await?;
        let id = format!("{user}~{remote_name}");
        Ok(Observation {
            phase: RemoteJobPhase::Queued,
            remote_state: "WAITING".into(),
            url: Some(self.job_url(user, remote_name)),
            remote_id: id,
            remote_name: Some(remote_name.into()),
            ..Default::default()
        })
    }

    fn job_url(&self, user: &str, name: &str) -> String {
        if self.v1() {
            self.config
                .url(&format!("/api/v1/user/{}/jobs/{}", seg(user), seg(name)))
        } else {
            self.config
                .url(&format!("/api/v2/jobs/{}", seg(&format!("{user}~{name}"))))
        }
    }

    /// `user~name` → (user, name); a bare name is taken as ours.
    fn split_id<'a>(&'a self, id: &'a str) -> Result<(&'a str, &'a str)> {
        match id.split_once('~') {
            Some((u, n)) => Ok((u, n)),
            None => Ok((self.user()?, id)),
        }
    }

    pub async fn get(&self, token: &SecretString, id: &str) -> Result<Observation> {
        let (user, name) = self.split_id(id)?;
        let v = send(
            self.http.get(self.job_url(user, name)),
            token,
            Idempotency::Idempotent,
        )
        .await?
        .json()?;
        Ok(self.observation(&v, user, name))
    }

    pub async fn lookup(
        &self,
        token: &SecretString,
        remote_name: &str,
    ) -> Result<Option<Observation>> {
        let id = format!("{}~{remote_name}", self.user()?);
        match self.get(token, &id).await {
            Ok(o) => Ok(Some(o)),
            Err(PlatformError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user's jobs. The list call is rate-limited harder than gets (60/min/user): call it rarely.
    pub async fn list(&self, token: &SecretString) -> Result<Vec<Observation>> {
        let user = self.user()?;
        let path = if self.v1() {
            "/api/v1/jobs"
        } else {
            "/api/v2/jobs"
        };
        let req = self
            .http
            .get(self.config.url(path))
            .query(&[("username", user)]);
        let v = send(req, token, Idempotency::Idempotent).await?.json()?;
        let items = match &v {
            Value::Array(a) => a.clone(),
            _ => v
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        Ok(items
            .iter()
            .filter_map(|j| {
                let name = str_at(j, "/name")?;
                let owner = str_at(j, "/username").unwrap_or_else(|| user.to_string());
                Some(self.observation(j, &owner, &name))
            })
            .collect())
    }

    pub async fn cancel(&self, token: &SecretString, id: &str) -> Result<()> {
        let (user, name) = self.split_id(id)?;
        let url = format!("{}/executionType", self.job_url(user, name));
        send(
            self.http.put(url).json(&json!({"value": "STOP"})),
            token,
            Idempotency::Idempotent,
        )
        .await
        .map(drop)
    }

    /// Reads a job detail (`jobStatus.*`) or a list summary (fields at the top level).
    fn observation(&self, v: &Value, user: &str, name: &str) -> Observation {
        let at = |field: &str| {
            str_at(v, &format!("/jobStatus/{field}")).or_else(|| str_at(v, &format!("/{field}")))
        };
        let ms = |field: &str| {
            v.pointer(&format!("/jobStatus/{field}"))
                .or_else(|| v.get(field))
                .and_then(Value::as_i64)
        };
        let state = at("state").unwrap_or_default();
        let message = at("appExitDiagnostics")
            .or_else(|| at("appExitType"))
            .map(|m| sanitize_message(m.lines().next().unwrap_or("")))
            .filter(|m| !m.is_empty());
        Observation {
            phase: map_state(&state),
            remote_state: sanitize_message(&state),
            remote_id: format!("{user}~{name}"),
            remote_name: Some(name.to_string()),
            created_at: ts_from_millis(ms("createdTime").or_else(|| ms("submissionTime"))),
            started_at: ts_from_millis(ms("launchedTime")),
            completed_at: ts_from_millis(ms("completedTime")),
            message,
            url: Some(self.job_url(user, name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RemoteJobPhase::*;

    #[test]
    fn states() {
        let cases = [
            ("WAITING", Queued),
            ("RUNNING", Running),
            ("STOPPING", Running),
            ("SUCCEEDED", Succeeded),
            ("FAILED", Failed),
            ("STOPPED", Cancelled),
            ("UNKNOWN", Unknown),
            ("running", Running),
            ("AttemptRunning", Unknown),
        ];
        for (w, want) in cases {
            assert_eq!(map_state(w), want, "{w}");
        }
    }

    #[test]
    fn typed_protocol() {
        let job: OpenpaiJob = serde_json::from_value(json!({"image": "ubuntu:20.04", "commands": ["echo hi"], "parameters": {"SIM_OUTCOME": "fail"}})).unwrap();
        let p = OpenpaiAdapter::protocol_v2("ns-j-1234abcd-0", &job);
        assert_eq!(p["name"], "ns-j-1234abcd-0");
        assert_eq!(
            p["prerequisites"][0],
            json!({"name": "image", "type": "dockerimage", "uri": "ubuntu:20.04"})
        );
        assert_eq!(p["taskRoles"]["main"]["dockerImage"], "image");
        assert_eq!(
            p["taskRoles"]["main"]["resourcePerInstance"],
            json!({"cpu": 1, "memoryMB": 1024, "gpu": 0})
        );
        assert_eq!(p["defaults"]["virtualCluster"], "default");
        assert_eq!(p["parameters"]["SIM_OUTCOME"], "fail");
        let yaml = serde_saphyr::to_string(&p).unwrap();
        assert!(yaml.contains("protocolVersion: 2"), "{yaml}");
    }

    #[test]
    fn given_protocol_gets_our_name() {
        let job: OpenpaiJob =
            serde_json::from_value(json!({"protocol": {"name": "theirs", "type": "job"}})).unwrap();
        assert_eq!(OpenpaiAdapter::protocol_v2("ours", &job)["name"], "ours");
        assert_eq!(OpenpaiAdapter::config_v1("ours", &job)["jobName"], "ours");
    }
}
