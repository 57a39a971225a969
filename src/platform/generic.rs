//! A generic REST API described by the RemoteJob's `GenericJob`: a submit call, a status call read
//! through JSON pointers, state word lists, and an optional cancel call.
//!
//! `{name}` in the submit path and in string values of the body is our remote name. `{id}` in the
//! status and cancel paths is the remote id. For APIs that address jobs by name, a submit answer
//! without an id at `idPointer` makes the remote name the remote id, so `{id}` and `{name}` agree.

use secrecy::SecretString;
use serde_json::Value;

use super::error::{Idempotency, PlatformError, Result};
use super::http::{seg, send, str_at};
use super::sanitize::sanitize_message;
use super::{Observation, PlatformConfig};
use crate::crd::{GenericJob, GenericStates, HttpMethod, RemoteJobPhase};

/// Looks the word up in the job's lists (case-insensitive); unlisted words are Unknown.
pub fn map_state(word: &str, states: &GenericStates) -> RemoteJobPhase {
    let w = word.trim();
    let hit = |list: &[String]| list.iter().any(|s| s.eq_ignore_ascii_case(w));
    if w.is_empty() {
        RemoteJobPhase::Unknown
    } else if hit(&states.succeeded) {
        RemoteJobPhase::Succeeded
    } else if hit(&states.failed) {
        RemoteJobPhase::Failed
    } else if hit(&states.cancelled) {
        RemoteJobPhase::Cancelled
    } else if hit(&states.running) {
        RemoteJobPhase::Running
    } else if hit(&states.queued) {
        RemoteJobPhase::Queued
    } else {
        RemoteJobPhase::Unknown
    }
}

fn method(m: HttpMethod) -> reqwest::Method {
    match m {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Delete => reqwest::Method::DELETE,
    }
}

/// Replaces `{name}` in every string of the body.
fn fill_name(v: &Value, name: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{name}", name)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_name(x, name)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), fill_name(x, name)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[derive(Clone)]
pub struct GenericAdapter {
    pub(crate) config: PlatformConfig,
    http: reqwest::Client,
}

impl GenericAdapter {
    pub fn new(config: PlatformConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    pub async fn submit(
        &self,
        token: &SecretString,
        remote_name: &str,
        job: &GenericJob,
    ) -> Result<Observation> {
        let path = job.submit_path.replace("{name}", &seg(remote_name));
        let mut req = self
            .http
            .request(method(job.submit_method), self.config.url(&path));
        if let Some(b) = &job.body {
            req = req.json(&fill_name(b, remote_name));
        }
        let v = send(req, token, Idempotency::Create).await?.json()?;
        let id = str_at(&v, &job.id_pointer).unwrap_or_else(|| remote_name.to_string());
        let mut o = self.observation(&v, &id, job);
        o.remote_name = Some(remote_name.to_string());
        if o.remote_state.is_empty() {
            o.phase = RemoteJobPhase::Queued;
        }
        Ok(o)
    }

    pub async fn get(
        &self,
        token: &SecretString,
        id: &str,
        job: &GenericJob,
    ) -> Result<Observation> {
        let req = self
            .http
            .get(self.config.url(&fill_path(&job.status_path, id)));
        let v = send(req, token, Idempotency::Idempotent).await?.json()?;
        Ok(self.observation(&v, id, job))
    }

    pub async fn cancel(&self, token: &SecretString, id: &str, job: &GenericJob) -> Result<()> {
        let path = job
            .cancel_path
            .as_deref()
            .ok_or(PlatformError::Unsupported("cancel"))?;
        let req = self.http.request(
            method(job.cancel_method),
            self.config.url(&fill_path(path, id)),
        );
        send(req, token, Idempotency::Idempotent).await.map(drop)
    }

    fn observation(&self, v: &Value, id: &str, job: &GenericJob) -> Observation {
        let state = str_at(v, &job.state_pointer).unwrap_or_default();
        Observation {
            phase: map_state(&state, &job.states),
            remote_state: sanitize_message(&state),
            remote_id: id.to_string(),
            remote_name: None,
            message: job
                .message_pointer
                .as_deref()
                .and_then(|p| str_at(v, p))
                .map(|m| sanitize_message(&m))
                .filter(|m| !m.is_empty()),
            url: Some(self.config.url(&fill_path(&job.status_path, id))),
            ..Default::default()
        }
    }
}

fn fill_path(path: &str, id: &str) -> String {
    path.replace("{id}", &seg(id)).replace("{name}", &seg(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RemoteJobPhase::*;

    #[test]
    fn default_words() {
        let s = GenericStates::default();
        let cases = [
            ("queued", Queued),
            ("PENDING", Queued),
            ("Running", Running),
            ("passed", Succeeded),
            ("error", Failed),
            ("canceled", Cancelled),
            ("stopped", Cancelled),
            ("mystery", Unknown),
            ("", Unknown),
        ];
        for (w, want) in cases {
            assert_eq!(map_state(w, &s), want, "{w}");
        }
    }

    #[test]
    fn name_fills() {
        let b = serde_json::json!({"name": "{name}", "tags": ["x-{name}"], "n": 1});
        assert_eq!(
            fill_name(&b, "j1"),
            serde_json::json!({"name": "j1", "tags": ["x-j1"], "n": 1})
        );
        assert_eq!(fill_path("/jobs/{id}/cancel", "a b"), "/jobs/a%20b/cancel");
    }
}
