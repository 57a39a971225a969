//! Eggplant DAI's legacy run API (`PlatformApi::DaiLegacyRun`; platforms.md §3.3): form-encoded
//! `POST /api/run`, `POST /api/run/progress` (`id=` one run; `modelName=` + `limit=` the latest runs),
//! `POST /api/run/abort` with the run's process id. The same exactly-once guarantee as the execution
//! service (see `dai.rs`): an unknown start is found by listing the model's runs since the intent.

use futures::FutureExt;
use jiff::Timestamp;
use serde_json::Value;

use super::http::{Endpoint, send, send_checked};
use super::model::{
    self, Bearer, Call, Job, Platform, RemoteError, RemoteResult, RemoteView, Search,
};
use crate::jobspec::{DaiJob, RemoteJobPhase as Phase};

#[derive(Clone, Debug)]
pub struct DaiLegacy(pub Endpoint);

const PROGRESS: &str = "/api/run/progress";

/// The documented status words (dai-post-check-run.htm).
pub const KNOWN_STATUSES: &[&str] = &["Running", "Passed", "Failed", "Incomplete"];

/// Legacy status → our phase. `Incomplete` (a run that did not finish, also what an abort leads to
/// [INF]) is Failed, as in the execution service ([`super::dai::map_status`]): it counts toward
/// backoffLimit. Our own abort after `suspend` is told apart by the controller, which knows it asked.
pub fn map_status(word: &str) -> Phase {
    match word.to_ascii_lowercase().as_str() {
        "running" => Phase::Running,
        "passed" => Phase::Succeeded,
        "failed" | "incomplete" => Phase::Failed,
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

/// Pure: among the runs a `modelName` progress call listed, the earliest run of `model` started at or
/// after `since`. A run without a model name or a readable start time never matches.
pub fn pick_start<'v>(runs: &'v Value, model: &str, since: Timestamp) -> Option<&'v Value> {
    let runs = match runs {
        Value::Array(a) => a.as_slice(),
        one @ Value::Object(_) => std::slice::from_ref(one),
        _ => &[],
    };
    runs.iter()
        .filter(|r| r.get("modelname").and_then(Value::as_str) == Some(model))
        .filter_map(|r| Some((model::time_of(r.get("starttime"))?, r)))
        .filter(|(start, _)| *start >= since)
        .min_by_key(|(start, _)| *start)
        .map(|(_, r)| r)
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
            message: model::unrecognized(word, KNOWN_STATUSES),
            url: None,
            started_at: model::time_of(v.get("starttime")),
            finished_at: model::time_of(v.get("endtime")),
        })
    }

    /// Run `id` by progress `id=`; when the server answers that it has no such read (404 route, 405,
    /// 501), by the job's `modelName=` (the documented form for several runs) and the run with our id
    /// among them. `Ok(Err(tried))`: neither read found it, with each read tried and its answer.
    async fn run(
        &self,
        t: &Bearer,
        spec: Job<'_>,
        id: &str,
    ) -> RemoteResult<Result<Value, Vec<String>>> {
        let req = self.0.post(PROGRESS).form(&[("id", id)]);
        let first = match send_checked(req, t, false).await {
            Ok(a) => return Ok(Ok(a.body)),
            Err(f) if f.read_unsupported() => f.tried(&format!("POST {PROGRESS} id={id}")),
            Err(f) => return Err(f.error),
        };
        let mut tried = vec![first];
        if let Some(model) = super::dai::job(spec)
            .ok()
            .and_then(|j| j.model_name.as_ref())
        {
            let call = format!("POST {PROGRESS} modelName={model}");
            let req = self
                .0
                .post(PROGRESS)
                .form(&[("modelName", model.as_str()), ("limit", "100")]);
            match send_checked(req, t, false).await {
                Ok(a) => {
                    let runs = match a.body {
                        Value::Array(runs) => runs,
                        one => vec![one],
                    };
                    let ours = runs
                        .into_iter()
                        .find(|r| r.get("id").and_then(Value::as_str) == Some(id));
                    if let Some(run) = ours {
                        return Ok(Ok(run));
                    }
                    tried.push(format!("{call} did not list the run"));
                }
                Err(f) if f.read_unsupported() => tried.push(f.tried(&call)),
                Err(f) => return Err(f.error),
            }
        }
        Ok(Err(tried))
    }
}

