//! RemoteJobs end to end: the real apiserver, the real operator process, the platform simulator.

mod support;

use support::fixtures::*;

use std::time::Duration;

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use jobrelay::simulator::{Fault, FaultKind};
use kube::Api;
use support::operator::{Operator, apply, counters, example, inject, simulator};
use support::{TestNamespace, kubectl, kubectl_ok, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn every_platform_runs_to_success_exactly_once() {
    let ns = TestNamespace::new("e2e-all");
    let sim = simulator(None).await;
    let op = Operator::start(&ns.name).await;
    for f in ["runai.yaml", "openpai.yaml", "dai.yaml"] {
        apply(&ns.name, &example(f), Some(&sim));
    }
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    for name in ["runai-train", "openpai-hello", "dai-model-run"] {
        let job = wait_phase(&jobs, name, RemoteJobPhase::Succeeded).await;
        let s = job.status.unwrap();
        assert!(
            s.remote_id.is_some()
                && s.url.is_some()
                && s.start_time.is_some()
                && s.completion_time.is_some(),
            "{name}: {s:?}"
        );
        assert_eq!(s.attempts, 1);
        let complete = s.conditions.iter().find(|c| c.type_ == "Complete").unwrap();
        assert_eq!(complete.status, "True");
    }
    let c = counters(&sim);
    assert_eq!(
        c.creates.values().sum::<u64>(),
        3,
        "one create per RemoteJob: {:?}",
        c.creates
    );
    assert!(c.creates.values().all(|n| *n == 1));
    // Nothing went wrong: no create needs finding again (the operator wrote every intent and got
    // every answer), so no look-up by name.
    assert!(
        c.lookups.is_empty(),
        "look-ups on a clean run: {:?}",
        c.lookups
    );
    let events = kubectl_ok(&[
        "get",
        "events",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
    ]);
    // One event when a job reaches the platform and one when it finishes; the steps between are in
    // status (an event each doubled the apiserver writes per job).
    for reason in ["Submitted", "Succeeded", "Ready"] {
        assert!(
            events.lines().any(|l| l == reason),
            "no {reason} event: {events}"
        );
    }
    for reason in ["Submitting", "Queued", "Running"] {
        assert!(
            !events.lines().any(|l| l == reason),
            "a {reason} event: {events}"
        );
    }
    let submitted = events.lines().filter(|l| *l == "Submitted").count();
    assert_eq!(submitted, 3, "one Submitted event per job: {events}");
    // The jobs-by-phase gauge follows (refreshed every 10 s from the controller's cache).
    wait_for("jobs-by-phase gauge", Duration::from_secs(30), || async {
        op.metrics()
            .await
            .contains("jobrelay_remote_jobs{phase=\"Succeeded\"} 3")
            .then_some(())
    })
    .await;
    let metrics = op.metrics().await;
    assert!(
        metrics.contains("jobrelay_submit_duration_seconds_count 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_runs_are_retried_up_to_the_backoff_limit() {
    let (ns, sim, _op, jobs) = runai_bed("e2e-backoff", None).await;
    apply(
        &ns.name,
        &runai_job(
            "flaky",
            "  backoffLimit: 1\n",
            &[
                ("SIM_OUTCOME", "fail"),
                ("SIM_RUN_SECONDS", "0.5"),
                ("SIM_QUEUE_SECONDS", "0.2"),
            ],
        ),
        None,
    );
    let job = wait_phase(&jobs, "flaky", RemoteJobPhase::Failed).await;
    let s = job.status.unwrap();
    assert_eq!(s.attempts, 2);
    let failed = s.conditions.iter().find(|c| c.type_ == "Failed").unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.reason.as_str()),
        ("True", "BackoffLimitExceeded")
    );
    let creates = counters(&sim).creates;
    assert_eq!(
        creates.len(),
        2,
        "two attempts under two names: {creates:?}"
    );
    assert!(creates.keys().any(|k| k.ends_with("-1")) && creates.keys().any(|k| k.ends_with("-2")));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_cancels_remotely_and_orphan_leaves_the_job_running() {
    let (ns, sim, _op, jobs) = runai_bed("e2e-delete", None).await;
    let long = [("SIM_RUN_SECONDS", "600"), ("SIM_QUEUE_SECONDS", "0")];
    apply(&ns.name, &runai_job("cancel-me", "", &long), None);
    apply(
        &ns.name,
        &runai_job("orphan-me", "  deletionPolicy: Orphan\n", &long),
        None,
    );
    let cancel_id = running_id(&jobs, "cancel-me").await;
    let orphan_id = running_id(&jobs, "orphan-me").await;
    delete_jobs(&ns.name, &["cancel-me", "orphan-me"]);
    let stored = sim.state.lock().jobs.clone();
    assert!(stored[&cancel_id].frozen.is_some(), "cancelled remotely");
    assert!(stored[&orphan_id].frozen.is_none(), "left running");
    assert!(
        !kubectl(&["get", "rjob", "cancel-me", "-n", &ns.name])
            .status
            .success()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_when_the_create_answer_is_dropped_and_the_operator_is_killed() {
    let ns = TestNamespace::new("e2e-once");
    let sim = simulator(None).await;
    // The first create is stored but its answer never arrives.
    inject(
        &sim,
        Fault::once("runai", "create", FaultKind::CommitThenDrop),
    );
    let mut op = Operator::start(&ns.name).await;
    apply(&ns.name, &runai_client(), Some(&sim));
    apply(
        &ns.name,
        &runai_job("dropped", "", &[("SIM_RUN_SECONDS", "4")]),
        None,
    );
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    wait_phase(&jobs, "dropped", RemoteJobPhase::Running).await;
    // Crash the operator mid-run, wipe the status (as a careless `kubectl edit` might), start again.
    op.kill();
    kubectl_ok(&[
        "patch",
        "rjob",
        "dropped",
        "-n",
        &ns.name,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":null}"#,
    ]);
    let _op2 = Operator::start(&ns.name).await;
    let job = wait_phase(&jobs, "dropped", RemoteJobPhase::Succeeded).await;
    assert_eq!(job.status.unwrap().attempts, 1);
    let creates = counters(&sim).creates;
    assert_eq!(
        creates.values().sum::<u64>(),
        1,
        "exactly one remote job: {creates:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_and_outages_are_waited_out() {
    let ns = TestNamespace::new("e2e-storm");
    let sim = simulator(None).await;
    for (op, kind) in [
        ("create", FaultKind::TooManyRequests),
        ("get", FaultKind::Unavailable),
        ("get", FaultKind::ServerError),
    ] {
        inject(
            &sim,
            Fault {
                count: 3,
                ..Fault::once("*", op, kind)
            },
        );
    }
    let _op = Operator::start(&ns.name).await;
    for f in ["runai.yaml", "openpai.yaml"] {
        apply(&ns.name, &example(f), Some(&sim));
    }
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    for name in ["runai-train", "openpai-hello"] {
        wait_phase(&jobs, name, RemoteJobPhase::Succeeded).await;
    }
    let c = counters(&sim);
    assert_eq!(c.creates.values().sum::<u64>(), 2, "{:?}", c.creates);
    let throttled: u64 = c
        .requests
        .iter()
        .filter(|(k, _)| k.ends_with(" 429") || k.ends_with(" 503"))
        .map(|(_, v)| v)
        .sum();
    assert!(throttled >= 3, "the faults were hit: {:?}", c.requests);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_is_refreshed_once_and_the_job_goes_on() {
    let (ns, sim, _op, jobs) = runai_bed("e2e-401", None).await;
    apply(
        &ns.name,
        &runai_job("refused", "", &[("SIM_RUN_SECONDS", "3")]),
        None,
    );
    wait_phase(&jobs, "refused", RemoteJobPhase::Running).await;
    let before = counters(&sim)
        .token_requests
        .get("demo-client")
        .copied()
        .unwrap_or(0);
    inject(&sim, Fault::once("runai", "get", FaultKind::Unauthorized));
    wait_phase(&jobs, "refused", RemoteJobPhase::Succeeded).await;
    let c = counters(&sim);
    let after = c.token_requests.get("demo-client").copied().unwrap_or(0);
    assert_eq!(after - before, 1, "one forced refresh");
    assert!(c.requests.keys().any(|k| k.ends_with(" 401")));
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_right_after_sending_the_create_never_submits_twice() {
    let ns = TestNamespace::new("e2e-kill");
    let sim = simulator(None).await;
    // The create takes 3 s to be answered: the operator dies while it is in flight.
    inject(
        &sim,
        Fault {
            latency_ms: 3000,
            ..Fault::once("openpai", "create", FaultKind::Latency)
        },
    );
    let mut op = Operator::start(&ns.name).await;
    apply(&ns.name, &example("openpai.yaml"), Some(&sim));
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    wait_phase(&jobs, "openpai-hello", RemoteJobPhase::Submitting).await;
    wait_for("the create request to be in flight", LONG, || async {
        sim.state.lock().faults.is_empty().then_some(())
    })
    .await;
    op.kill();
    let _op2 = Operator::start(&ns.name).await;
    let job = wait_phase(&jobs, "openpai-hello", RemoteJobPhase::Succeeded).await;
    assert_eq!(job.status.unwrap().attempts, 1);
    let creates = counters(&sim).creates;
    assert_eq!(creates.values().sum::<u64>(), 1, "{creates:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_expiring_mid_run_are_refreshed_ahead_and_no_job_fails() {
    // Tokens live 12 s; the job runs 20 s and is polled every second.
    let (ns, sim, _op, jobs) = runai_bed("e2e-expiry", Some(Duration::from_secs(12))).await;
    let started = std::time::Instant::now();
    apply(
        &ns.name,
        &runai_job(
            "long",
            "  pollInterval: 1s\n",
            &[("SIM_RUN_SECONDS", "20"), ("SIM_QUEUE_SECONDS", "0")],
        ),
        None,
    );
    wait_phase(&jobs, "long", RemoteJobPhase::Succeeded).await;
    let c = counters(&sim);
    let refused: u64 = c
        .requests
        .iter()
        .filter(|(k, _)| k.ends_with(" 401"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        refused, 0,
        "refreshed ahead of expiry, never refused: {:?}",
        c.requests
    );
    let tokens = c.token_requests["demo-client"];
    // Bounds from the schedule, not from wall-clock luck: a 12 s token is refreshed 6 s before it
    // expires (refresh_margin: half the lifetime at most), so never more often than every 6 s of
    // however long this took on a busy machine, plus the first; and at least once more, since a
    // job polled for 20 s outlives one token and no call was refused.
    let elapsed = started.elapsed().as_secs();
    let most = 2 + elapsed.div_ceil(6);
    assert!(
        (2..=most).contains(&tokens),
        "one token per 6 s at most over {elapsed} s ({most}), at least 2: got {tokens}"
    );
}
