//! The Run:ai adapter against the in-process simulator: every operation and error class.

mod common;

use std::time::Duration;

use common::*;
use jobrelay::crd::{Platform, RemoteJobPhase, RunaiJob};
use jobrelay::platform::{JobBody, PlatformError, remote_name};
use secrecy::SecretString;
use serde_json::json;

fn job(env: &[(&str, &str)]) -> RunaiJob {
    let environment: Vec<_> = env
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    serde_json::from_value(json!({"projectId": "p1", "clusterId": "0b8e4f3e-0000-4000-8000-000000000001", "image": "busybox", "environment": environment})).unwrap()
}

#[tokio::test]
async fn runs_to_success_and_failure() {
    let sim = sim().await;
    let token = runai_token(&sim).await;
    let a = adapter(&sim, Platform::Runai, None);
    for (outcome, want) in [
        ("succeed", RemoteJobPhase::Succeeded),
        ("fail", RemoteJobPhase::Failed),
    ] {
        // Running long enough for 20 ms polling to see it even on a loaded machine.
        let j = job(&[("SIM_OUTCOME", outcome), ("SIM_RUN_SECONDS", "0.6")]);
        let name = remote_name(
            "ns",
            &format!("job-{outcome}"),
            "abcdef12-3456",
            0,
            Platform::Runai,
        );
        let o = a.submit(&token, &name, JobBody::Runai(&j)).await.unwrap();
        assert_eq!(
            (o.phase, o.remote_state.as_str()),
            (RemoteJobPhase::Queued, "Creating")
        );
        assert_eq!(o.remote_name.as_deref(), Some(name.as_str()));
        assert!(o.created_at.is_some() && o.url.is_some());
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + WAIT;
        let done = loop {
            let o = a
                .get(&token, &o.remote_id, JobBody::Runai(&j))
                .await
                .unwrap();
            seen.push(o.remote_state.clone());
            if o.phase.is_terminal() {
                break o;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no terminal phase: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(done.phase, want);
        assert!(
            seen.iter().any(|s| s == "Running"),
            "passed through Running: {seen:?}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn lookup_list_and_conflict_adoption() {
    let sim = sim().await;
    let token = runai_token(&sim).await;
    let a = adapter(&sim, Platform::Runai, None);
    let j = job(&[("SIM_RUN_SECONDS", "30")]);
    let body = JobBody::Runai(&j);
    assert_eq!(a.lookup(&token, "ns-x-1-0", body).await.unwrap(), None);
    let created = a.submit(&token, "ns-x-1-0", body).await.unwrap();
    let err = a.submit(&token, "ns-x-1-0", body).await.unwrap_err();
    assert!(matches!(err, PlatformError::Conflict { .. }), "{err:?}");
    let found = a
        .lookup(&token, "ns-x-1-0", body)
        .await
        .unwrap()
        .expect("adoptable");
    assert_eq!(found.remote_id, created.remote_id);
    a.submit(&token, "ns-y-1-0", body).await.unwrap();
    let all = a.list(&token, Some("p1")).await.unwrap().unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        a.list(&token, Some("other"))
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert_eq!(counters(&sim).await["creates"]["runai/ns-x-1-0"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn suspend_resume_cancel() {
    let sim = sim().await;
    let token = runai_token(&sim).await;
    let a = adapter(&sim, Platform::Runai, None);
    let j = job(&[("SIM_RUN_SECONDS", "60")]);
    let body = JobBody::Runai(&j);
    let id = a.submit(&token, "ns-s-1-0", body).await.unwrap().remote_id;
    assert!(a.can_suspend());
    a.suspend(&token, &id).await.unwrap();
    let o = wait_for("Stopped", WAIT, || async {
        let o = a.get(&token, &id, body).await.unwrap();
        (o.remote_state == "Stopped").then_some(o)
    })
    .await;
    assert_eq!(o.phase, RemoteJobPhase::Suspended);
    a.resume(&token, &id).await.unwrap();
    wait_for("Running again", WAIT, || async {
        (a.get(&token, &id, body).await.unwrap().phase == RemoteJobPhase::Running).then_some(())
    })
    .await;
    a.cancel(&token, &id, body).await.unwrap();
    assert_eq!(
        a.get(&token, &id, body)
            .await
            .map(|o| o.phase)
            .unwrap_or(RemoteJobPhase::Cancelled),
        RemoteJobPhase::Cancelled
    );
    let gone = wait_for("404 after delete", WAIT, || async {
        a.get(&token, &id, body).await.err()
    })
    .await;
    assert!(matches!(gone, PlatformError::NotFound { .. }), "{gone:?}");
    assert!(matches!(
        a.cancel(&token, &id, body).await,
        Err(PlatformError::NotFound { .. })
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn error_classes() {
    let sim = sim().await;
    let token = runai_token(&sim).await;
    let a = adapter(&sim, Platform::Runai, None);
    let j = job(&[]);
    let body = JobBody::Runai(&j);

    // 401: bad token.
    let bad = SecretString::from("not-a-token".to_string());
    assert!(matches!(
        a.get(&bad, "x", body).await,
        Err(PlatformError::Auth { .. })
    ));
    // 400: a spec the platform rejects (invalid name), with the platform's message.
    match a.submit(&token, "Bad_Name", body).await {
        Err(PlatformError::Permanent { message }) => {
            assert!(message.contains("DNS-1123"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // 404.
    assert!(matches!(
        a.get(&token, "00000000-0000-0000-0000-000000000000", body)
            .await,
        Err(PlatformError::NotFound { .. })
    ));
    // 503, 429 with Retry-After, injected 401 on a valid token.
    add_fault(
        &sim,
        json!({"platform": "runai", "op": "get", "kind": "status", "status": 503, "times": 1}),
    )
    .await;
    assert!(matches!(
        a.get(&token, "x", body).await,
        Err(PlatformError::Retriable {
            retry_after: None,
            ..
        })
    ));
    add_fault(&sim, json!({"platform": "runai", "op": "list", "kind": "rate_limit", "retry_after": 7, "times": 1})).await;
    match a.list(&token, None).await {
        Err(PlatformError::Retriable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
    add_fault(
        &sim,
        json!({"platform": "runai", "op": "create", "kind": "unauthorized", "times": 1}),
    )
    .await;
    assert!(matches!(
        a.submit(&token, "ns-u-1-0", body).await,
        Err(PlatformError::Auth { .. })
    ));
    // Connection refused: retriable even for a create (nothing was sent).
    let dead = jobrelay::platform::Adapter::new(
        jobrelay::platform::PlatformConfig::new(Platform::Runai, "http://127.0.0.1:9"),
        http(),
    );
    assert!(matches!(
        dead.submit(&token, "ns-d-1-0", body).await,
        Err(PlatformError::Retriable { .. })
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn commit_then_drop_is_outcome_unknown_and_adoptable() {
    let sim = sim().await;
    let token = runai_token(&sim).await;
    let a = adapter(&sim, Platform::Runai, None);
    let j = job(&[]);
    let body = JobBody::Runai(&j);
    add_fault(
        &sim,
        json!({"platform": "runai", "op": "create", "kind": "commit_then_drop", "times": 1}),
    )
    .await;
    let err = a.submit(&token, "ns-drop-1-0", body).await.unwrap_err();
    assert!(
        matches!(err, PlatformError::OutcomeUnknown { .. }),
        "{err:?}"
    );
    // The caller looks up instead of resubmitting: the job is there, created exactly once.
    let adopted = a
        .lookup(&token, "ns-drop-1-0", body)
        .await
        .unwrap()
        .expect("stored before the drop");
    assert!(!adopted.remote_id.is_empty());
    let c = counters(&sim).await;
    assert_eq!(c["creates"]["runai/ns-drop-1-0"], 1);
    assert_eq!(
        c["requests"]["POST /runai/api/v1/workloads/trainings dropped"],
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn every_state_word_maps() {
    let sim = sim().await;
    let token = runai_token(&sim).await;
    let a = adapter(&sim, Platform::Runai, None);
    use RemoteJobPhase::*;
    let words = [
        ("Creating", Queued),
        ("Pending", Queued),
        ("Initializing", Running),
        ("Resuming", Running),
        ("Running", Running),
        ("Updating", Running),
        ("Degraded", Running),
        ("Stopping", Suspended),
        ("Stopped", Suspended),
        ("Deleting", Cancelled),
        ("Terminating", Running),
        ("Completed", Succeeded),
        ("Failed", Failed),
        ("Unknown", Unknown),
        ("Exploded", Unknown),
    ];
    for (i, (word, want)) in words.iter().enumerate() {
        let j = job(&[("SIM_STATE", word)]);
        let o = a
            .submit(&token, &format!("ns-w-{i}-0"), JobBody::Runai(&j))
            .await
            .unwrap();
        let got = a
            .get(&token, &o.remote_id, JobBody::Runai(&j))
            .await
            .unwrap();
        assert_eq!((got.remote_state.as_str(), got.phase), (*word, *want));
    }
    sim.shutdown().await;
}
