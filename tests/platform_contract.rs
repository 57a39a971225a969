//! Contract tests: every adapter operation against the simulator over real HTTP, every error class,
//! and the simulator's answers checked against ../shared/platforms.md (shapes, codes, conflicts).

mod support;

use std::time::Duration;

use std::sync::Arc;

use jiff::Timestamp;
use jobrelay::crd::{PlatformApi, RemoteJobPhase as Phase, RemoteJobSpec};
use jobrelay::platform::{self, Endpoint, Job, Platform, RemoteError, RemoteView};
use jobrelay::simulator::{Fault, FaultKind, Handle};
use secrecy::SecretString;
use serde_json::{Value, json};
use support::fixtures::spec;
use support::operator::{admin_json, admin_post, counters, inject, sim_token, simulator};
use support::{json_of, wait_for};

/// Run:ai/OpenPAI/DAI look jobs up by id alone; the spec matters to generic APIs only.
const ANY: Job<'static> = Job {
    runai: None,
    openpai: None,
    dai: None,
    generic: None,
};

/// The platform `api` names on the simulator, acting for the demo user (OpenPAI ids name it);
/// `None`: the generic REST platform, pointed at the DAI execution service.
fn platform_on(sim: &Handle, api: Option<PlatformApi>) -> Arc<dyn Platform> {
    let prefix = match api {
        Some(PlatformApi::RunaiTrainingsV1) => "runai",
        Some(PlatformApi::OpenpaiV2 | PlatformApi::OpenpaiV1) => "openpai",
        _ => "dai",
    };
    let p = platform::open(api, Endpoint::new(http(), sim.base_url(prefix)));
    p.for_user("demo").unwrap_or(p)
}

/// A start whose answer the simulator drops is reported unknown, found by listing the starts since
/// `since` (not started again), and cancelled. Returns the job found and how it looks after the cancel.
async fn drop_find_and_cancel(
    sim: &Handle,
    a: &dyn Platform,
    t: &SecretString,
    s: &RemoteJobSpec,
    since: Timestamp,
) -> (RemoteView, RemoteView) {
    inject(sim, fault("dai", "create", FaultKind::CommitThenDrop));
    assert!(matches!(
        a.create(t, s.job(), "x").await,
        Err(RemoteError::OutcomeUnknown { .. })
    ));
    let found = a
        .find_start(t, s.job(), since)
        .await
        .unwrap()
        .expect("the dropped start is listed");
    a.cancel(t, ANY, &found.id).await.unwrap();
    let after = a.get(t, ANY, &found.id).await.unwrap();
    (found, after)
}

/// Polls job `id` until the platform reports `phase`.
async fn until_phase(
    a: &dyn Platform,
    t: &SecretString,
    spec: Job<'_>,
    id: &str,
    phase: Phase,
) -> RemoteView {
    wait_for(
        &format!("{id} {phase:?}"),
        Duration::from_secs(10),
        || async { a.get(t, spec, id).await.ok().filter(|v| v.phase == phase) },
    )
    .await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn runai_token(sim: &Handle) -> SecretString {
    let t = support::post_form(
        &format!(
            "{}/auth/realms/runai/protocol/openid-connect/token",
            sim.base_url("runai")
        ),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
            ("scope", "openid"),
            ("response_type", "id_token"),
        ],
    )
    .await;
    assert!(
        t["id_token"].is_string() && t["expires_in"].as_u64().unwrap() > 0,
        "{t}"
    );
    SecretString::from(t["access_token"].as_str().unwrap().to_string())
}

/// The demo user's OpenPAI login: a JSON body, or (`json` false) a form as pre-1.1 clients send.
async fn openpai_token(sim: &Handle, json: bool) -> SecretString {
    let url = format!("{}/api/v1/token", sim.base_url("openpai"));
    let login = if json {
        let req = http()
            .post(url)
            .json(&json!({"username": "demo", "password": "demo-password"}));
        req.send().await.unwrap().json::<Value>().await.unwrap()
    } else {
        support::post_form(&url, &[("username", "demo"), ("password", "demo-password")]).await
    };
    assert_eq!(login["user"], "demo");
    SecretString::from(login["token"].as_str().unwrap().to_string())
}

