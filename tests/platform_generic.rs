//! The generic adapter, driven entirely by a GenericJob, against the simulator's DAI execution
//! service (as "some REST API").

mod common;

use common::*;
use jobrelay::crd::{GenericJob, Platform, RemoteJobPhase};
use jobrelay::platform::{Adapter, JobBody, PlatformConfig, PlatformError};
use serde_json::json;

fn job(outcome: &str, cancel: bool) -> GenericJob {
    let mut j = json!({
        "submitPath": "/execution_service/api/v1/executions",
        "body": {"model_id": "{name}", "SIM_OUTCOME": outcome, "SIM_RUN_SECONDS": 0.2},
        "idPointer": "/execution_id",
        "statusPath": "/execution_service/api/v1/executions/{id}",
        "statePointer": "/status",
        "states": {"queued": [], "running": ["Running"], "succeeded": ["Passed"], "failed": ["Failed"], "cancelled": ["Aborted"]},
    });
    if cancel {
        j["cancelPath"] = json!("/execution_service/api/v1/executions/{id}");
    }
    serde_json::from_value(j).unwrap()
}

#[tokio::test]
async fn submit_get_cancel() {
    let sim = sim().await;
    let token = dai_token(&sim).await;
    let a = Adapter::new(
        PlatformConfig::new(Platform::Generic, sim.base_url("dai")),
        http(),
    );
    for (outcome, want) in [
        ("succeed", RemoteJobPhase::Succeeded),
        ("fail", RemoteJobPhase::Failed),
    ] {
        let j = job(outcome, false);
        let o = a
            .submit(&token, &format!("gen-{outcome}"), JobBody::Generic(&j))
            .await
            .unwrap();
        assert_eq!(o.phase, RemoteJobPhase::Running);
        let done = wait_for("terminal", WAIT, || async {
            let o = a
                .get(&token, &o.remote_id, JobBody::Generic(&j))
                .await
                .unwrap();
            o.phase.is_terminal().then_some(o)
        })
        .await;
        assert_eq!(done.phase, want);
        assert!(matches!(
            a.cancel(&token, &o.remote_id, JobBody::Generic(&j)).await,
            Err(PlatformError::Unsupported(_))
        ));
    }
    // {name} reached the body.
    assert_eq!(counters(&sim).await["creates"]["dai/gen-succeed"], 1);
    let j = job("succeed", true);
    let mut long = j.clone();
    long.body = Some(json!({"model_id": "m", "SIM_RUN_SECONDS": 60}));
    let o = a
        .submit(&token, "gen-cancel", JobBody::Generic(&long))
        .await
        .unwrap();
    a.cancel(&token, &o.remote_id, JobBody::Generic(&long))
        .await
        .unwrap();
    let c = wait_for("cancelled", WAIT, || async {
        Some(
            a.get(&token, &o.remote_id, JobBody::Generic(&long))
                .await
                .unwrap(),
        )
        .filter(|o| o.phase.is_terminal())
    })
    .await;
    assert_eq!(c.phase, RemoteJobPhase::Cancelled);
    assert!(matches!(
        a.get(&token, "missing", JobBody::Generic(&j)).await,
        Err(PlatformError::NotFound { .. })
    ));
    sim.shutdown().await;
}
