//! Eggplant DAI execution service (platforms.md §3.2, §3.4).
//!
//! DAI has no client-chosen name, so a start is never retried blindly. The guarantee: the controller
//! records its intent (with the time) before the start call; if the answer is lost it lists executions
//! started since that time for the same model/script/rerun and adopts the earliest match; only when the
//! list shows none does it start again. A start that the service accepted but does not list yet can
//! therefore run twice — the one window where DAI gives us no way to be exactly-once.

use futures::FutureExt;
use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use super::http::{self, Endpoint, send, send_checked};
use super::model::{
    self, Bearer, Call, Job, Platform, RemoteError, RemoteResult, RemoteView, Search,
};
use crate::jobspec::{DaiJob, RemoteJobPhase as Phase};

/// The execution service (`PlatformApi::DaiExecutions`); the legacy run API is [`super::dai_legacy`].
#[derive(Clone, Debug)]
pub struct Dai(pub Endpoint);

const EXECUTIONS: &str = "/execution_service/api/v1/executions";

/// The legacy API's documented run read (platforms.md §3.3), the fallback when the execution service
/// offers no read of an execution (none is documented, §3.2).
const LEGACY_PROGRESS: &str = "/api/run/progress";

/// The status words [`map_status`] knows.
pub const KNOWN_STATUSES: &[&str] = &[
    "queued",
    "pending",
    "starting",
    "running",
    "passed",
    "failed",
    "incomplete",
    "error",
    "aborted",
    "cancelled",
];

/// Execution status → our phase (legacy words Running/Passed/Failed/Incomplete, plus queued/aborted).
/// `Incomplete` is Failed, as in the legacy API ([`super::dai_legacy::map_status`]): it counts toward
/// backoffLimit.
pub fn map_status(word: &str) -> Phase {
    match word.to_ascii_lowercase().as_str() {
        "queued" | "pending" | "starting" => Phase::Queued,
        "running" => Phase::Running,
        "passed" => Phase::Succeeded,
        "failed" | "incomplete" | "error" => Phase::Failed,
        "aborted" | "cancelled" => Phase::Cancelled,
        _ => Phase::Unknown,
    }
}

/// The start request for a RemoteJob's DAI section.
pub fn start_body(job: &DaiJob) -> Value {
    let mut b = json!({"execution_type": "executing"});
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            b[k] = v;
        }
    };
    put("model_id", json!(job.model_id));
    put("test_case_id", json!(job.test_case_id));
    put("script", json!(job.script));
    put("rerun_id", json!(job.rerun_id));
    put("step_pause_time", json!(job.step_pause_time));
    if let Some(agent) = &job.agent_id {
        put(
            "agent",
            json!({"agent_id": agent, "is_hosted_agent": job.is_hosted_agent.unwrap_or(false)}),
        );
    }
    if job.asset_version_id.is_some() || job.asset_path.is_some() {
        put(
            "asset",
            json!({"asset_version_id": job.asset_version_id, "asset_path": job.asset_path}),
        );
    }
    if let Some(sut) = &job.sut_id {
        put("sut", json!({"sut_id": sut}));
    } else if !job.sut_criteria.is_empty() {
        put("sut", json!({"criteria": job.sut_criteria}));
    }
    if let Some(Value::Object(extra)) = &job.extra {
        for (k, v) in extra {
            put(k, v.clone());
        }
    }
    b
}

/// Pure: whether a listed execution is the start `wanted` (our start body): every identifying field
/// (model, test case, script, rerun) is the same, present or absent alike on both sides — a field the
/// listing leaves out never matches.
pub fn same_start(wanted: &Value, listed: &Value) -> bool {
    let field = |v: &Value, k: &str| v.get(k).filter(|x| !x.is_null()).cloned();
    ["model_id", "test_case_id", "script", "rerun_id"]
        .iter()
        .all(|k| field(wanted, k) == field(listed, k))
}

/// Pure: among listed executions (`items`), the earliest that is the start `wanted` ([`same_start`])
/// created at or after `since` (the platform's clock); one without a readable creation time never
/// matches.
pub fn pick_start<'v>(listed: &'v Value, wanted: &Value, since: Timestamp) -> Option<&'v Value> {
    model::items(listed, "items")
        .iter()
        .filter(|v| same_start(wanted, v))
        .filter_map(|v| Some((model::time_of(v.get("created_at"))?, v)))
        .filter(|(at, _)| *at >= since)
        .min_by_key(|(at, _)| *at)
        .map(|(_, v)| v)
}