async fn dai_token(sim: &Handle) -> SecretString {
    let t = sim_token(sim, "dai", "eggplant").await;
    SecretString::from(t["access_token"].as_str().unwrap().to_string())
}

fn fault(platform: &str, op: &str, kind: FaultKind) -> Fault {
    Fault {
        retry_after: 7,
        ..Fault::once(platform, op, kind)
    }
}

#[tokio::test]
async fn runai_operations_and_error_classes() {
    let sim = simulator(None).await;
    let t = runai_token(&sim).await;
    let a = platform_on(&sim, Some(PlatformApi::RunaiTrainingsV1));
    let s = spec(
        json!({"runai": {"projectId": "5", "clusterId": "c", "image": "busybox", "environment": [{"name": "SIM_RUN_SECONDS", "value": "1"}, {"name": "SIM_QUEUE_SECONDS", "value": "0.2"}]}}),
    );
    assert_eq!(a.lookup(&t, s.job(), "job-1").await.unwrap(), None);
    let created = a.create(&t, s.job(), "job-1").await.unwrap();
    assert_eq!(created.phase, Phase::Queued);
    assert_eq!(
        a.lookup(&t, s.job(), "job-1").await.unwrap().unwrap().id,
        created.id
    );
    assert_eq!(
        a.create(&t, s.job(), "job-1").await.unwrap().id,
        created.id,
        "a duplicate name (409) is looked up and adopted"
    );
    sim.state.lock().faults.push(Fault::once(
        "runai",
        "create",
        FaultKind::DuplicateAsBadRequest,
    ));
    assert_eq!(
        a.create(&t, s.job(), "job-1").await.unwrap().id,
        created.id,
        "a duplicate answered 400 is looked up and adopted too"
    );
    assert!(sim.state.lock().faults.is_empty(), "the 400 was answered");
    let done = until_phase(&*a, &t, ANY, &created.id, Phase::Succeeded).await;
    assert_eq!(done.state, "Completed");
    assert_eq!(
        a.get(&t, ANY, "no-such-id").await,
        Err(RemoteError::NotFound)
    );
    // Suspend / resume / delete.
    let s2 = spec(
        json!({"runai": {"projectId": "5", "clusterId": "c", "image": "busybox", "environment": [{"name": "SIM_RUN_SECONDS", "value": "60"}]}}),
    );
    let v = a.create(&t, s2.job(), "job-2").await.unwrap();
    a.suspend(&t, ANY, &v.id).await.unwrap();
    assert_eq!(a.get(&t, ANY, &v.id).await.unwrap().phase, Phase::Suspended);
    a.resume(&t, ANY, &v.id).await.unwrap();
    assert_eq!(a.get(&t, ANY, &v.id).await.unwrap().phase, Phase::Queued);
    a.cancel(&t, ANY, &v.id).await.unwrap();
    assert_eq!(
        a.get(&t, ANY, &v.id).await,
        Err(RemoteError::NotFound),
        "a deleted training 404s"
    );
    // With the job's project known, a deleted workload is found among the deleted ones: deleted
    // while it ran, it was cancelled there; deleted after it completed, it still succeeded.
    let gone = a.get(&t, s2.job(), &v.id).await.unwrap();
    assert_eq!(
        (gone.phase, gone.state.as_str()),
        (Phase::Cancelled, "Deleting")
    );
    assert!(
        gone.message
            .as_deref()
            .unwrap_or_default()
            .starts_with("deleted on the platform at "),
        "{gone:?}"
    );
    a.cancel(&t, ANY, &created.id).await.unwrap();
    let kept = a.get(&t, s.job(), &created.id).await.unwrap();
    assert_eq!(
        (kept.phase, kept.state.as_str()),
        (Phase::Succeeded, "Completed")
    );
    // Error classes.
    let bad = spec(json!({"runai": {"projectId": "5", "clusterId": "c", "image": ""}}));
    assert!(
        matches!(a.create(&t, bad.job(), "job-3").await, Err(RemoteError::Permanent { message }) if message.contains("image"))
    );
    assert!(matches!(
        a.get(&SecretString::from("nope".to_string()), ANY, &created.id)
            .await,
        Err(RemoteError::Auth { .. })
    ));
    inject(&sim, fault("runai", "get", FaultKind::TooManyRequests));
    assert_eq!(
        a.get(&t, ANY, &created.id)
            .await
            .unwrap_err()
            .requeue_after(),
        Duration::from_secs(7),
        "Retry-After honoured"
    );
    inject(&sim, fault("runai", "get", FaultKind::Unavailable));
    assert!(matches!(
        a.get(&t, ANY, &created.id).await,
        Err(RemoteError::Retriable { .. })
    ));
    inject(&sim, fault("runai", "create", FaultKind::CommitThenDrop));
    assert!(matches!(
        a.create(&t, s.job(), "job-4").await,
        Err(RemoteError::OutcomeUnknown { .. })
    ));
    assert!(
        a.lookup(&t, s.job(), "job-4").await.unwrap().is_some(),
        "the dropped create was committed"
    );
    assert_eq!(counters(&sim).creates["runai/job-4"], 1);
}

