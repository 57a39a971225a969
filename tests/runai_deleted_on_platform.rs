//! Issue 11 item 6, end to end: Run:ai deletes workloads (a person, or
//! `autoDeletionTimeAfterCompletionSeconds`); after that the workload answers 404 by id and is listed
//! only under `?deleted=true`. A job that completed keeps its outcome; one deleted while it ran was
//! cancelled on the platform, and says so.

mod support;

use jobrelay::crd::{RemoteJobPhase, RemoteJobStatus};
use support::fixtures::*;
use support::operator::{apply, counters, requests};
use support::wait_for;

/// In one step under the simulator's lock, so the operator cannot have seen the end before the
/// deletion: the workload `id` ends now and is deleted on the platform.
fn complete_and_delete(sim: &jobrelay::simulator::Handle, id: &str) {
    let mut inner = sim.state.lock();
    let paused = inner.paused_at;
    let now = jobrelay::simulator::state::now_ms();
    let job = inner.jobs.get_mut(id).expect("the workload exists");
    job.run_ms = (now - job.started_ms()).max(0);
    job.delete(now, paused);
}

/// Waits until RemoteJob `name` has ended; its status.
async fn ended(jobs: &kube::Api<jobrelay::crd::RemoteJob>, name: &str) -> RemoteJobStatus {
    let job = wait_for(&format!("{name} to end"), LONG, || async {
        jobs.get(name)
            .await
            .ok()
            .filter(|j| j.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
    })
    .await;
    job.status.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_workload_deleted_on_the_platform_keeps_its_outcome() {
    let (ns, sim, _op, jobs) = runai_bed("runai-deleted", None).await;
    let long_run = [("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "600")];
    for name in ["done", "dropped"] {
        apply(
            &ns.name,
            &runai_job(name, "  pollInterval: 1s\n", &long_run),
            None,
        );
    }
    let done = running_id(&jobs, "done").await;
    let dropped = running_id(&jobs, "dropped").await;

    // Completed and deleted between two polls: the 404 by id is not the end of the story.
    complete_and_delete(&sim, &done);
    let status = ended(&jobs, "done").await;
    assert_eq!(
        status.phase,
        RemoteJobPhase::Succeeded,
        "{:?}",
        status.message
    );
    assert_eq!(status.attempts, 1, "not submitted again");

    // Deleted by a person while it ran: cancelled there, and the message says so.
    // Through the simulator's admin call, as a person deleting it in the Run:ai UI.
    let url = format!("http://{}/_admin/jobs/{dropped}/delete", sim.addr);
    let answer = reqwest::Client::new().post(&url).send().await.unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
    let status = ended(&jobs, "dropped").await;
    assert_eq!(
        status.phase,
        RemoteJobPhase::Cancelled,
        "{:?}",
        status.message
    );
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("deleted on the platform at ") && message.contains("in phase Deleting"),
        "{message}"
    );

    let deleted_reads = requests(&sim, "GET /runai/api/v1/workloads 200");
    assert!(
        deleted_reads >= 2,
        "looked up among deleted workloads: {deleted_reads}"
    );
    assert_eq!(counters(&sim).creates.values().sum::<u64>(), 2);
}
