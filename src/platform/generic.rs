//! A generic OAuth2-protected REST API, driven entirely by the RemoteJob's `generic` body: a submit call
//! whose answer holds the id (JSON pointer), a status call whose answer holds a state word (JSON
//! pointer) mapped through word lists, an optional cancel call, and an optional lookup by our name
//! (`spec.generic.lookup`). Without a lookup a submit whose answer was lost cannot be found: the
//! controller then waits for a person to confirm a resubmit instead of submitting again.

use futures::FutureExt;
use reqwest::Method;
use serde_json::Value;

use super::http::{Endpoint, send};
use super::model::{
    self, Bearer, Call, Job, Platform, RemoteError, RemoteResult, RemoteView, Search,
};
use crate::jobspec::{GenericJob, GenericStates, HttpMethod, RemoteJobPhase as Phase};
use crate::transport::sanitize;

#[derive(Clone, Debug)]
pub struct Generic(pub Endpoint);

/// Pure: a state word → our phase through the job's word lists (case-insensitive; unlisted → Unknown).
pub fn map_state(states: &GenericStates, word: &str) -> Phase {
    let has = |list: &[String]| list.iter().any(|w| w.eq_ignore_ascii_case(word));
    if has(&states.succeeded) {
        Phase::Succeeded
    } else if has(&states.failed) {
        Phase::Failed
    } else if has(&states.cancelled) {
        Phase::Cancelled
    } else if has(&states.running) {
        Phase::Running
    } else if has(&states.queued) {
        Phase::Queued
    } else {
        Phase::Unknown
    }
}

/// Pure: `{id}` and `{name}` in a path, percent-encoded.
pub fn fill(path: &str, id: &str, name: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    path.replace("{id}", &enc(id)).replace("{name}", &enc(name))
}

fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

fn word_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl Generic {
    fn job(spec: Job<'_>) -> RemoteResult<&GenericJob> {
        model::body(spec.generic, "generic")
    }

    fn view(&self, job: &GenericJob, id: &str, v: &Value) -> RemoteView {
        let word = word_at(v, &job.state_pointer).unwrap_or_else(|| "unknown".into());
        let phase = map_state(&job.states, &word);
        let message = job
            .message_pointer
            .as_deref()
            .and_then(|p| word_at(v, p))
            .map(|m| sanitize(&m));
        // Not in any of the job's word lists: say which word, with the platform's message if any.
        let unrecognized = (phase == Phase::Unknown).then(|| model::unrecognized(&word, &[]));
        let message = match (unrecognized.flatten(), message) {
            (Some(u), Some(m)) => Some(format!("{u}: {m}")),
            (u, m) => u.or(m),
        };
        RemoteView {
            id: id.to_string(),
            phase,
            message,
            state: word,
            url: Some(self.0.url(&fill(&job.status_path, id, ""))),
            ..Default::default()
        }
    }
}

impl Platform for Generic {
    fn create<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, name: &'a str) -> Call<'a, RemoteView> {
        async move {
            let job = Self::job(spec)?;
            let mut req = self
                .0
                .request(method(job.submit_method), &fill(&job.submit_path, "", name));
            if let Some(body) = &job.body {
                req = req.json(body);
            }
            let ans = send(req, t, true).await?;
            let id =
                word_at(&ans.body, &job.id_pointer).ok_or_else(|| RemoteError::OutcomeUnknown {
                    message: format!("the submit answer has no id at {}", job.id_pointer),
                })?;
            let mut view = self.view(job, &id, &ans.body);
            if view.phase == Phase::Unknown {
                view.phase = Phase::Queued;
            }
            Ok(view)
        }
        .boxed()
    }

    /// `spec.generic.lookup`: GET its path with our name; the id at its pointer (then read by id), or
    /// nothing on a 404 or an answer without one. No lookup configured: nothing is ever found.
    fn lookup<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, name: &'a str) -> Search<'a> {
        async move {
            let job = Self::job(spec)?;
            let Some(lookup) = &job.lookup else {
                return Ok(None);
            };
            let ans = match send(self.0.get(&fill(&lookup.path, "", name)), t, false).await {
                Ok(ans) => ans,
                Err(RemoteError::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(id) = word_at(&ans.body, &lookup.id_pointer).filter(|id| !id.is_empty())
            else {
                return Ok(None);
            };
            self.get(t, spec, &id).await.map(Some)
        }
        .boxed()
    }

    fn get<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, id: &'a str) -> Call<'a, RemoteView> {
        async move {
            let job = Self::job(spec)?;
            let ans = send(self.0.get(&fill(&job.status_path, id, "")), t, false).await?;
            Ok(self.view(job, id, &ans.body))
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, id: &'a str) -> Call<'a, ()> {
        async move {
            let job = Self::job(spec)?;
            let Some(path) = &job.cancel_path else {
                return Err(RemoteError::Permanent {
                    message: "spec.generic.cancelPath is not set: the job cannot be cancelled"
                        .into(),
                });
            };
            let req = self
                .0
                .request(method(job.cancel_method), &fill(path, id, ""));
            send(req, t, false).await.map(|_| ())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_words_map_and_paths_fill() {
        let s = GenericStates::default();
        for (w, p) in [
            ("SUCCEEDED", Phase::Succeeded),
            ("passed", Phase::Succeeded),
            ("error", Phase::Failed),
            ("Aborted", Phase::Cancelled),
            ("running", Phase::Running),
            ("pending", Phase::Queued),
            ("weird", Phase::Unknown),
        ] {
            assert_eq!(map_state(&s, w), p, "{w}");
        }
        assert_eq!(fill("/jobs/{id}/x", "a b/c", ""), "/jobs/a+b%2Fc/x");
    }

    #[test]
    fn an_unlisted_word_is_shown_with_the_platforms_message() {
        let job: GenericJob = serde_json::from_value(serde_json::json!({
            "submitPath": "/jobs", "idPointer": "/id", "statusPath": "/jobs/{id}",
            "statePointer": "/state", "messagePointer": "/why"
        }))
        .unwrap();
        let g = Generic(Endpoint::new(
            reqwest::Client::new(),
            "https://x.example.com",
        ));
        let v = g.view(
            &job,
            "1",
            &serde_json::json!({"state": "Weird", "why": "odd"}),
        );
        assert_eq!((v.phase, v.state.as_str()), (Phase::Unknown, "Weird"));
        assert_eq!(
            v.message.as_deref(),
            Some("unrecognized state 'Weird' from the platform: odd")
        );
        let v = g.view(&job, "1", &serde_json::json!({"state": "running"}));
        assert_eq!((v.phase, v.message), (Phase::Running, None));
    }
}
