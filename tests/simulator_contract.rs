//! The simulator against /work/shared/platforms.md: OpenPAI's YAML-only submit, Run:ai paging, pause, counters, and the state file.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn openpai_submit_contract() {
    let sim = sim().await;
    let token = openpai_token(&sim).await;
    use secrecy::ExposeSecret;
    let url = format!("{}/api/v2/jobs", sim.base_url("openpai"));
    let yaml = "protocolVersion: 2\nname: raw-1\ntype: job\nprerequisites:\n  - {name: img, type: dockerimage, uri: ubuntu:20.04}\ntaskRoles:\n  main:\n    instances: 1\n    dockerImage: img\n    resourcePerInstance: {cpu: 1, memoryMB: 1024, gpu: 0}\n    commands: [\"echo hello\"]\ndefaults: {virtualCluster: default}\nparameters: {SIM_QUEUE_SECONDS: \"30\"}\n";
    let send = |ct: &'static str, body: String| {
        let (url, t) = (url.clone(), token.expose_secret().to_string());
        async move {
            let r = http()
                .post(url)
                .bearer_auth(t)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // JSON content type breaks on the real server ([object Object]); the simulator rejects it too.
    let (s, v) = send(
        "application/json",
        serde_json::to_string(&json!({"name": "x"})).unwrap(),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("InvalidProtocolError")));
    let (s, v) = send("text/yaml", yaml.into()).await;
    assert_eq!((s, v["status"].as_u64()), (202, Some(202)));
    assert_eq!(
        v["message"],
        "Update job raw-1 for user alice successfully."
    );
    let (s, v) = send("text/yaml", yaml.into()).await;
    assert_eq!(
        (s, v["code"].as_str(), v["message"].as_str()),
        (
            409,
            Some("ConflictJobError"),
            Some("Job alice~raw-1 already exists.")
        )
    );
    let (s, v) = send(
        "text/yaml",
        yaml.replace("default}", "nope}").replace("raw-1", "raw-2"),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("NoVirtualClusterError"))
    );
    let r = http()
        .get(format!("{url}/alice~raw-1"))
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            v["jobStatus"]["state"].as_str(),
            v["jobStatus"]["username"].as_str()
        ),
        (Some("WAITING"), Some("alice"))
    );
    let r = http()
        .get(format!("{url}/alice~none"))
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "NoJobError");
    let r = http()
        .put(format!("{url}/alice~raw-1/executionType"))
        .bearer_auth(token.expose_secret())
        .json(&json!({"value": "PAUSE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn openpai_rate_limit_is_plain_text() {
    let sim = sim_with(|c| c.openpai_list_limit = 1).await;
    let token = openpai_token(&sim).await;
    use secrecy::ExposeSecret;
    let url = format!("{}/api/v2/jobs", sim.base_url("openpai"));
    assert_eq!(
        http()
            .get(&url)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http()
        .get(&url)
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let ra: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&ra));
    assert_eq!(
        r.text().await.unwrap(),
        "Too many requests, please try again later."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn runai_paging_and_pause() {
    let sim = sim().await;
    let token = runai_token(&sim).await;
    use secrecy::ExposeSecret;
    let base = sim.base_url("runai");
    for i in 0..3 {
        let body = json!({"name": format!("page-{i}"), "projectId": "p", "clusterId": "c", "spec": {"image": "i", "environmentVariables": [{"name": "SIM_RUN_SECONDS", "value": "600"}]}});
        let r = http()
            .post(format!("{base}/api/v1/workloads/trainings"))
            .bearer_auth(token.expose_secret())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["desiredPhase"].as_str(), v["actualPhase"].as_str()),
            (Some("Running"), Some("Creating"))
        );
    }
    let page = |q: &'static str| {
        let (url, t) = (
            format!("{base}/api/v1/workloads?{q}"),
            token.expose_secret().to_string(),
        );
        async move {
            http()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let v = page("limit=2").await;
    assert_eq!(
        (v["workloads"].as_array().unwrap().len(), v["next"].as_u64()),
        (2, Some(2))
    );
    let v = page("limit=2&offset=2").await;
    assert_eq!(
        (v["workloads"].as_array().unwrap().len(), v.get("next")),
        (1, None)
    );
    let v = page("filterBy=name==page-1,projectId==p").await;
    assert_eq!(v["workloads"][0]["name"], "page-1");
    // Pause freezes progress: a job that would finish within 0.3 s stays unfinished while paused
    // (checked well past that), then finishes once released.
    let short = json!({"name": "short", "projectId": "p", "clusterId": "c", "spec": {"image": "i", "environmentVariables": [{"name": "SIM_QUEUE_SECONDS", "value": "0"}, {"name": "SIM_RUN_SECONDS", "value": "0.1"}]}});
    admin_post(&sim, "pause", json!({"paused": true})).await;
    let r = http()
        .post(format!("{base}/api/v1/workloads/trainings"))
        .bearer_auth(token.expose_secret())
        .json(&short)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        page("filterBy=name==short").await["workloads"][0]["phase"],
        "Creating"
    );
    admin_post(&sim, "pause", json!({"paused": false})).await;
    wait_for("Completed after release", WAIT, || async {
        (page("filterBy=name==short").await["workloads"][0]["phase"] == "Completed").then_some(())
    })
    .await;
    let c = counters(&sim).await;
    assert_eq!(
        c["requests"]["POST /runai/api/v1/workloads/trainings 202"], 4,
        "three paging jobs and the paused one"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn state_file_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    let (p1, p2) = (path.clone(), path.clone());
    let sim = sim_with(move |c| c.state_file = Some(p1)).await;
    let token = runai_token(&sim).await;
    let a = adapter(&sim, jobrelay::crd::Platform::Runai, None);
    let j: jobrelay::crd::RunaiJob = serde_json::from_value(json!({"projectId": "p", "clusterId": "c", "image": "i", "environment": [{"name": "SIM_RUN_SECONDS", "value": "0.5"}]})).unwrap();
    let body = jobrelay::platform::JobBody::Runai(&j);
    let id = a
        .submit(&token, "persisted-1", body)
        .await
        .unwrap()
        .remote_id;
    sim.shutdown().await;

    let sim = sim_with(move |c| c.state_file = Some(p2)).await;
    // Tokens stay valid (the signing key persists) and the job keeps progressing.
    let a = adapter(&sim, jobrelay::crd::Platform::Runai, None);
    let done = wait_for("completion after restart", WAIT, || async {
        Some(a.get(&token, &id, body).await.unwrap()).filter(|o| o.phase.is_terminal())
    })
    .await;
    assert_eq!(done.remote_name.as_deref(), Some("persisted-1"));
    assert!(matches!(
        a.submit(&token, "persisted-1", body).await,
        Err(jobrelay::platform::PlatformError::Conflict { .. })
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn binary_serves_and_prints_demo_credentials() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_jobrelay"))
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "runai:get:status=503x1",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut client, mut addr) = (None, None);
    while let Ok(Ok(Some(line))) = tokio::time::timeout(WAIT, lines.next_line()).await {
        if let Some(c) = line.strip_prefix("demo client (Run:ai, DAI): ") {
            client = Some(c.to_string());
        }
        if let Some(a) = line.strip_prefix("simulator listening on ") {
            addr = Some(a.split_whitespace().next().unwrap().to_string());
            break;
        }
    }
    let (id, secret) = client
        .expect("demo client printed")
        .split_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    let addr = addr.expect("address printed");
    let r = http()
        .post(format!("{addr}/runai/api/v1/token"))
        .json(&json!({"clientId": id, "clientSecret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let get = || {
        http()
            .get(format!("{addr}/runai/api/v1/workloads/trainings/x"))
            .bearer_auth(t["accessToken"].as_str().unwrap())
            .send()
    };
    assert_eq!(
        get().await.unwrap().status(),
        503,
        "the --fault flag applies once"
    );
    assert_eq!(get().await.unwrap().status(), 404);
    child.kill().await.unwrap();
}
