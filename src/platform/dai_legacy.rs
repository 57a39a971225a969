//! Eggplant DAI's legacy run API (`PlatformApi::DaiLegacyRun`; platforms.md §3.3): form-encoded
//! `POST /api/run`, `POST /api/run/progress` (`id=` one run; `modelName=` + `limit=` the latest runs),
//! `POST /api/run/abort` with the run's process id. The same exactly-once guarantee as the execution
//! service (see `dai.rs`): an unknown start is found by listing the model's runs since the intent.

use futures::FutureExt;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::http::{Endpoint, send};
use super::{Bearer, Call, Platform, RemoteError, RemoteResult, RemoteView, Search, Spec};
use crate::crd::{DaiJob, RemoteJobPhase as Phase};

#[derive(Clone, Debug)]
pub struct DaiLegacy(pub Endpoint);

/// Legacy status → our phase. A run that was aborted ends `Incomplete` [INF]: cancelled.
pub fn map_status(word: &str) -> Phase {
    match word.to_ascii_lowercase().as_str() {
        "running" => Phase::Running,
        "passed" => Phase::Succeeded,
        "failed" => Phase::Failed,
        "incomplete" => Phase::Cancelled,
        _ => Phase::Unknown,
    }
}

/// Pure: the `/api/run` form of a RemoteJob's DAI section (`extra` entries become form fields).
pub fn form(job: &DaiJob) -> Result<Vec<(String, String)>, RemoteError> {
    let (Some(model), Some(group)) = (&job.model_name, &job.group) else {
        return Err(RemoteError::Permanent {
            message: "the legacy run API needs spec.dai.modelName and spec.dai.group".into(),
        });
    };
    let mut f = vec![
        ("modelName".to_string(), model.clone()),
        ("group".to_string(), group.clone()),
    ];
    if let Some(a) = &job.agent_name {
        f.push(("agentName".into(), a.clone()));
    }
    if let Some(i) = job.iterations {
        f.push(("iterations".into(), i.to_string()));
    }
    if let Some(Value::Object(extra)) = &job.extra {
        for (k, v) in extra {
            f.push((
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            ));
        }
    }
    Ok(f)
}

impl DaiLegacy {
    fn view(&self, v: &Value) -> RemoteResult<RemoteView> {
        let Some(id) = v.get("id").and_then(Value::as_str) else {
            return Err(RemoteError::OutcomeUnknown {
                message: "DAI answered without a run id".into(),
            });
        };
        let word = v.get("status").and_then(Value::as_str).unwrap_or("Unknown");
        Ok(RemoteView {
            id: id.to_string(),
            phase: map_status(word),
            state: word.to_string(),
            message: None,
            url: None,
            started_at: super::time_of(v.get("starttime")),
            finished_at: super::time_of(v.get("endtime")),
        })
    }

    async fn progress(&self, t: &Bearer, id: &str) -> RemoteResult<Value> {
        let req = self.0.post("/api/run/progress").form(&[("id", id)]);
        Ok(send(req, t, false).await?.body)
    }
}

impl Platform for DaiLegacy {
    fn create<'a>(&'a self, t: &'a Bearer, spec: &'a Spec, _name: &'a str) -> Call<'a, RemoteView> {
        async move {
            let req = self.0.post("/api/run").form(&form(super::dai::job(spec)?)?);
            self.view(&send(req, t, true).await?.body)
        }
        .boxed()
    }

    fn get<'a>(&'a self, t: &'a Bearer, _spec: &'a Spec, id: &'a str) -> Call<'a, RemoteView> {
        async move { self.view(&self.progress(t, id).await?) }.boxed()
    }

    fn find_start<'a>(&'a self, t: &'a Bearer, spec: &'a Spec, since: Timestamp) -> Search<'a> {
        async move {
            let model = form(super::dai::job(spec)?)?.remove(0).1;
            let req = self
                .0
                .post("/api/run/progress")
                .form(&[("modelName", model.as_str()), ("limit", "20")]);
            let ans = send(req, t, false).await?;
            let runs = ans.body.as_array().map(Vec::as_slice).unwrap_or_default();
            let since_then = |r: &&Value| {
                r.get("starttime")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<Timestamp>().ok())
                    .is_some_and(|s| s >= since)
            };
            let found = super::earliest(runs.iter().filter(since_then), "starttime");
            found.map(|r| self.view(r)).transpose()
        }
        .boxed()
    }

    /// Abort goes by process id, which the run's progress names.
    fn cancel<'a>(&'a self, t: &'a Bearer, _spec: &'a Spec, id: &'a str) -> Call<'a, ()> {
        async move {
            let run = self.progress(t, id).await?;
            let pid = match run.get("processid") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(RemoteError::Permanent {
                        message: "the run has no process id to abort".into(),
                    });
                }
            };
            let req = self.0.post("/api/run/abort").form(&[("id", pid.as_str())]);
            send(req, t, false).await.map(|_| ())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_words_and_form() {
        for (w, p) in [
            ("Running", Phase::Running),
            ("Passed", Phase::Succeeded),
            ("Failed", Phase::Failed),
            ("Incomplete", Phase::Cancelled),
            ("?", Phase::Unknown),
        ] {
            assert_eq!(map_status(w), p, "{w}");
        }
        let job: DaiJob = serde_json::from_value(serde_json::json!({"modelName": "shop", "group": "g", "iterations": 2, "extra": {"seed": 7}})).unwrap();
        let f = form(&job).unwrap();
        assert_eq!(f[0], ("modelName".into(), "shop".into()));
        assert!(
            f.contains(&("iterations".into(), "2".into()))
                && f.contains(&("seed".into(), "7".into()))
        );
        let no_group: DaiJob = serde_json::from_value(serde_json::json!({"modelId": "m"})).unwrap();
        assert!(matches!(
            form(&no_group),
            Err(RemoteError::Permanent { .. })
        ));
    }
}