#[tokio::test]
async fn openpai_operations_and_error_classes() {
    let sim = simulator(None).await;
    let t = openpai_token(&sim, true).await;
    let a = platform_on(&sim, Some(PlatformApi::OpenpaiV2));
    let s = spec(
        json!({"openpai": {"image": "ubuntu", "commands": ["echo hi"], "parameters": {"SIM_RUN_SECONDS": "0.5", "SIM_QUEUE_SECONDS": "0.2", "SIM_OUTCOME": "fail"}}}),
    );
    assert_eq!(a.lookup(&t, s.job(), "pai-1").await.unwrap(), None);
    let v = a.create(&t, s.job(), "pai-1").await.unwrap();
    assert_eq!(v.id, "demo~pai-1");
    assert!(matches!(
        a.create(&t, s.job(), "pai-1").await,
        Err(RemoteError::Conflict { .. })
    ));
    let failed = until_phase(&*a, &t, ANY, "demo~pai-1", Phase::Failed).await;
    assert_eq!(
        (failed.state.as_str(), failed.message.as_deref()),
        (
            "FAILED",
            Some("exit code 1 (ContainerNonZeroExitCode): simulated failure (SIM_OUTCOME=fail)")
        )
    );
    assert_eq!(
        failed.url.as_deref(),
        Some(
            format!(
                "http://{}/openpai/job-detail.html?username=demo&jobName=pai-1",
                sim.addr
            )
            .as_str()
        ),
        "a page a person can open"
    );
    assert!(
        failed.started_at.is_some() && failed.finished_at.is_some(),
        "platform times"
    );
    let long = spec(
        json!({"openpai": {"image": "ubuntu", "commands": ["sleep 1"], "parameters": {"SIM_RUN_SECONDS": "60"}}}),
    );
    a.create(&t, long.job(), "pai-2").await.unwrap();
    a.cancel(&t, ANY, "demo~pai-2").await.unwrap();
    assert_eq!(
        a.get(&t, ANY, "demo~pai-2").await.unwrap().phase,
        Phase::Cancelled
    );
    let invalid = spec(
        json!({"openpai": {"protocol": {"protocolVersion": 2, "type": "job", "taskRoles": {"main": {"dockerImage": "missing", "commands": ["x"]}}}}}),
    );
    assert!(
        matches!(a.create(&t, invalid.job(), "pai-3").await, Err(RemoteError::Permanent { message }) if message.contains("Prerequisite missing does not exist"))
    );
    // 429 from the rate limiter is plain text with Retry-After.
    inject(&sim, fault("openpai", "get", FaultKind::TooManyRequests));
    let raw = http()
        .get(format!(
            "{}/api/v2/jobs/demo~pai-1",
            sim.base_url("openpai")
        ))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&t))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 429);
    assert_eq!(raw.headers()["retry-after"], "7");
    assert_eq!(
        raw.text().await.unwrap(),
        "Too many requests, please try again later."
    );
    let e: Value = json_of(
        http()
            .get(format!("{}/api/v2/jobs/demo~nope", sim.base_url("openpai")))
            .bearer_auth(secrecy::ExposeSecret::expose_secret(&t)),
    )
    .await;
    assert_eq!(e["code"], "NoJobError");
}