/// The RemoteJob's DAI section (both DAI APIs).
pub fn job(spec: Job<'_>) -> RemoteResult<&DaiJob> {
    model::body(spec.dai, "dai")
}

impl Dai {
    fn view(&self, v: &Value) -> RemoteResult<RemoteView> {
        let id = v.get("id").or_else(|| v.get("execution_id"));
        let id = match id {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(RemoteError::OutcomeUnknown {
                    message: "DAI answered without an execution id".into(),
                });
            }
        };
        let word = v.get("status").and_then(Value::as_str).unwrap_or("Unknown");
        Ok(RemoteView {
            id: id.clone(),
            phase: map_status(word),
            state: word.to_string(),
            message: model::unrecognized(word, KNOWN_STATUSES),
            url: Some(self.0.url(&format!("{EXECUTIONS}/{id}"))),
            started_at: model::time_of(v.get("start_time")),
            finished_at: model::time_of(v.get("end_time")),
        })
    }
}

impl Platform for Dai {
    fn create<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, _name: &'a str) -> Call<'a, RemoteView> {
        async move {
            let req = self.0.post(EXECUTIONS).json(&start_body(job(spec)?));
            self.view(&send(req, t, true).await?.body)
        }
        .boxed()
    }

    /// `GET executions/{id}` (undocumented, §3.2); when the service answers that it has no such read
    /// (404 route, 405, 501), the legacy `POST /api/run/progress` with `id=`; when neither reads, an
    /// observation saying so ([`model::status_read_unsupported`]) rather than the last phase forever.
    fn get<'a>(&'a self, t: &'a Bearer, _spec: Job<'a>, id: &'a str) -> Call<'a, RemoteView> {
        async move {
            let path = format!("{EXECUTIONS}/{id}");
            let first = match send_checked(self.0.get(&path), t, false).await {
                Ok(a) => return self.view(&a.body),
                Err(f) if f.read_unsupported() => f.tried(&format!("GET {path}")),
                Err(f) => return Err(f.error),
            };
            let legacy = self.0.post(LEGACY_PROGRESS).form(&[("id", id)]);
            let second = match send_checked(legacy, t, false).await {
                Ok(a) if a.body.get("status").is_some_and(Value::is_string) => {
                    let mut v = self.view(&a.body)?;
                    v.id = id.to_string();
                    v.url = None;
                    v.message.get_or_insert_with(|| {
                        format!("read through POST {LEGACY_PROGRESS} ({first})")
                    });
                    return Ok(v);
                }
                Ok(_) => format!("POST {LEGACY_PROGRESS} id={id} answered without a run status"),
                Err(
                    f @ http::Failure {
                        error:
                            RemoteError::Retriable { .. }
                            | RemoteError::Auth { .. }
                            | RemoteError::OutcomeUnknown { .. },
                        ..
                    },
                ) => return Err(f.error),
                Err(f) => f.tried(&format!("POST {LEGACY_PROGRESS} id={id}")),
            };
            Ok(model::status_read_unsupported(id, &[first, second]))
        }
        .boxed()
    }

