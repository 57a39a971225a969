//! Issue 11 item 3: in-use protection of ApiClients. Deleting ApiClient, Secret and RemoteJobs at once
//! (what a namespace deletion does, in any order) still cancels every remote job whose policy is
//! Cancel and then lets everything go; an ApiClient nobody uses is deleted at once.

mod support;

use std::time::{Duration, Instant};

use jobrelay::crd::{ApiClient, RemoteJob, RemoteJobPhase};
use kube::{Api, ResourceExt};
use support::fixtures::*;
use support::operator::apply;
use support::{kubectl_ok, wait_for};

const IN_USE: &str = "jobrelay.io/in-use";

#[tokio::test(flavor = "multi_thread")]
async fn deleting_everything_at_once_cancels_every_remote_job() {
    let (ns, sim, _op, jobs) = runai_bed("inuse-all", None).await;
    let names = ["a", "b", "c"];
    for n in names {
        apply(
            &ns.name,
            &runai_job(
                n,
                "",
                &[("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "3600")],
            ),
            None,
        );
    }
    let mut ids = Vec::new();
    for n in names {
        let j = wait_phase(&jobs, n, RemoteJobPhase::Running).await;
        ids.push(j.status.unwrap().remote_id.unwrap());
    }
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    wait_for(
        "the ApiClient to carry the in-use finalizer",
        LONG,
        || async {
            clients
                .get("runai")
                .await
                .ok()
                .filter(|c| c.finalizers().iter().any(|f| f == IN_USE))
        },
    )
    .await;

    // The ApiClient goes first, its Secret next, the RemoteJobs last: the worst order.
    let started = Instant::now();
    kubectl_ok(&[
        "delete",
        "apiclient,secret,rjob",
        "--all",
        "-n",
        &ns.name,
        "--wait=false",
    ]);
    wait_for("every remote job to be cancelled", LONG, || async {
        let state = sim.state.lock();
        ids.iter()
            .all(|id| state.jobs.get(id).is_some_and(|j| j.frozen.is_some()))
            .then_some(())
    })
    .await;
    wait_for(
        "the RemoteJobs and the ApiClient to be gone",
        LONG,
        || async {
            let left_jobs = jobs.list(&Default::default()).await.ok()?.items.len();
            let left_clients = clients.list(&Default::default()).await.ok()?.items.len();
            (left_jobs == 0 && left_clients == 0).then_some(())
        },
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "deletion took {:?}",
        started.elapsed()
    );
    assert_eq!(sim.state.lock().counters.creates.values().sum::<u64>(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unused_api_client_is_deleted_at_once() {
    let (ns, _sim, op, jobs) = runai_bed("inuse-none", None).await;
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    // Used while its job runs, released when the job has finished.
    apply(
        &ns.name,
        &runai_job(
            "short",
            "",
            &[("SIM_QUEUE_SECONDS", "0"), ("SIM_RUN_SECONDS", "1")],
        ),
        None,
    );
    wait_phase(&jobs, "short", RemoteJobPhase::Succeeded).await;
    wait_for("the in-use finalizer to be removed", LONG, || async {
        clients
            .get("runai")
            .await
            .ok()
            .filter(|c| !c.finalizers().iter().any(|f| f == IN_USE))
    })
    .await;
    // Nothing holds it: gone as soon as the delete returns, no controller involved.
    kubectl_ok(&[
        "delete",
        "apiclient",
        "runai",
        "-n",
        &ns.name,
        "--wait=false",
    ]);
    assert!(
        clients.get_opt("runai").await.unwrap().is_none(),
        "an unused ApiClient is deleted at once"
    );
    // Its metric series go with it (issue 11 item 10); the build is labelled.
    let series = format!("namespace=\"{}\",apiclient=\"runai\"", ns.name);
    assert!(op.metrics().await.contains(&series));
    let text = wait_for("the deleted ApiClient's series to go", LONG, || async {
        Some(op.metrics().await).filter(|m| !m.contains(&series))
    })
    .await;
    assert!(text.contains("jobrelay_build_info{version="), "{text}");
    // A RemoteJob whose ApiClient is gone does not keep anything alive either.
    let job: RemoteJob = jobs.get("short").await.unwrap();
    assert_eq!(job.status.unwrap().phase, RemoteJobPhase::Succeeded);
}