#[tokio::test]
async fn dai_operations_and_unknown_start_reconciliation() {
    let sim = simulator(None).await;
    let t = sim_token(&sim, "dai", "eggplant").await;
    assert_eq!(t["expires_in"], 300, "DAI tokens live 5 minutes");
    let wrong = http()
        .post(format!(
            "{}/auth/realms/eggplant/protocol/openid-connect/token",
            sim.base_url("dai")
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    let t = SecretString::from(t["access_token"].as_str().unwrap().to_string());
    let a = platform_on(&sim, Some(PlatformApi::DaiExecutions));
    assert!(!a.capabilities().lookup_by_name);
    let s = spec(
        json!({"dai": {"modelId": "m-1", "testCaseId": 3, "extra": {"SIM_RUN_SECONDS": 0.5, "SIM_QUEUE_SECONDS": 0.1}}}),
    );
    let since = Timestamp::now();
    let v = a.create(&t, s.job(), "ignored").await.unwrap();
    until_phase(&*a, &t, ANY, &v.id, Phase::Succeeded).await;
    // A start whose answer was dropped is found by listing, not started again.
    let s2 = spec(json!({"dai": {"modelId": "m-2", "extra": {"SIM_RUN_SECONDS": 60}}}));
    let (found, cancelled) = drop_find_and_cancel(&sim, &*a, &t, &s2, since).await;
    assert_eq!(found.phase, Phase::Queued);
    assert_eq!(counters(&sim).creates["dai/m-2"], 1);
    assert_eq!(cancelled.phase, Phase::Cancelled);
    let invalid = spec(json!({"dai": {"agentId": "a"}}));
    assert!(
        matches!(a.create(&t, invalid.job(), "x").await, Err(RemoteError::Permanent { message }) if message.contains("model_id"))
    );
}

#[tokio::test]
async fn simulator_survives_a_restart_with_its_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = || jobrelay::simulator::Config {
        clients: [("demo-client".to_string(), "demo-secret".to_string())].into(),
        state_file: Some(dir.path().join("state.json")),
        ..Default::default()
    };
    let sim = jobrelay::simulator::start(config(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let t = runai_token(&sim).await;
    let a = platform_on(&sim, Some(PlatformApi::RunaiTrainingsV1));
    let s = spec(json!({"runai": {"projectId": "5", "clusterId": "c", "image": "busybox"}}));
    let v = a.create(&t, s.job(), "durable").await.unwrap();
    sim.stop().await;
    let sim = jobrelay::simulator::start(config(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let a = platform_on(&sim, Some(PlatformApi::RunaiTrainingsV1));
    assert_eq!(
        a.get(&t, ANY, &v.id).await.unwrap().id,
        v.id,
        "job and token survive the restart"
    );
    assert_eq!(counters(&sim).creates["runai/durable"], 1);
}

#[tokio::test]
async fn generic_adapter_drives_a_rest_api_from_the_job_description() {
    // The DAI execution service is a plain REST API: drive it generically.
    let sim = simulator(None).await;
    let t = dai_token(&sim).await;
    let a = platform_on(&sim, None);
    let s = spec(json!({"generic": {
        "submitPath": "/execution_service/api/v1/executions",
        "body": {"model_id": "g-1", "SIM_RUN_SECONDS": 0.5, "SIM_QUEUE_SECONDS": 0.1},
        "statusPath": "/execution_service/api/v1/executions/{id}",
        "cancelPath": "/execution_service/api/v1/executions/{id}"
    }}));
    let v = a.create(&t, s.job(), "n").await.unwrap();
    assert_eq!(v.phase, Phase::Queued);
    let done = until_phase(&*a, &t, s.job(), &v.id, Phase::Succeeded).await;
    assert_eq!(done.state, "Passed");
    let long = spec(
        json!({"generic": {"submitPath": "/execution_service/api/v1/executions", "body": {"model_id": "g-2", "SIM_RUN_SECONDS": 60},
        "statusPath": "/execution_service/api/v1/executions/{id}", "cancelPath": "/execution_service/api/v1/executions/{id}"}}),
    );
    let v = a.create(&t, long.job(), "n").await.unwrap();
    a.cancel(&t, long.job(), &v.id).await.unwrap();
    assert_eq!(
        a.get(&t, long.job(), &v.id).await.unwrap().phase,
        Phase::Cancelled
    );
    assert_eq!(
        a.get(&t, long.job(), "missing").await,
        Err(RemoteError::NotFound)
    );
    assert!(!a.capabilities().lookup_by_name);
}

#[tokio::test]
async fn openpai_v1_api_for_pre_1_1_clusters() {
    let sim = simulator(None).await;
    let t = openpai_token(&sim, false).await;
    let a = platform_on(&sim, Some(PlatformApi::OpenpaiV1));
    let s = spec(
        json!({"openpai": {"image": "ubuntu", "commands": ["echo hi"], "parameters": {"SIM_RUN_SECONDS": "0.5", "SIM_QUEUE_SECONDS": "0.1"}}}),
    );
    assert_eq!(a.lookup(&t, s.job(), "v1-job").await.unwrap(), None);
    let v = a.create(&t, s.job(), "v1-job").await.unwrap();
    assert_eq!(v.id, "demo~v1-job");
    assert!(matches!(
        a.create(&t, s.job(), "v1-job").await,
        Err(RemoteError::Conflict { .. })
    ));
    let done = until_phase(&*a, &t, ANY, &v.id, Phase::Succeeded).await;
    assert_eq!(done.state, "SUCCEEDED");
    let long = spec(
        json!({"openpai": {"image": "ubuntu", "commands": ["sleep 99"], "parameters": {"SIM_RUN_SECONDS": "60"}}}),
    );
    a.create(&t, long.job(), "v1-long").await.unwrap();
    a.cancel(&t, ANY, "demo~v1-long").await.unwrap();
    assert_eq!(
        a.get(&t, ANY, "demo~v1-long").await.unwrap().state,
        "STOPPED"
    );
    // The stored request is the v1 config, not a v2 protocol.
    let body = sim.state.lock().jobs["v1:demo~v1-job"].body.clone();
    assert_eq!(
        (
            body["jobName"].as_str(),
            body["taskRoles"][0]["name"].as_str()
        ),
        (Some("v1-job"), Some("main"))
    );
}

#[tokio::test]
async fn dai_legacy_run_api() {
    let sim = simulator(None).await;
    let t = dai_token(&sim).await;
    let a = platform_on(&sim, Some(PlatformApi::DaiLegacyRun));
    let since = Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(1))
        .unwrap();
    let s = spec(
        json!({"dai": {"modelName": "shop", "group": "web", "extra": {"SIM_RUN_SECONDS": "0.5", "SIM_QUEUE_SECONDS": "0.1"}}}),
    );
    let v = a.create(&t, s.job(), "ignored").await.unwrap();
    assert_eq!(v.state, "Running");
    let done = until_phase(&*a, &t, ANY, &v.id, Phase::Succeeded).await;
    assert_eq!(done.state, "Passed");
    assert!(
        done.finished_at.is_some() && done.started_at.is_some(),
        "platform times"
    );
    // Dropped answer → found by listing the model's runs since the intent.
    let long = spec(
        json!({"dai": {"modelName": "checkout", "group": "web", "extra": {"SIM_RUN_SECONDS": "60"}}}),
    );
    let (_, aborted) = drop_find_and_cancel(&sim, &*a, &t, &long, since).await;
    // Incomplete is a failure in both DAI APIs (the controller tells its own abort apart).
    assert_eq!(
        (aborted.state.as_str(), aborted.phase),
        ("Incomplete", Phase::Failed)
    );
    assert_eq!(counters(&sim).creates["dai/checkout"], 1);
    let bad = spec(json!({"dai": {"modelId": "m"}}));
    assert!(matches!(
        a.create(&t, bad.job(), "x").await,
        Err(RemoteError::Permanent { .. })
    ));
}

#[tokio::test]
async fn pause_freezes_progress_until_resumed() {
    let sim = simulator(None).await;
    let t = runai_token(&sim).await;
    let a = platform_on(&sim, Some(PlatformApi::RunaiTrainingsV1));
    admin_post(&sim, "pause").await;
    let s = spec(
        json!({"runai": {"projectId": "5", "clusterId": "c", "image": "busybox", "environment": [{"name": "SIM_RUN_SECONDS", "value": "0.2"}, {"name": "SIM_QUEUE_SECONDS", "value": "0.1"}]}}),
    );
    let v = a.create(&t, s.job(), "frozen").await.unwrap();
    // However late one looks while paused, the job has not moved.
    let job = sim.state.lock().jobs[&v.id].clone();
    let paused_at = sim.state.lock().paused_at;
    let far_future = jobrelay::simulator::state::now_ms() + 3_600_000;
    assert_eq!(
        job.stage(far_future, paused_at),
        jobrelay::simulator::jobs::Stage::Queued
    );
    assert_eq!(a.get(&t, ANY, &v.id).await.unwrap().phase, Phase::Queued);
    admin_post(&sim, "resume").await;
    until_phase(&*a, &t, ANY, &v.id, Phase::Succeeded).await;
    let counters = admin_json(&sim, "counters").await;
    assert_eq!(counters["creates"]["runai/frozen"], 1);
}

/// A status read the platform does not offer (404 route, 405, 501) is reported as such, naming the
/// code and each read tried, not as the last phase forever; the legacy API falls back to its
/// documented `modelName` progress read.
#[tokio::test]
async fn dai_status_reads_that_are_not_offered_say_so() {
    let sim = simulator(None).await;
    let t = dai_token(&sim).await;
    let a = platform_on(&sim, Some(PlatformApi::DaiExecutions));
    let s = spec(json!({"dai": {"modelId": "m-9", "extra": {"SIM_RUN_SECONDS": 60}}}));
    let v = a.create(&t, s.job(), "x").await.unwrap();
    for (kind, code) in [
        (FaultKind::MethodNotAllowed, "405"),
        (FaultKind::NotImplemented, "501"),
        (FaultKind::RouteNotFound, "404"),
    ] {
        // The execution read, then the legacy progress read (which does not know the execution).
        inject(
            &sim,
            Fault {
                count: 1,
                ..fault("dai", "get", kind)
            },
        );
        let seen = a.get(&t, ANY, &v.id).await.unwrap();
        assert_eq!(
            (seen.phase, seen.state.as_str()),
            (Phase::Unknown, platform::STATUS_READ_UNSUPPORTED),
            "{kind:?}"
        );
        let m = seen.message.unwrap();
        assert!(
            m.contains(&format!(
                "GET /execution_service/api/v1/executions/{} answered HTTP {code}",
                v.id
            )) && m.contains("POST /api/run/progress id="),
            "{m}"
        );
    }
    // A 404 naming the execution is still "gone".
    assert_eq!(
        a.get(&t, ANY, "no-such-execution").await,
        Err(RemoteError::NotFound)
    );
    assert_eq!(
        a.get(&t, ANY, &v.id).await.unwrap().message,
        None,
        "read again once the fault is gone"
    );

    let legacy = platform_on(&sim, Some(PlatformApi::DaiLegacyRun));
    let ls = spec(
        json!({"dai": {"modelName": "cart", "group": "web", "extra": {"SIM_RUN_SECONDS": "60"}}}),
    );
    let run = legacy.create(&t, ls.job(), "x").await.unwrap();
    // Progress by id is refused once: the model's runs are read instead.
    inject(&sim, fault("dai", "get", FaultKind::NotImplemented));
    let seen = legacy.get(&t, ls.job(), &run.id).await.unwrap();
    assert_eq!(
        (seen.id.as_str(), seen.phase),
        (run.id.as_str(), Phase::Running)
    );
    // Both progress forms refused: said so.
    inject(
        &sim,
        Fault {
            count: 2,
            ..fault("dai", "get", FaultKind::MethodNotAllowed)
        },
    );
    let seen = legacy.get(&t, ls.job(), &run.id).await.unwrap();
    assert_eq!(seen.state, platform::STATUS_READ_UNSUPPORTED);
    let m = seen.message.unwrap();
    assert!(
        m.contains("POST /api/run/progress id=") && m.contains("modelName=cart answered HTTP 405"),
        "{m}"
    );
    // A cancel finds the run's process id the same way: progress by id refused, the model's runs.
    inject(&sim, fault("dai", "get", FaultKind::NotImplemented));
    legacy.cancel(&t, ls.job(), &run.id).await.unwrap();
    assert!(
        sim.state.lock().jobs[&run.id].frozen.is_some(),
        "the run is aborted"
    );
}

/// A lost DAI start is found on the platform's clock (its `Date` header), whether that clock is
/// behind ours (the start would be hidden) or ahead (an older identical start would be adopted).
#[tokio::test]
async fn dai_adoption_tolerates_clock_skew() {
    for skew in [-300i64, 300] {
        let sim = jobrelay::simulator::start(
            jobrelay::simulator::Config {
                clients: [("demo-client".to_string(), "demo-secret".to_string())].into(),
                clock_skew_seconds: skew,
                ..Default::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let t = dai_token(&sim).await;
        for (api, body, key) in [
            (
                PlatformApi::DaiExecutions,
                json!({"dai": {"modelId": "m-skew", "extra": {"SIM_RUN_SECONDS": 60}}}),
                "dai/m-skew",
            ),
            (
                PlatformApi::DaiLegacyRun,
                json!({"dai": {"modelName": "skew", "group": "g", "extra": {"SIM_RUN_SECONDS": "60"}}}),
                "dai/skew",
            ),
        ] {
            let a = platform_on(&sim, Some(api));
            let s = spec(body);
            let older = a.create(&t, s.job(), "x").await.unwrap();
            // The Date header has whole seconds: the older start is more than one before the intent.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let since = Timestamp::now();
            let (found, _) = drop_find_and_cancel(&sim, &*a, &t, &s, since).await;
            assert_ne!(
                found.id, older.id,
                "skew {skew}, {api:?}: not the older start"
            );
            assert_eq!(counters(&sim).creates[key], 2, "skew {skew}, {api:?}");
        }
    }
}

/// The legacy run API answers times as documented: `2018-05-31 17:00:01.366412+01`.
#[tokio::test]
async fn dai_legacy_times_are_in_the_documented_form() {
    let sim = simulator(None).await;
    let t = dai_token(&sim).await;
    let a = platform_on(&sim, Some(PlatformApi::DaiLegacyRun));
    let s = spec(json!({"dai": {"modelName": "fmt", "group": "g"}}));
    let run = a.create(&t, s.job(), "x").await.unwrap();
    let raw: Value = json_of(
        http()
            .post(format!("{}/api/run/progress", sim.base_url("dai")))
            .bearer_auth(secrecy::ExposeSecret::expose_secret(&t))
            .form(&[("id", run.id.as_str())]),
    )
    .await;
    let start = raw["starttime"].as_str().unwrap();
    let b = start.as_bytes();
    assert!(
        b.len() == 29
            && b[10] == b' '
            && b[19] == b'.'
            && (b[26] == b'+' || b[26] == b'-')
            && start[27..].bytes().all(|c| c.is_ascii_digit()),
        "{start}"
    );
    assert!(platform::parse_time(start).is_some());
}