    /// Executions since the intent, matched on every identifying field; "since" on the service's
    /// clock (its `Date` header), so a skewed platform clock neither hides our start nor shows an
    /// older one. The list asks [`model::SKEW_WINDOW`] further back and is cut here.
    fn find_start<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, since: Timestamp) -> Search<'a> {
        async move {
            let job = job(spec)?;
            let asked = since.checked_sub(model::SKEW_WINDOW).unwrap_or(since);
            let mut req = self
                .0
                .get(EXECUTIONS)
                .query(&[("since", asked.to_string())]);
            if let Some(m) = &job.model_id {
                req = req.query(&[("model_id", m)]);
            }
            let ans = send(req, t, false).await?;
            let since = model::on_platform_clock(since, ans.date, Timestamp::now());
            pick_start(&ans.body, &start_body(job), since)
                .map(|v| self.view(v))
                .transpose()
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, t: &'a Bearer, _spec: Job<'a>, id: &'a str) -> Call<'a, ()> {
        async move {
            let req = self
                .0
                .request(Method::DELETE, &format!("{EXECUTIONS}/{id}"));
            send(req, t, false).await.map(|_| ())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map() {
        for (w, p) in [
            ("Running", Phase::Running),
            ("Passed", Phase::Succeeded),
            ("Failed", Phase::Failed),
            ("Incomplete", Phase::Failed),
            ("Aborted", Phase::Cancelled),
            ("Queued", Phase::Queued),
            ("Weird", Phase::Unknown),
        ] {
            assert_eq!(map_status(w), p, "{w}");
        }
    }

    #[test]
    fn an_unrecognized_status_is_shown_with_its_word() {
        let dai = Dai(Endpoint::new(
            reqwest::Client::new(),
            "https://dai.example.com",
        ));
        let v = dai.view(&json!({"id": "e1", "status": "Weird"})).unwrap();
        assert_eq!((v.phase, v.state.as_str()), (Phase::Unknown, "Weird"));
        assert_eq!(
            v.message.as_deref(),
            Some("unrecognized state 'Weird' from the platform")
        );
        let known = dai.view(&json!({"id": "e1", "status": "Queued"})).unwrap();
        assert_eq!(known.message, None);
    }

    #[test]
    fn adoption_never_matches_on_a_missing_field() {
        let wanted = json!({"execution_type": "executing", "model_id": "m", "test_case_id": 7});
        assert!(same_start(
            &wanted,
            &json!({"id": "1", "model_id": "m", "test_case_id": 7, "script": null})
        ));
        assert!(
            !same_start(&wanted, &json!({"id": "1", "model_id": "m"})),
            "test case missing"
        );
        assert!(
            !same_start(&wanted, &json!({"id": "1"})),
            "nothing to match on"
        );
        assert!(!same_start(
            &wanted,
            &json!({"id": "1", "model_id": "m", "test_case_id": 8})
        ));
        assert!(
            !same_start(
                &json!({"model_id": "m"}),
                &json!({"model_id": "m", "test_case_id": 7})
            ),
            "another test case of the model"
        );
    }

    #[test]
    fn a_start_is_picked_by_the_platforms_creation_time() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let wanted = json!({"model_id": "m"});
        let listed = json!({"items": [
            {"id": "old", "model_id": "m", "created_at": "2024-03-01T09:00:00Z"},
            {"id": "late", "model_id": "m", "created_at": "2024-03-01T10:00:05Z"},
            {"id": "ours", "model_id": "m", "created_at": "2024-03-01T10:00:01Z"},
            {"id": "untimed", "model_id": "m"},
            {"id": "other", "model_id": "n", "created_at": "2024-03-01T10:00:00Z"},
        ]});
        let pick = |since| pick_start(&listed, &wanted, at(since)).map(|v| v["id"].clone());
        assert_eq!(pick("2024-03-01T10:00:00Z"), Some(json!("ours")));
        assert_eq!(pick("2024-03-01T08:00:00Z"), Some(json!("old")));
        assert_eq!(pick("2024-03-01T11:00:00Z"), None);
    }

    #[test]
    fn start_body_from_typed_fields() {
        let job: DaiJob = serde_json::from_value(json!({"modelId": "m", "testCaseId": 7, "agentId": "a", "extra": {"SIM_RUN_SECONDS": 2}})).unwrap();
        let b = start_body(&job);
        assert_eq!(b["execution_type"], "executing");
        assert_eq!(
            (b["model_id"].as_str(), b["test_case_id"].as_i64()),
            (Some("m"), Some(7))
        );
        assert_eq!(b["agent"]["agent_id"], "a");
        assert_eq!(b["SIM_RUN_SECONDS"], 2);
        assert!(b.get("script").is_none());
    }
}

/// Against the execution service's documented error answers (tests/fixtures/dai); its start answer and
/// reads are not published, so only errors are recorded.
#[cfg(test)]
mod recorded {
    use super::*;
    use crate::platform::fixture_bytes;
    use crate::platform::http::classify_recorded as class;

    #[test]
    fn documented_errors_classify() {
        assert!(matches!(
            class(422, fixture_bytes!("dai/error-422-validation.json")),
            RemoteError::Permanent { message } if message.contains("not a valid uuid")
        ));
        assert!(matches!(
            class(503, fixture_bytes!("dai/error-503-rabbitmq.json")),
            RemoteError::Retriable { message, .. } if message.contains("RabbitMQ")
        ));
    }
}
