//! The OpenPAI adapter (v2 and v1) against the in-process simulator.

mod common;

use std::time::Duration;

use common::*;
use jobrelay::crd::{OpenpaiJob, Platform, PlatformApi, RemoteJobPhase};
use jobrelay::platform::{JobBody, PlatformError};
use secrecy::SecretString;
use serde_json::json;

fn job(params: serde_json::Value) -> OpenpaiJob {
    serde_json::from_value(
        json!({"image": "ubuntu:20.04", "commands": ["echo hi"], "parameters": params}),
    )
    .unwrap()
}

#[tokio::test]
async fn v2_and_v1_run_to_outcomes() {
    let sim = sim().await;
    let token = openpai_token(&sim).await;
    for api in [PlatformApi::OpenpaiV2, PlatformApi::OpenpaiV1] {
        let a = adapter(&sim, Platform::Openpai, Some(api));
        for (outcome, want) in [
            ("succeed", RemoteJobPhase::Succeeded),
            ("fail", RemoteJobPhase::Failed),
        ] {
            // Queued long enough for the first read to see WAITING even on a loaded machine.
            let j = job(json!({"SIM_OUTCOME": outcome, "SIM_QUEUE_SECONDS": "0.5"}));
            let name = format!("ns-{api:?}-{outcome}-0").to_lowercase();
            let o = a.submit(&token, &name, JobBody::Openpai(&j)).await.unwrap();
            assert_eq!(o.remote_id, format!("alice~{name}"));
            // Read-after-write: visible immediately as WAITING.
            let first = a
                .get(&token, &o.remote_id, JobBody::Openpai(&j))
                .await
                .unwrap();
            assert_eq!(
                (first.phase, first.remote_state.as_str()),
                (RemoteJobPhase::Queued, "WAITING")
            );
            let done = wait_for("terminal", WAIT, || async {
                let o = a
                    .get(&token, &o.remote_id, JobBody::Openpai(&j))
                    .await
                    .unwrap();
                o.phase.is_terminal().then_some(o)
            })
            .await;
            assert_eq!(done.phase, want, "{api:?}");
            assert!(
                done.completed_at.is_some() && done.created_at.is_some(),
                "{done:?}"
            );
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn commands_carry_controls_and_stop_cancels() {
    let sim = sim().await;
    let token = openpai_token(&sim).await;
    let a = adapter(&sim, Platform::Openpai, None);
    let j: OpenpaiJob = serde_json::from_value(
        json!({"image": "x", "commands": ["SIM_RUN_SECONDS=60 python train.py"]}),
    )
    .unwrap();
    let body = JobBody::Openpai(&j);
    let o = a.submit(&token, "ns-stop-1-0", body).await.unwrap();
    wait_for("RUNNING", WAIT, || async {
        (a.get(&token, &o.remote_id, body)
            .await
            .unwrap()
            .remote_state
            == "RUNNING")
            .then_some(())
    })
    .await;
    a.cancel(&token, &o.remote_id, body).await.unwrap();
    let stopped = wait_for("STOPPED", WAIT, || async {
        let o = a.get(&token, &o.remote_id, body).await.unwrap();
        (o.remote_state == "STOPPED").then_some(o)
    })
    .await;
    assert_eq!(stopped.phase, RemoteJobPhase::Cancelled);
    assert!(!a.can_suspend());
    assert!(matches!(
        a.suspend(&token, &o.remote_id).await,
        Err(PlatformError::Unsupported(_))
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn lookup_list_conflict() {
    let sim = sim().await;
    let token = openpai_token(&sim).await;
    let a = adapter(&sim, Platform::Openpai, None);
    let j = job(json!({}));
    let body = JobBody::Openpai(&j);
    assert_eq!(a.lookup(&token, "ns-c-1-0", body).await.unwrap(), None);
    a.submit(&token, "ns-c-1-0", body).await.unwrap();
    match a.submit(&token, "ns-c-1-0", body).await {
        Err(PlatformError::Conflict { message }) => {
            assert!(message.contains("ConflictJobError"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        a.lookup(&token, "ns-c-1-0", body)
            .await
            .unwrap()
            .unwrap()
            .remote_id,
        "alice~ns-c-1-0"
    );
    // Names are never freed: even a stopped job keeps its name.
    a.cancel(&token, "alice~ns-c-1-0", body).await.unwrap();
    assert!(matches!(
        a.submit(&token, "ns-c-1-0", body).await,
        Err(PlatformError::Conflict { .. })
    ));
    a.submit(&token, "ns-c-2-0", body).await.unwrap();
    let listed = a.list(&token, None).await.unwrap().unwrap();
    let mut names: Vec<_> = listed.iter().map(|o| o.remote_id.clone()).collect();
    names.sort();
    assert_eq!(names, ["alice~ns-c-1-0", "alice~ns-c-2-0"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn errors_rate_limit_and_auth() {
    let sim = sim_with(|c| {
        c.openpai_submit_limit = 2;
        c.openpai_submit_window_seconds = 120;
    })
    .await;
    let token = openpai_token(&sim).await;
    let a = adapter(&sim, Platform::Openpai, None);
    let j = job(json!({}));
    let body = JobBody::Openpai(&j);
    // A protocol whose task role names a missing prerequisite: 400 InvalidProtocolError.
    let bad: OpenpaiJob = serde_json::from_value(json!({"protocol": {"protocolVersion": 2, "type": "job", "taskRoles": {"m": {"dockerImage": "nope", "resourcePerInstance": {"cpu": 1, "memoryMB": 1, "gpu": 0}, "commands": ["x"]}}}})).unwrap();
    match a.submit(&token, "ns-bad-1-0", JobBody::Openpai(&bad)).await {
        Err(PlatformError::Permanent { message }) => assert!(
            message.contains("Prerequisite nope does not exist"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    a.submit(&token, "ns-r-1-0", body).await.unwrap();
    // The rejected protocol above counted against the limit too (the limiter runs first).
    match a.submit(&token, "ns-r-2-0", body).await {
        Err(PlatformError::Retriable {
            retry_after: Some(d),
            message,
        }) => {
            assert!(
                d > Duration::from_secs(60) && d <= Duration::from_secs(120),
                "{d:?}"
            );
            assert!(message.contains("Too many requests"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.get(&token, "alice~missing", body).await,
        Err(PlatformError::NotFound { .. })
    ));
    let bad_token = SecretString::from("x.y.z".to_string());
    assert!(matches!(
        a.get(&bad_token, "alice~ns-r-1-0", body).await,
        Err(PlatformError::Auth { .. })
    ));
    add_fault(
        &sim,
        json!({"platform": "openpai", "op": "get", "kind": "status", "status": 500, "times": 1}),
    )
    .await;
    assert!(
        a.get(&token, "alice~ns-r-1-0", body)
            .await
            .unwrap_err()
            .is_retriable()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn commit_then_drop_then_lookup() {
    let sim = sim().await;
    let token = openpai_token(&sim).await;
    let a = adapter(&sim, Platform::Openpai, None);
    let j = job(json!({}));
    let body = JobBody::Openpai(&j);
    add_fault(
        &sim,
        json!({"platform": "openpai", "op": "create", "kind": "commit_then_drop", "times": 1}),
    )
    .await;
    assert!(matches!(
        a.submit(&token, "ns-d-1-0", body).await,
        Err(PlatformError::OutcomeUnknown { .. })
    ));
    assert!(a.lookup(&token, "ns-d-1-0", body).await.unwrap().is_some());
    assert_eq!(counters(&sim).await["creates"]["openpai/alice~ns-d-1-0"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_state_word_maps() {
    let sim = sim().await;
    let token = openpai_token(&sim).await;
    let a = adapter(&sim, Platform::Openpai, None);
    use RemoteJobPhase::*;
    let words = [
        ("WAITING", Queued),
        ("RUNNING", Running),
        ("STOPPING", Running),
        ("SUCCEEDED", Succeeded),
        ("FAILED", Failed),
        ("STOPPED", Cancelled),
        ("UNKNOWN", Unknown),
    ];
    for (i, (word, want)) in words.iter().enumerate() {
        let j = job(json!({"SIM_STATE": word}));
        let o = a
            .submit(&token, &format!("ns-w-{i}-0"), JobBody::Openpai(&j))
            .await
            .unwrap();
        let got = a
            .get(&token, &o.remote_id, JobBody::Openpai(&j))
            .await
            .unwrap();
        assert_eq!((got.remote_state.as_str(), got.phase), (*word, *want));
    }
    sim.shutdown().await;
}
