//! Issue 11, unknown outcomes end to end: a create answered 502 after the platform stored the job is
//! no proof that nothing was created (looked up and adopted where the platform can, else held for a
//! person); a deadline that passes while a submission's outcome is unknown searches for the job and
//! cancels it, or warns that it may be left running.

mod support;

use std::time::Duration;

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use jobrelay::simulator::{Fault, FaultKind};
use kube::Api;
use support::fixtures::*;
use support::operator::{Operator, apply, counters, example, inject, simulator};
use support::{TestNamespace, kubectl_ok, wait_for};

fn warnings(ns: &str, reason: &str) -> String {
    kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        &format!("reason={reason},type=Warning"),
        "-o",
        "jsonpath={.items[*].message}",
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generic_create_answered_502_is_not_sent_again() {
    let ns = TestNamespace::new("unknown-502-generic");
    let sim = simulator(None).await;
    let _op = Operator::start(&ns.name).await;
    inject(
        &sim,
        Fault::once("dai", "create", FaultKind::CommitThenBadGateway),
    );
    apply(&ns.name, &generic_job("proxied", "/id", ""), Some(&sim));
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    let held = wait_for("Submitted=Unknown OutcomeUnknown", LONG, || async {
        jobs.get("proxied").await.ok().filter(|j| {
            condition(j, "Submitted") == Some(("Unknown".into(), "OutcomeUnknown".into()))
        })
    })
    .await;
    let status = held.status.unwrap();
    assert_eq!(status.phase, RemoteJobPhase::Submitting);
    assert!(
        status.message.as_deref().is_some_and(|m| m.contains("502")),
        "{:?}",
        status.message
    );
    // Long enough for several rounds of the old resubmission of a "retriable" 502.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(counters(&sim).creates.values().sum::<u64>(), 1);
    assert!(!warnings(&ns.name, "OutcomeUnknown").trim().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runai_create_answered_502_is_adopted_by_name() {
    let (ns, sim, _op, jobs) = runai_bed("unknown-502-runai", None).await;
    inject(
        &sim,
        Fault::once("runai", "create", FaultKind::CommitThenBadGateway),
    );
    apply(
        &ns.name,
        &runai_job("proxied", "", &[("SIM_RUN_SECONDS", "600")]),
        None,
    );
    let adopted = wait_for("the stored workload adopted", LONG, || async {
        jobs.get("proxied")
            .await
            .ok()
            .filter(|j| j.status.as_ref().is_some_and(|s| s.remote_id.is_some()))
    })
    .await;
    let status = adopted.status.unwrap();
    assert_eq!(status.attempts, 1);
    let only = sim.state.lock().jobs.keys().cloned().collect::<Vec<_>>();
    assert_eq!(only, vec![status.remote_id.clone().unwrap()]);
    let c = counters(&sim);
    assert_eq!(c.creates.values().sum::<u64>(), 1);
    // Looked up, not sent again (a second create would have met the taken name).
    let posts: Vec<_> = c
        .requests
        .keys()
        .filter(|k| k.starts_with("POST ") && k.contains("trainings"))
        .collect();
    assert_eq!(posts.len(), 1, "one create call: {posts:?}");
    assert!(posts[0].ends_with(" 502"), "{posts:?}");
    assert_eq!(c.requests[posts[0]], 1);
    // Said as an unknown outcome (not a clean "retrying" refusal) until the lookup found it.
    assert!(!warnings(&ns.name, "OutcomeUnknown").trim().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_during_an_unknown_start_finds_and_cancels_it() {
    let ns = TestNamespace::new("unknown-deadline-dai");
    let sim = simulator(None).await;
    let _op = Operator::start(&ns.name).await;
    // The start is stored and its answer dropped; the search for it fails for a while (503 with
    // Retry-After 2 s, three times), long enough for the 1 s deadline to pass first.
    inject(
        &sim,
        Fault::once("dai", "create", FaultKind::CommitThenDrop),
    );
    inject(
        &sim,
        Fault {
            count: 3,
            retry_after: 2,
            ..Fault::once("dai", "list", FaultKind::Unavailable)
        },
    );
    let manifest = example("dai.yaml")
        .replace("SIM_RUN_SECONDS: 5", "SIM_RUN_SECONDS: 600")
        .replace("activeDeadlineSeconds: 1800", "activeDeadlineSeconds: 1");
    apply(&ns.name, &manifest, Some(&sim));
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    let failed = wait_phase(&jobs, "dai-model-run", RemoteJobPhase::Failed).await;
    assert_eq!(
        condition(&failed, "Failed").map(|c| c.1).as_deref(),
        Some("DeadlineExceeded")
    );
    let id = failed
        .status
        .unwrap()
        .remote_id
        .expect("the lost start was found before the job ended");
    wait_for("the found execution to be cancelled", LONG, || async {
        sim.state.lock().jobs[&id].frozen.map(|_| ())
    })
    .await;
    assert_eq!(counters(&sim).creates.values().sum::<u64>(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_on_an_outcome_that_cannot_be_found_warns() {
    let ns = TestNamespace::new("unknown-deadline-generic");
    let sim = simulator(None).await;
    let _op = Operator::start(&ns.name).await;
    inject(
        &sim,
        Fault::once("dai", "create", FaultKind::CommitThenDrop),
    );
    apply(
        &ns.name,
        &generic_job("lost", "/id", "  activeDeadlineSeconds: 3\n"),
        Some(&sim),
    );
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    let failed = wait_phase(&jobs, "lost", RemoteJobPhase::Failed).await;
    assert_eq!(
        condition(&failed, "Failed").map(|c| c.1).as_deref(),
        Some("DeadlineExceeded")
    );
    let remote_name = failed.status.unwrap().remote_name.unwrap();
    let said = wait_for("a RemoteJobMayBeOrphaned warning", LONG, || async {
        let w = warnings(&ns.name, "RemoteJobMayBeOrphaned");
        (!w.trim().is_empty()).then_some(w)
    })
    .await;
    assert!(
        said.contains(&remote_name) && said.contains("ApiClient rest"),
        "{said}"
    );
}
