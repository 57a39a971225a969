//! Run policy end to end: suspend/resume, activeDeadlineSeconds, ttlSecondsAfterFinished, and a
//! RemoteJob waiting on an ApiClient that is not usable.

mod support;

use support::fixtures::*;

use jobrelay::crd::RemoteJobPhase;
use support::operator::{apply, counters, example};
use support::{kubectl, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn suspend_before_and_during_the_run_then_resume() {
    let (ns, sim, _op, jobs) = runai_bed("pol-suspend", None).await;
    apply(
        &ns.name,
        &runai_job(
            "napper",
            "  suspend: true\n",
            &[("SIM_RUN_SECONDS", "4"), ("SIM_QUEUE_SECONDS", "0.2")],
        ),
        None,
    );
    wait_phase(&jobs, "napper", RemoteJobPhase::Suspended).await;
    assert!(
        counters(&sim).creates.is_empty(),
        "a job suspended from the start is not submitted"
    );

    set_suspend(&ns.name, "napper", false);
    wait_phase(&jobs, "napper", RemoteJobPhase::Running).await;
    set_suspend(&ns.name, "napper", true);
    let s = wait_phase(&jobs, "napper", RemoteJobPhase::Suspended)
        .await
        .status
        .unwrap();
    assert_eq!(
        s.remote_state.as_deref(),
        Some("Stopped"),
        "suspended on the platform"
    );
    set_suspend(&ns.name, "napper", false);
    let s = wait_phase(&jobs, "napper", RemoteJobPhase::Succeeded)
        .await
        .status
        .unwrap();
    assert_eq!(s.attempts, 1, "Run:ai resumes in place");
    assert_eq!(counters(&sim).creates.values().sum::<u64>(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn deadline_cancels_and_ttl_deletes() {
    let (ns, sim, _op, jobs) = runai_bed("pol-deadline", None).await;
    apply(
        &ns.name,
        &runai_job(
            "slow",
            "  activeDeadlineSeconds: 3\n",
            &[("SIM_RUN_SECONDS", "600"), ("SIM_QUEUE_SECONDS", "0.2")],
        ),
        None,
    );
    apply(
        &ns.name,
        &runai_job(
            "brief",
            "  ttlSecondsAfterFinished: 2\n",
            &[("SIM_RUN_SECONDS", "1"), ("SIM_QUEUE_SECONDS", "0.2")],
        ),
        None,
    );
    let s = wait_phase(&jobs, "slow", RemoteJobPhase::Failed)
        .await
        .status
        .unwrap();
    let failed = s.conditions.iter().find(|c| c.type_ == "Failed").unwrap();
    assert_eq!(failed.reason, "DeadlineExceeded");
    let id = s.remote_id.unwrap();
    wait_for("the remote job to be cancelled", LONG, || async {
        sim.state.lock().jobs[&id].frozen.map(|_| ())
    })
    .await;
    // TTL: the finished RemoteJob goes away by itself.
    wait_for("brief to be deleted after its TTL", LONG, || async {
        (!kubectl(&["get", "rjob", "brief", "-n", &ns.name])
            .status
            .success())
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_waits_for_its_api_client_and_says_why() {
    let (ns, sim, _op, jobs) = bed("pol-wait", None).await;
    apply(
        &ns.name,
        &runai_job(
            "patient",
            "",
            &[("SIM_RUN_SECONDS", "1"), ("SIM_QUEUE_SECONDS", "0.2")],
        ),
        None,
    );
    wait_for("ApiClientNotFound condition", LONG, || async {
        let j = jobs.get("patient").await.ok()?;
        let c = j
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Submitted")?;
        (c.reason == "ApiClientNotFound" && c.status == "False").then_some(())
    })
    .await;
    apply(&ns.name, &runai_client(), Some(&sim));
    wait_phase(&jobs, "patient", RemoteJobPhase::Succeeded).await;
}

/// OpenPAI and DAI cannot suspend in place: suspend stops the job, resume submits a new attempt;
/// deleting a running job stops it remotely.
#[tokio::test(flavor = "multi_thread")]
async fn openpai_and_dai_suspend_by_stopping_and_cancel_on_delete() {
    let (ns, sim, _op, jobs) = bed("pol-stop", None).await;
    let slow = |text: String| {
        text.replace("SIM_RUN_SECONDS: \"5\"", "SIM_RUN_SECONDS: \"30\"")
            .replace("SIM_RUN_SECONDS: 5", "SIM_RUN_SECONDS: 30")
    };
    apply(&ns.name, &slow(example("openpai.yaml")), Some(&sim));
    apply(&ns.name, &slow(example("dai.yaml")), Some(&sim));
    for name in ["openpai-hello", "dai-model-run"] {
        let first = running_id(&jobs, name).await;
        set_suspend(&ns.name, name, true);
        wait_phase(&jobs, name, RemoteJobPhase::Suspended).await;
        assert!(
            sim.state.lock().jobs[&first].frozen.is_some(),
            "{name}: stopped remotely"
        );
        set_suspend(&ns.name, name, false);
        let s = wait_phase(&jobs, name, RemoteJobPhase::Running)
            .await
            .status
            .unwrap();
        assert_eq!(s.attempts, 2, "{name}: resumed as a new attempt");
        assert_ne!(s.remote_id.as_deref(), Some(first.as_str()));
        delete_jobs(&ns.name, &[name]);
        let id = s.remote_id.unwrap();
        assert!(
            sim.state.lock().jobs[&id].frozen.is_some(),
            "{name}: cancelled on delete"
        );
    }
    assert_eq!(counters(&sim).creates.values().sum::<u64>(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generic_rest_api_job_runs_to_success() {
    let (ns, sim, _op, jobs) = bed("pol-generic", None).await;
    let manifest = "apiVersion: v1\nkind: Secret\nmetadata: {name: ids}\nstringData: {client_id: demo-client, client_secret: demo-secret}\n---\napiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata: {name: rest}\nspec:\n  platform: generic\n  baseUrl: http://127.0.0.1:8090/dai\n  allowInsecureHttp: true\n  auth:\n    oauth2: {tokenUrl: 'http://127.0.0.1:8090/dai/auth/realms/x/protocol/openid-connect/token'}\n  credentialsSecretRef: {name: ids}\n---\napiVersion: jobrelay.io/v1alpha1\nkind: RemoteJob\nmetadata: {name: rest-job}\nspec:\n  clientRef: {name: rest}\n  generic:\n    submitPath: /execution_service/api/v1/executions\n    body: {model_id: m, SIM_RUN_SECONDS: 1}\n    statusPath: '/execution_service/api/v1/executions/{id}'\n    cancelPath: '/execution_service/api/v1/executions/{id}'\n";
    apply(&ns.name, manifest, Some(&sim));
    let s = wait_phase(&jobs, "rest-job", RemoteJobPhase::Succeeded)
        .await
        .status
        .unwrap();
    assert_eq!(s.remote_state.as_deref(), Some("Passed"));
    assert_eq!(counters(&sim).creates.values().sum::<u64>(), 1);
}
