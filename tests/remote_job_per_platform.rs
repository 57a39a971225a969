//! The run policies on every platform: retries up to backoffLimit, Orphan, activeDeadlineSeconds and
//! ttlSecondsAfterFinished; and Retry-After honoured on a rate-limited create.

mod support;

use std::time::{Duration, Instant};

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use jobrelay::simulator::{Fault, FaultKind};
use kube::Api;
use support::fixtures::*;
use support::operator::{Operator, apply, counters, example, inject, simulator};
use support::{TestNamespace, kubectl, wait_for};

/// A RemoteJob of `platform` (on the ApiClient of its example) with simulator variables and extra spec.
fn job(platform: &str, name: &str, vars: &[(&str, &str)], extra: &str) -> String {
    let body = match platform {
        "runai" => {
            let env: String = vars
                .iter()
                .map(|(k, v)| format!("\n      - {{name: {k}, value: \"{v}\"}}"))
                .collect();
            format!(
                "  runai:\n    projectId: \"5\"\n    clusterId: c0ffee00-0000-4000-8000-000000000000\n    image: busybox\n    environment:{env}\n"
            )
        }
        "openpai" => {
            let params: String = vars
                .iter()
                .map(|(k, v)| format!("\n      {k}: \"{v}\""))
                .collect();
            format!(
                "  openpai:\n    image: ubuntu\n    commands: [\"echo hi\"]\n    parameters:{params}\n"
            )
        }
        _ => {
            let extra_vars: String = vars
                .iter()
                .map(|(k, v)| format!("\n      {k}: \"{v}\""))
                .collect();
            format!("  dai:\n    modelId: model-{name}\n    extra:{extra_vars}\n")
        }
    };
    format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: RemoteJob\nmetadata:\n  name: {name}\nspec:\n  clientRef: {{name: {platform}}}\n{body}{extra}"
    )
}

fn client_of(platform: &str) -> String {
    example(&format!("{platform}.yaml"))
        .split("\n---\n")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

async fn policies_on(platform: &str) {
    let (ns, sim, _op, jobs) = bed(&format!("pp-{platform}"), None).await;
    apply(&ns.name, &client_of(platform), Some(&sim));
    let quick = [("SIM_QUEUE_SECONDS", "0.2"), ("SIM_RUN_SECONDS", "0.5")];
    let long = [("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "600")];
    apply(
        &ns.name,
        &job(
            platform,
            "flaky",
            &[quick[0], quick[1], ("SIM_OUTCOME", "fail")],
            "  backoffLimit: 1\n",
        ),
        None,
    );
    apply(
        &ns.name,
        &job(platform, "orphan", &long, "  deletionPolicy: Orphan\n"),
        None,
    );
    apply(
        &ns.name,
        &job(platform, "slow", &long, "  activeDeadlineSeconds: 3\n"),
        None,
    );
    apply(
        &ns.name,
        &job(platform, "brief", &quick, "  ttlSecondsAfterFinished: 1\n"),
        None,
    );

    let s = wait_phase(&jobs, "flaky", RemoteJobPhase::Failed)
        .await
        .status
        .unwrap();
    let failed = s.conditions.iter().find(|c| c.type_ == "Failed").unwrap();
    assert_eq!(
        (s.attempts, failed.reason.as_str()),
        (2, "BackoffLimitExceeded"),
        "{platform}"
    );

    let orphan_id = running_id(&jobs, "orphan").await;
    delete_jobs(&ns.name, &["orphan"]);
    assert!(
        sim.state.lock().jobs[&orphan_id].frozen.is_none(),
        "{platform}: orphaned job left running"
    );

    let s = wait_phase(&jobs, "slow", RemoteJobPhase::Failed)
        .await
        .status
        .unwrap();
    assert_eq!(
        s.conditions
            .iter()
            .find(|c| c.type_ == "Failed")
            .unwrap()
            .reason,
        "DeadlineExceeded"
    );
    let id = s.remote_id.unwrap();
    wait_for(
        &format!("{platform}: deadline cancels remotely"),
        LONG,
        || async { sim.state.lock().jobs[&id].frozen.map(|_| ()) },
    )
    .await;

    wait_for(&format!("{platform}: TTL deletes"), LONG, || async {
        (!kubectl(&["get", "rjob", "brief", "-n", &ns.name])
            .status
            .success())
        .then_some(())
    })
    .await;
    // flaky ×2 attempts, orphan, slow, brief: one create each.
    assert_eq!(
        counters(&sim).creates.values().sum::<u64>(),
        5,
        "{platform}: {:?}",
        counters(&sim).creates
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runai_policies() {
    policies_on("runai").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openpai_policies() {
    policies_on("openpai").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dai_policies() {
    policies_on("dai").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured_on_a_rate_limited_create() {
    let ns = TestNamespace::new("pp-retry-after");
    let sim = simulator(None).await;
    inject(
        &sim,
        Fault {
            count: 2,
            retry_after: 3,
            ..Fault::once("openpai", "create", FaultKind::TooManyRequests)
        },
    );
    let _op = Operator::start(&ns.name).await;
    apply(&ns.name, &client_of("openpai"), Some(&sim));
    let started = Instant::now();
    apply(
        &ns.name,
        &job("openpai", "patient", &[("SIM_RUN_SECONDS", "0.5")], ""),
        None,
    );
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    wait_for("patient to be accepted", LONG, || async {
        jobs.get("patient")
            .await
            .ok()?
            .status?
            .remote_id
            .map(|_| ())
    })
    .await;
    // Two 429s asking for 3 s each: the accepted create cannot come sooner than 6 s.
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "Retry-After ignored: accepted after {:?}",
        started.elapsed()
    );
    wait_phase(&jobs, "patient", RemoteJobPhase::Succeeded).await;
    assert_eq!(counters(&sim).creates.values().sum::<u64>(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_jobs_of_one_project_are_observed_with_shared_list_calls() {
    let (ns, sim, _op, jobs) = bed("pp-batch", None).await;
    apply(&ns.name, &client_of("runai"), Some(&sim));
    let vars = [("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "8")];
    for i in 0..6 {
        apply(
            &ns.name,
            &job(
                "runai",
                &format!("batch-{i}"),
                &vars,
                "  pollInterval: 1s\n",
            ),
            None,
        );
    }
    for i in 0..6 {
        wait_phase(&jobs, &format!("batch-{i}"), RemoteJobPhase::Succeeded).await;
    }
    let requests = counters(&sim).requests;
    let count = |route: &str| {
        requests
            .iter()
            .filter(|(k, _)| k.starts_with(route))
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    let single = count("GET /runai/api/v1/workloads/trainings/{id} ");
    let listed = count("GET /runai/api/v1/workloads ");
    // Six jobs polled every second for about 8 s would be ~48 single GETs without batching.
    assert!(
        single < 24,
        "single GETs: {single} (lists: {listed}) {requests:?}"
    );
    assert!(listed > 6, "list calls served the polling: {listed}");
}
