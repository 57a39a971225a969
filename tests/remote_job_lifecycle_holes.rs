//! Issue 11's lifecycle holes end to end: a cancel the platform refuses for a while is retried until
//! the remote job is stopped; a generic submit whose answer holds no id is not created again until a
//! person confirms.

mod support;

use std::time::Duration;

use jobrelay::crd::RemoteJobPhase;
use jobrelay::simulator::{Fault, FaultKind};
use support::fixtures::*;
use support::operator::{apply, counters, inject, requests};
use support::{kubectl_ok, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_cancel_is_retried_until_the_platform_confirms() {
    let (ns, sim, _op, jobs) = runai_bed("holes-cancel", None).await;
    // The first three cancels fail: 503, 503, 429 (each with Retry-After 1 s).
    inject(
        &sim,
        Fault {
            count: 2,
            ..Fault::once("runai", "cancel", FaultKind::Unavailable)
        },
    );
    inject(
        &sim,
        Fault::once("runai", "cancel", FaultKind::TooManyRequests),
    );
    apply(
        &ns.name,
        &runai_job(
            "overrun",
            "  activeDeadlineSeconds: 3\n",
            &[("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "600")],
        ),
        None,
    );
    let failed = wait_phase(&jobs, "overrun", RemoteJobPhase::Failed).await;
    assert_eq!(
        condition(&failed, "Failed").map(|c| c.1).as_deref(),
        Some("DeadlineExceeded")
    );
    let id = failed.status.unwrap().remote_id.unwrap();
    wait_for("the remote job to be stopped", LONG, || async {
        sim.state.lock().jobs[&id].frozen.map(|_| ())
    })
    .await;
    let settled = wait_for("cancelPending to clear", LONG, || async {
        jobs.get("overrun")
            .await
            .ok()
            .filter(|j| j.status.as_ref().is_some_and(|s| !s.cancel_pending))
    })
    .await;
    assert_eq!(settled.status.unwrap().phase, RemoteJobPhase::Failed);
    let cancels = requests(&sim, "DELETE ");
    assert!(
        cancels >= 4,
        "three refused cancels and one that worked: {cancels}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generic_submit_without_an_id_waits_for_a_person() {
    let (ns, sim, _op, jobs) = bed("holes-generic", None).await;
    // The DAI simulator's start answers have no `/nope`: every answer holds no id.
    let manifest = generic_job("lost", "/nope", "");
    apply(&ns.name, &manifest, Some(&sim));
    let creates = || counters(&sim).creates.values().sum::<u64>();
    let unknown = wait_for("Submitted=Unknown OutcomeUnknown", LONG, || async {
        jobs.get("lost").await.ok().filter(|j| {
            condition(j, "Submitted") == Some(("Unknown".into(), "OutcomeUnknown".into()))
        })
    })
    .await;
    assert_eq!(unknown.status.unwrap().phase, RemoteJobPhase::Submitting);
    // Long enough for several rounds of the old every-2-s resubmission.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(creates(), 1, "created once, then waits");
    let events = kubectl_ok(&[
        "get",
        "events",
        "-n",
        &ns.name,
        "--field-selector",
        "reason=OutcomeUnknown,type=Warning",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "a Warning event");

    kubectl_ok(&[
        "annotate",
        "rjob",
        "lost",
        "-n",
        &ns.name,
        "jobrelay.io/confirm-resubmit=1",
    ]);
    wait_for("the confirmed resubmit", LONG, || async {
        (creates() == 2).then_some(())
    })
    .await;
    wait_for(
        "attempt 2 waiting for its own confirmation",
        LONG,
        || async {
            jobs.get("lost").await.ok().filter(|j| {
                condition(j, "Submitted").map(|c| c.1).as_deref() == Some("OutcomeUnknown")
                    && j.status.as_ref().is_some_and(|s| {
                        s.attempts == 2
                            && s.message
                                .as_deref()
                                .is_some_and(|m| m.contains("confirm-resubmit=\"2\""))
                    })
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        creates(),
        2,
        "the confirmation of attempt 1 does not cover attempt 2"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deletion_held_by_a_failing_cancel_says_so_and_orphan_releases_it() {
    let (ns, sim, _op, jobs) = runai_bed("holes-held", None).await;
    apply(
        &ns.name,
        &runai_job(
            "held",
            "",
            &[("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "600")],
        ),
        None,
    );
    let running = wait_phase(&jobs, "held", RemoteJobPhase::Running).await;
    let id = running.status.unwrap().remote_id.unwrap();
    // Every cancel answers 503 until the faults are cleared (count 0: forever).
    inject(
        &sim,
        Fault {
            count: 0,
            ..Fault::once("runai", "cancel", FaultKind::Unavailable)
        },
    );
    kubectl_ok(&["delete", "rjob", "held", "-n", &ns.name, "--wait=false"]);
    let held = wait_for("CancelPending/CancelFailing", LONG, || async {
        jobs.get("held")
            .await
            .ok()
            .filter(|j| condition(j, "CancelPending").is_some_and(|c| c.1 == "CancelFailing"))
    })
    .await;
    let message = &held
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "CancelPending")
        .unwrap()
        .message;
    assert!(
        message.contains(&id) && message.contains("503") && message.contains("deletionPolicy"),
        "{message}"
    );
    // Retried (not given up) and reported once, not once per retry.
    let cancels = || requests(&sim, "DELETE ");
    let written = held.metadata.resource_version.clone();
    let seen = cancels();
    wait_for("three more refused cancels", LONG, || async {
        (cancels() >= seen + 3).then_some(())
    })
    .await;
    // Each retry failed as the last one did: no status write (the message no longer flips to
    // "cancelling" and back, nor counts minutes).
    let now = jobs.get("held").await.unwrap();
    assert_eq!(
        now.metadata.resource_version,
        written,
        "{:?}",
        now.status.and_then(|s| s.message)
    );
    let events = |reason: &str| {
        kubectl_ok(&[
            "get",
            "events",
            "-n",
            &ns.name,
            "--field-selector",
            &format!("reason={reason},type=Warning"),
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ])
    };
    let failing = events("CancelFailing");
    assert_eq!(failing.lines().count(), 1, "{failing}");
    assert!(jobs.get_opt("held").await.unwrap().is_some(), "still held");

    // The way out: Orphan on the object being deleted releases it at once, naming the remote job.
    kubectl_ok(&[
        "patch",
        "rjob",
        "held",
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        "{\"spec\":{\"deletionPolicy\":\"Orphan\"}}",
    ]);
    wait_for(
        "the RemoteJob to be gone",
        Duration::from_secs(20),
        || async {
            jobs.get_opt("held")
                .await
                .ok()
                .and_then(|j| j.is_none().then_some(()))
        },
    )
    .await;
    let orphaned = events("RemoteJobOrphaned");
    assert!(orphaned.contains(&id), "{orphaned}");
    assert!(sim.state.lock().jobs[&id].frozen.is_none(), "left running");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workload_stopped_on_the_platform_is_shown_and_not_resumed() {
    let (ns, sim, _op, jobs) = runai_bed("holes-stopped", None).await;
    apply(
        &ns.name,
        &runai_job(
            "stopped",
            "  pollInterval: 1s\n",
            &[("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "600")],
        ),
        None,
    );
    let running = wait_phase(&jobs, "stopped", RemoteJobPhase::Running).await;
    let id = running.status.unwrap().remote_id.unwrap();
    // A person stops the workload on the platform.
    sim.state.lock().jobs.get_mut(&id).unwrap().frozen =
        Some(jobrelay::simulator::jobs::Stage::Stopped);
    let shown = wait_for("Running=False/StoppedOnPlatform", LONG, || async {
        jobs.get("stopped")
            .await
            .ok()
            .filter(|j| condition(j, "Running").is_some_and(|c| c.1 == "StoppedOnPlatform"))
    })
    .await;
    let status = shown.status.unwrap();
    assert_eq!(
        (status.phase, status.attempts),
        (RemoteJobPhase::Suspended, 1)
    );
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Stopped")),
        "{:?}",
        status.message
    );
    // Several more observations (1 s apart) and still no resume, no new attempt.
    let reads = || {
        counters(&sim)
            .requests
            .iter()
            .filter(|(k, _)| k.starts_with("GET ") && k.contains("trainings"))
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    let seen = reads();
    wait_for("three more observations", LONG, || async {
        (reads() >= seen + 3).then_some(())
    })
    .await;
    let resumes = |sim: &jobrelay::simulator::Handle| {
        counters(sim)
            .requests
            .keys()
            .filter(|k| k.contains("resume"))
            .count()
    };
    assert_eq!(resumes(&sim), 0, "not resumed behind the person's back");
    assert_eq!(counters(&sim).creates.values().sum::<u64>(), 1);
    assert_eq!(
        sim.state.lock().jobs[&id].frozen,
        Some(jobrelay::simulator::jobs::Stage::Stopped)
    );

    // The documented way to have jobrelay resume it: suspend, then unsuspend the RemoteJob.
    let suspend = |on: bool| {
        kubectl_ok(&[
            "patch",
            "rjob",
            "stopped",
            "-n",
            &ns.name,
            "--type=merge",
            "-p",
            &format!("{{\"spec\":{{\"suspend\":{on}}}}}"),
        ])
    };
    suspend(true);
    wait_for("the stop taken over", LONG, || async {
        jobs.get("stopped")
            .await
            .ok()
            .filter(|j| j.status.as_ref().is_some_and(|s| s.stopped_by_operator))
    })
    .await;
    suspend(false);
    wait_for("the workload resumed", LONG, || async {
        sim.state.lock().jobs[&id].frozen.is_none().then_some(())
    })
    .await;
    wait_phase(&jobs, "stopped", RemoteJobPhase::Running).await;
}