impl Platform for DaiLegacy {
    fn create<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, _name: &'a str) -> Call<'a, RemoteView> {
        async move {
            let req = self.0.post("/api/run").form(&form(super::dai::job(spec)?)?);
            self.view(&send(req, t, true).await?.body)
        }
        .boxed()
    }

    /// The run as [`DaiLegacy::run`] finds it; when no read finds it, an observation saying so.
    fn get<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, id: &'a str) -> Call<'a, RemoteView> {
        async move {
            match self.run(t, spec, id).await? {
                Ok(run) => self.view(&run),
                Err(tried) => Ok(model::status_read_unsupported(id, &tried)),
            }
        }
        .boxed()
    }

    fn find_start<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, since: Timestamp) -> Search<'a> {
        async move {
            let model = form(super::dai::job(spec)?)?.remove(0).1;
            let req = self
                .0
                .post("/api/run/progress")
                .form(&[("modelName", model.as_str()), ("limit", "20")]);
            let ans = send(req, t, false).await?;
            // The runs' start times are on the server's clock: so is "since" (its Date header).
            let since = model::on_platform_clock(since, ans.date, Timestamp::now());
            let found = pick_start(&ans.body, &model, since);
            found.map(|r| self.view(r)).transpose()
        }
        .boxed()
    }

    /// Abort goes by process id, which the run's progress names (found as [`DaiLegacy::run`] finds
    /// reads, so that a server without progress by id can still abort).
    fn cancel<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, id: &'a str) -> Call<'a, ()> {
        async move {
            let run = self
                .run(t, spec, id)
                .await?
                .map_err(|tried| RemoteError::Permanent {
                    message: format!("the run to abort cannot be read: {}", tried.join("; ")),
                })?;
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
            ("Incomplete", Phase::Failed),
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

/// Against responses shaped as the legacy run API documents them (tests/fixtures/dai_legacy).
#[cfg(test)]
mod recorded {
    use super::*;
    use crate::platform::{fixture, fixture_bytes};

    fn dai() -> DaiLegacy {
        DaiLegacy(Endpoint::new(
            reqwest::Client::new(),
            "https://dai.example.com",
        ))
    }

    #[test]
    fn run_progress_reads_id_status_and_the_documented_time_format() {
        let v = dai()
            .view(&fixture!("dai_legacy/run-progress-running.json"))
            .unwrap();
        assert_eq!(v.id, "cecaf3f5-c071-46b2-8918-924420e3f954");
        assert_eq!((v.phase, v.state.as_str()), (Phase::Running, "Running"));
        assert_eq!(
            v.started_at.map(|t| t.to_string()).as_deref(),
            Some("2018-05-31T16:00:01.366412Z")
        );
        let done = dai()
            .view(&fixture!("dai_legacy/run-progress-incomplete.json"))
            .unwrap();
        assert!(done.finished_at.is_some());
        // Incomplete means the same as in the execution service: a failure (counts toward backoffLimit).
        assert_eq!(
            (done.phase, done.state.as_str()),
            (Phase::Failed, "Incomplete")
        );
        assert_eq!(done.phase, crate::platform::dai::map_status("Incomplete"));
        assert_eq!(done.message, None);
        let mut weird = fixture!("dai_legacy/run-progress-running.json");
        weird["status"] = "Paused".into();
        let w = dai().view(&weird).unwrap();
        assert_eq!((w.phase, w.state.as_str()), (Phase::Unknown, "Paused"));
        assert_eq!(
            w.message.as_deref(),
            Some("unrecognized state 'Paused' from the platform")
        );
    }

    #[test]
    fn a_lost_start_is_found_by_the_platforms_start_time() {
        let runs = fixture!("dai_legacy/run-progress-model.json");
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let found = pick_start(&runs, "BBCSport", at("2018-05-31T16:05:00Z"));
        assert_eq!(found.unwrap()["processid"], "5702");
        let both = pick_start(&runs, "BBCSport", at("2018-05-31T15:00:00Z"));
        assert_eq!(
            both.unwrap()["processid"],
            "5637",
            "the earliest since then"
        );
        assert!(pick_start(&runs, "BBCSport", at("2018-05-31T17:00:00Z")).is_none());
        assert!(pick_start(&runs, "Other", at("2018-05-31T15:00:00Z")).is_none());
    }

    #[test]
    fn documented_errors_and_abort_answer() {
        assert_eq!(
            crate::transport::message_of(fixture_bytes!("dai_legacy/error-401.json")),
            "Not Authorized"
        );
        assert_eq!(fixture!("dai_legacy/abort-200.json")["message"], "OK");
    }
}
