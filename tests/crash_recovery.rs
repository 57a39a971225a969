//! The operator and the platforms crash together. The operator is SIGKILLed while jobs of all three
//! platforms run, the simulator stops with it; a new operator starts while the platforms are still
//! down (and keeps retrying its token endpoints), then the simulator comes back from its state file on the same address.
//! Every job finishes, and each was submitted exactly once over both lives of both processes.

mod support;

use std::time::Duration;

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use jobrelay::simulator::{self, Config};
use kube::Api;
use support::fixtures::wait_phase;
use support::operator::{Operator, apply, counters, example};
use support::{TestNamespace, wait_for};

const JOBS: [(&str, &str); 3] = [
    ("runai.yaml", "runai-train"),
    ("openpai.yaml", "openpai-hello"),
    ("dai.yaml", "dai-model-run"),
];

fn config(state_file: std::path::PathBuf) -> Config {
    Config {
        clients: [("demo-client".to_string(), "demo-secret".to_string())].into(),
        users: [("demo".to_string(), "demo-password".to_string())].into(),
        state_file: Some(state_file),
        ..Default::default()
    }
}

/// ApiClients whose token endpoint the operator found unreachable, from its /metrics.
async fn unreachable_clients(op: &Operator) -> usize {
    op.metrics()
        .await
        .lines()
        .filter(|l| {
            l.starts_with("jobrelay_token_requests_total") && l.contains("TokenEndpointUnreachable")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_and_platforms_crash_together_and_every_job_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("simulator.json");
    let ns = TestNamespace::new("e2e-crash");
    let sim = simulator::start(config(state.clone()), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = sim.addr;
    let mut op = Operator::start(&ns.name).await;
    for (file, _) in JOBS {
        // Long enough that the jobs are still running when everything goes down.
        let manifest = example(file)
            .replace("SIM_RUN_SECONDS: 5", "SIM_RUN_SECONDS: 20")
            .replace("value: \"5\"", "value: \"20\"")
            .replace("SIM_RUN_SECONDS: \"5\"", "SIM_RUN_SECONDS: \"20\"");
        apply(&ns.name, &manifest, Some(&sim));
    }
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    for (_, name) in JOBS {
        wait_phase(&jobs, name, RemoteJobPhase::Running).await;
    }
    // Exactly one create per job (not just three in all) before anything goes down.
    let before = counters(&sim).creates;
    assert_eq!(before.len(), JOBS.len(), "{before:?}");
    assert!(before.values().all(|n| *n == 1), "{before:?}");

    // Everything goes down at once; a new operator comes up first and finds the platforms gone.
    op.kill();
    sim.stop().await;
    let op = Operator::start(&ns.name).await;
    wait_for(
        "the new operator to meet the outage on every platform",
        Duration::from_secs(60),
        || async { (unreachable_clients(&op).await == JOBS.len()).then_some(()) },
    )
    .await;
    for (_, name) in JOBS {
        let job = jobs.get(name).await.unwrap();
        let status = job.status.unwrap();
        assert!(
            !matches!(
                status.phase,
                RemoteJobPhase::Failed | RemoteJobPhase::Succeeded
            ),
            "{name} is not decided while its platform is unreachable: {:?}",
            status.phase
        );
    }

    // The platforms return with what they stored.
    let sim = simulator::start(config(state), addr).await.unwrap();
    for (_, name) in JOBS {
        let job = wait_phase(&jobs, name, RemoteJobPhase::Succeeded).await;
        assert_eq!(job.status.unwrap().attempts, 1, "{name}");
    }
    let after = counters(&sim).creates;
    assert_eq!(after, before, "no job was submitted again");
}
