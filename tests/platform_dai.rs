//! The DAI adapter (execution service and legacy run API) against the in-process simulator,
//! including the unknown-start reconciliation.

mod common;

use std::time::Duration;

use common::*;
use jobrelay::crd::{DaiJob, Platform, PlatformApi, RemoteJobPhase};
use jobrelay::platform::dai::StartReconciliation;
use jobrelay::platform::{Adapter, JobBody, PlatformError};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

fn exec_job(extra: serde_json::Value) -> DaiJob {
    serde_json::from_value(
        json!({"modelId": "6f1c0000-0000-4000-8000-00000000aaaa", "extra": extra}),
    )
    .unwrap()
}

fn legacy_job(extra: serde_json::Value) -> DaiJob {
    serde_json::from_value(json!({"modelName": "checkout", "group": "qa", "extra": extra})).unwrap()
}

fn dai(a: &Adapter) -> &jobrelay::platform::dai::DaiAdapter {
    match a {
        Adapter::Dai(d) => d,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn both_apis_run_to_outcomes() {
    let sim = sim().await;
    let token = dai_token(&sim).await;
    let cases = [
        (
            PlatformApi::DaiExecutions,
            exec_job as fn(serde_json::Value) -> DaiJob,
        ),
        (PlatformApi::DaiLegacyRun, legacy_job),
    ];
    for (api, make) in cases {
        let a = adapter(&sim, Platform::Dai, Some(api));
        for (outcome, want, word) in [
            ("succeed", RemoteJobPhase::Succeeded, "Passed"),
            ("fail", RemoteJobPhase::Failed, "Failed"),
            ("incomplete", RemoteJobPhase::Failed, "Incomplete"),
        ] {
            let j = make(json!({"SIM_OUTCOME": outcome}));
            let o = a.submit(&token, "ignored", JobBody::Dai(&j)).await.unwrap();
            assert_eq!(o.phase, RemoteJobPhase::Running, "{api:?}");
            assert!(!o.remote_id.is_empty());
            let done = wait_for("terminal", WAIT, || async {
                let o = a.get(&token, &o.remote_id, JobBody::Dai(&j)).await.unwrap();
                o.phase.is_terminal().then_some(o)
            })
            .await;
            assert_eq!(
                (done.phase, done.remote_state.as_str()),
                (want, word),
                "{api:?}"
            );
            assert!(
                done.started_at.is_some() && done.completed_at.is_some(),
                "{done:?}"
            );
        }
        assert_eq!(
            a.lookup(&token, "x", JobBody::Dai(&make(json!({}))))
                .await
                .unwrap(),
            None
        );
        assert_eq!(a.list(&token, None).await.unwrap(), None);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn abort_both_apis() {
    let sim = sim().await;
    let token = dai_token(&sim).await;
    for (api, j, word) in [
        (
            PlatformApi::DaiExecutions,
            exec_job(json!({"SIM_RUN_SECONDS": 60})),
            "Aborted",
        ),
        (
            PlatformApi::DaiLegacyRun,
            legacy_job(json!({"SIM_RUN_SECONDS": 60})),
            "Incomplete",
        ),
    ] {
        let a = adapter(&sim, Platform::Dai, Some(api));
        let id = a
            .submit(&token, "x", JobBody::Dai(&j))
            .await
            .unwrap()
            .remote_id;
        a.cancel(&token, &id, JobBody::Dai(&j)).await.unwrap();
        let o = wait_for("aborted", WAIT, || async {
            let o = a.get(&token, &id, JobBody::Dai(&j)).await.unwrap();
            (o.remote_state == word).then_some(o)
        })
        .await;
        assert!(o.phase.is_terminal());
        assert!(matches!(
            a.cancel(
                &token,
                "00000000-0000-0000-0000-000000000000",
                JobBody::Dai(&j)
            )
            .await,
            Err(PlatformError::NotFound { .. })
        ));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_start_is_reconciled_not_retried() {
    let sim = sim().await;
    let token = dai_token(&sim).await;
    for (api, j) in [
        (
            PlatformApi::DaiExecutions,
            exec_job(json!({"SIM_RUN_SECONDS": 30})),
        ),
        (
            PlatformApi::DaiLegacyRun,
            legacy_job(json!({"SIM_RUN_SECONDS": 30})),
        ),
    ] {
        let a = adapter(&sim, Platform::Dai, Some(api));
        let window = Duration::from_secs(30);
        // Nothing started yet.
        let before = Timestamp::now();
        assert_eq!(
            dai(&a)
                .reconcile_unknown_start(&token, &j, before, window)
                .await
                .unwrap(),
            StartReconciliation::NotStarted
        );
        add_fault(
            &sim,
            json!({"platform": "dai", "op": "create", "kind": "commit_then_drop", "times": 1}),
        )
        .await;
        let sent_at = Timestamp::now();
        let err = a.submit(&token, "x", JobBody::Dai(&j)).await.unwrap_err();
        assert!(
            matches!(err, PlatformError::OutcomeUnknown { .. }),
            "{err:?}"
        );
        match dai(&a)
            .reconcile_unknown_start(&token, &j, sent_at, window)
            .await
            .unwrap()
        {
            StartReconciliation::Found(o) => assert_eq!(o.phase, RemoteJobPhase::Running),
            other => panic!("{api:?}: {other:?}"),
        }
        // A second start in the same window makes it ambiguous: never guess.
        a.submit(&token, "x", JobBody::Dai(&j)).await.unwrap();
        assert!(
            matches!(dai(&a).reconcile_unknown_start(&token, &j, sent_at, window).await.unwrap(), StartReconciliation::Ambiguous(v) if v.len() == 2)
        );
    }
    let c = counters(&sim).await;
    assert_eq!(c["creates"]["dai/6f1c0000-0000-4000-8000-00000000aaaa"], 2);
    assert_eq!(c["creates"]["dai/checkout"], 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn error_classes() {
    let sim = sim().await;
    let token = dai_token(&sim).await;
    let a = adapter(&sim, Platform::Dai, None);
    // 422: a body the execution service rejects (execution_type overridden).
    let bad = exec_job(json!({"execution_type": "dreaming"}));
    match a.submit(&token, "x", JobBody::Dai(&bad)).await {
        Err(PlatformError::Permanent { message }) => {
            assert!(message.contains("execution_type"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let j = exec_job(json!({}));
    add_fault(
        &sim,
        json!({"platform": "dai", "op": "create", "kind": "status", "status": 503, "times": 1}),
    )
    .await;
    // 503 before anything was stored: retriable (the simulator answered; nothing was created).
    assert!(
        a.submit(&token, "x", JobBody::Dai(&j))
            .await
            .unwrap_err()
            .is_retriable()
    );
    assert!(
        counters(&sim).await["creates"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    add_fault(
        &sim,
        json!({"platform": "dai", "op": "get", "kind": "unauthorized", "times": 1}),
    )
    .await;
    assert!(matches!(
        a.get(&token, "x", JobBody::Dai(&j)).await,
        Err(PlatformError::Auth { .. })
    ));
    assert!(matches!(
        a.get(&token, "nope", JobBody::Dai(&j)).await,
        Err(PlatformError::NotFound { .. })
    ));
    // Legacy: missing group is a 400.
    let legacy = adapter(&sim, Platform::Dai, Some(PlatformApi::DaiLegacyRun));
    let no_group: DaiJob = serde_json::from_value(json!({"modelName": "m"})).unwrap();
    assert!(matches!(
        legacy.submit(&token, "x", JobBody::Dai(&no_group)).await,
        Err(PlatformError::Permanent { .. })
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn every_state_word_maps() {
    let sim = sim().await;
    let token = dai_token(&sim).await;
    let a = adapter(&sim, Platform::Dai, None);
    use RemoteJobPhase::*;
    for (word, want) in [
        ("Running", Running),
        ("Passed", Succeeded),
        ("Failed", Failed),
        ("Incomplete", Failed),
        ("Aborted", Cancelled),
        ("Mystery", Unknown),
    ] {
        let j = exec_job(json!({"SIM_STATE": word}));
        let o = a.submit(&token, "x", JobBody::Dai(&j)).await.unwrap();
        let got = a.get(&token, &o.remote_id, JobBody::Dai(&j)).await.unwrap();
        assert_eq!((got.remote_state.as_str(), got.phase), (word, want));
    }
    sim.shutdown().await;
}
