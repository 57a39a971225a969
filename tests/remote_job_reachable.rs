//! Issue 11 item 5: a RemoteJob shows whether the platform answers (condition RemoteReachable), with
//! a reason that says what failed, and one event per change of reason, not one per failed call.

mod support;

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use jobrelay::simulator::{Fault, FaultKind};
use support::fixtures::*;
use support::operator::{apply, inject};
use support::{kubectl_ok, wait_for};

fn reachable(job: &RemoteJob) -> Option<(String, String, String)> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "RemoteReachable")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttling_platform_shows_as_throttled_once_then_answered() {
    let (ns, sim, _op, jobs) = runai_bed("reach-429", None).await;
    apply(
        &ns.name,
        &runai_job(
            "polled",
            "  pollInterval: 1s\n",
            &[("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "3600")],
        ),
        None,
    );
    wait_phase(&jobs, "polled", RemoteJobPhase::Running).await;
    wait_for("RemoteReachable True", LONG, || async {
        let j = jobs.get("polled").await.ok()?;
        reachable(&j).filter(|r| r.0 == "True" && r.1 == "Answered")
    })
    .await;
    // Four status reads in a row answer 429.
    inject(
        &sim,
        Fault {
            count: 4,
            ..Fault::once("runai", "get", FaultKind::TooManyRequests)
        },
    );
    let throttled = wait_for("RemoteReachable False/Throttled", LONG, || async {
        let j = jobs.get("polled").await.ok()?;
        reachable(&j).filter(|r| r.0 == "False" && r.1 == "Throttled")
    })
    .await;
    assert!(throttled.2.contains("429"), "{}", throttled.2);
    wait_for("RemoteReachable True again", LONG, || async {
        let j = jobs.get("polled").await.ok()?;
        reachable(&j).filter(|r| r.0 == "True")
    })
    .await;
    assert!(
        sim.state.lock().faults.is_empty(),
        "all four 429s were answered"
    );
    // One Warning for the four refused reads, one Normal when it answered again.
    let reasons = kubectl_ok(&[
        "get",
        "events.events.k8s.io",
        "-n",
        &ns.name,
        "--field-selector",
        "regarding.name=polled",
        "-o",
        "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
    ]);
    let count = |r: &str| reasons.lines().filter(|l| *l == r).count();
    assert_eq!(count("Throttled"), 1, "events: {reasons}");
    assert_eq!(count("RemoteReachable"), 1, "events: {reasons}");
}

/// A status read the platform does not offer (405 to both DAI reads) shows as RemoteReachable False
/// with reason Unsupported and the reads tried, not only in remoteState; True again once it reads.
#[tokio::test(flavor = "multi_thread")]
async fn an_unsupported_status_read_shows_as_unsupported() {
    let ns = support::TestNamespace::new("reach-405");
    let sim = support::operator::simulator(None).await;
    let _op = support::operator::Operator::start(&ns.name).await;
    let manifest = support::operator::example("dai.yaml")
        .replace("SIM_RUN_SECONDS: 5", "SIM_RUN_SECONDS: 600")
        .replace(
            "deletionPolicy: Cancel",
            "deletionPolicy: Cancel\n  pollInterval: 1s",
        );
    apply(&ns.name, &manifest, Some(&sim));
    let jobs: kube::Api<RemoteJob> = kube::Api::namespaced(support::client().await, &ns.name);
    wait_for("RemoteReachable True", LONG, || async {
        let j = jobs.get("dai-model-run").await.ok()?;
        reachable(&j).filter(|r| r.0 == "True")
    })
    .await;
    // Every read answers 405 until the faults are cleared (count 0: forever).
    inject(
        &sim,
        Fault {
            count: 0,
            ..Fault::once("dai", "get", FaultKind::MethodNotAllowed)
        },
    );
    let unsupported = wait_for("RemoteReachable False/Unsupported", LONG, || async {
        let j = jobs.get("dai-model-run").await.ok()?;
        reachable(&j).filter(|r| r.0 == "False" && r.1 == "Unsupported")
    })
    .await;
    assert!(unsupported.2.contains("HTTP 405"), "{}", unsupported.2);
    sim.state.lock().faults.clear();
    wait_for("RemoteReachable True again", LONG, || async {
        let j = jobs.get("dai-model-run").await.ok()?;
        reachable(&j).filter(|r| r.0 == "True")
    })
    .await;
}

/// The token endpoint goes away while a job runs: RemoteReachable says the token endpoint failed
/// (not that the platform refused the credentials), and True again once tokens come back.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_endpoint_outage_shows_as_such_and_recovers() {
    let (ns, sim, _op, jobs) =
        runai_bed("reach-token", Some(std::time::Duration::from_secs(15))).await;
    apply(
        &ns.name,
        &runai_job(
            "tokened",
            "  pollInterval: 1s\n",
            &[("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "3600")],
        ),
        None,
    );
    wait_phase(&jobs, "tokened", RemoteJobPhase::Running).await;
    // Every token request answers 503 until the faults are cleared (count 0: forever).
    inject(
        &sim,
        Fault {
            count: 0,
            ..Fault::once("runai", "token", FaultKind::Unavailable)
        },
    );
    let down = wait_for(
        "RemoteReachable False for the token endpoint",
        LONG,
        || async {
            let j = jobs.get("tokened").await.ok()?;
            reachable(&j).filter(|r| r.0 == "False")
        },
    )
    .await;
    assert_eq!(down.1, "Unreachable", "{down:?}");
    assert!(
        down.2.contains("token endpoint") && !down.2.contains("refused the credentials"),
        "{down:?}"
    );
    sim.state.lock().faults.clear();
    wait_for("RemoteReachable True again", LONG, || async {
        let j = jobs.get("tokened").await.ok()?;
        reachable(&j).filter(|r| r.0 == "True")
    })
    .await;
}
