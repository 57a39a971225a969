//! Kueue admits RemoteJobs (issue 14) end to end: the real apiserver, a real Kueue (v0.17.0, out of
//! cluster, see tests/support/kueue.rs), the real operator process and the platform simulator.

mod support;

use std::time::Duration;

use jobrelay::controller::queue::workload::Workload;
use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use jobrelay::simulator;
use kube::Api;
use kube::api::ListParams;
use support::TestNamespace;
use support::fixtures::*;
use support::kueue::{Sampler, active_remote};
use support::operator::{Operator, apply, counters};
use support::{kubectl_ok, wait_for};

const WAIT: Duration = Duration::from_secs(120);

/// A ResourceFlavor, a ClusterQueue with `gpus` Run:ai GPUs (and room for many jobs) that preempts
/// lower priorities, and LocalQueue `lq` in `ns` pointing at it; names unique to `ns`.
fn queues(ns: &str, gpus: u32) {
    let yaml = format!(
        r#"apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {{name: runai-{ns}}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {{name: cq-{ns}}}
spec:
  namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}
  preemption: {{withinClusterQueue: LowerPriority}}
  resourceGroups:
    - coveredResources: [jobrelay.io/runai-gpu, jobrelay.io/runai-jobs]
      flavors:
        - name: runai-{ns}
          resources:
            - {{name: jobrelay.io/runai-gpu, nominalQuota: {gpus}}}
            - {{name: jobrelay.io/runai-jobs, nominalQuota: 100}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {{name: lq}}
spec: {{clusterQueue: cq-{ns}}}
"#
    );
    apply(ns, &yaml, None);
}

/// Kueue running, a Run:ai bed (namespace, simulator, operator, RemoteJobs), the namespace's
/// Workloads, and [`queues`] with `gpus` GPUs.
async fn queued_bed(
    prefix: &str,
    gpus: u32,
) -> (
    TestNamespace,
    simulator::Handle,
    Operator,
    Api<RemoteJob>,
    Api<Workload>,
) {
    support::kueue::ensure();
    let (ns, sim, op, jobs) = runai_bed(prefix, None).await;
    let wls = Api::namespaced(support::client().await, &ns.name);
    queues(&ns.name, gpus);
    (ns, sim, op, jobs, wls)
}

/// A queued Run:ai RemoteJob of one GPU running `secs` seconds on the simulator.
fn queued_job(name: &str, secs: &str, labels: &str) -> String {
    runai_job(
        name,
        "    gpuDevicesRequest: 1\n",
        &[("SIM_RUN_SECONDS", secs), ("SIM_QUEUE_SECONDS", "0")],
    )
    .replacen(
        "metadata:\n",
        &format!("metadata:\n  labels: {{kueue.x-k8s.io/queue-name: lq{labels}}}\n"),
        1,
    )
}

/// The simulator accepted `n` creates in all (`why` says what that shows).
fn assert_creates(sim: &simulator::Handle, n: u64, why: &str) {
    let creates = counters(sim).creates;
    assert_eq!(creates.values().sum::<u64>(), n, "{why}: {creates:?}");
}

/// `reason: message` of the events in `ns` that `selector` (a field selector) picks, one a line.
fn events(ns: &str, selector: &str) -> String {
    let format = "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}";
    let args = [
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        selector,
        "-o",
        format,
    ];
    kubectl_ok(&args)
}

fn condition(job: &RemoteJob, type_: &str) -> Option<(String, String, String)> {
    let c = job
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_of_two_gpus_runs_five_jobs_two_at_a_time() {
    let (ns, sim, _op, jobs, wls) = queued_bed("kueue-quota", 2).await;
    let sampler = Sampler::start(&sim, &jobs, &wls);
    let names: Vec<String> = (1..=5).map(|i| format!("q{i}")).collect();
    for n in &names {
        apply(&ns.name, &queued_job(n, "3", ""), Some(&sim));
    }
    // Three wait, and say why.
    let waiting = wait_for("a job waiting for quota", WAIT, || async {
        let list = jobs.list(&ListParams::default()).await.ok()?;
        list.into_iter()
            .filter_map(|j| condition(&j, "Admitted"))
            .find(|(s, reason, _)| s == "False" && reason == "WaitingForQuota")
    })
    .await;
    assert!(
        waiting.2.contains("LocalQueue lq") && waiting.2.contains("jobrelay.io/runai-gpu"),
        "{waiting:?}"
    );
    for n in &names {
        wait_for(&format!("{n} to succeed"), WAIT, || async {
            let j = jobs.get(n).await.ok()?;
            (j.status?.phase == RemoteJobPhase::Succeeded).then_some(())
        })
        .await;
    }
    let max = sampler.finish().await;
    // Two at once (the quota is used), never more.
    assert_eq!(max, 2, "remote jobs active at once");
    assert_creates(&sim, 5, "one create each");
    // Every Workload finished and released.
    wait_for(
        "finished Workloads without Kueue's finalizer",
        WAIT,
        || async {
            let list = wls.list(&ListParams::default()).await.ok()?;
            let done = list.iter().filter(|w| {
                w.status.as_ref().is_some_and(|s| s.is_true("Finished"))
                    && !w
                        .metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f.contains("resource-in-use"))
            });
            (done.count() == 5).then_some(())
        },
    )
    .await;
    // kubectl shows the queue and the admission; events say when a job waited and was admitted.
    let table = kubectl_ok(&["get", "rjob", "q1", "-n", &ns.name]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!((col("QUEUE"), col("ADMITTED")), ("lq", "True"), "{table}");
    let events = events(&ns.name, "involvedObject.kind=RemoteJob");
    assert!(
        events.contains("WaitingForQuota: waiting for quota in LocalQueue lq"),
        "{events}"
    );
    assert!(
        events.contains(&format!(
            "Admitted: admitted by ClusterQueue cq-{}",
            ns.name
        )),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_higher_priority_job_preempts_a_running_one() {
    let (ns, sim, _op, jobs, wls) = queued_bed("kueue-preempt", 1).await;
    let class = format!("urgent-{}", ns.name);
    apply(
        &ns.name,
        &format!(
            "apiVersion: kueue.x-k8s.io/v1beta2\nkind: WorkloadPriorityClass\nmetadata: {{name: {class}}}\nvalue: 1000\n"
        ),
        None,
    );
    let sampler = Sampler::start(&sim, &jobs, &wls);
    apply(&ns.name, &queued_job("low", "8", ""), Some(&sim));
    let low_id = running_id(&jobs, "low").await;
    // Running remotely is Kueue's PodsReady (what waitForPodsReady waits for).
    wait_for("low's Workload PodsReady", WAIT, || async {
        let list = wls.list(&ListParams::default()).await.ok()?;
        let ready = list
            .iter()
            .any(|w| w.status.as_ref().is_some_and(|s| s.is_true("PodsReady")));
        ready.then_some(())
    })
    .await;
    let urgent = format!(", kueue.x-k8s.io/priority-class: {class}");
    apply(&ns.name, &queued_job("high", "2", &urgent), Some(&sim));
    // The low one is evicted: stopped remotely, then its quota is released and it is requeued.
    wait_for("low's Workload released and requeued", WAIT, || async {
        let list = wls.list(&ListParams::default()).await.ok()?;
        let low = jobs.get("low").await.ok()?;
        let w = list.iter().find(|w| {
            w.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| Some(&o.uid) == low.metadata.uid.as_ref())
        })?;
        let s = w.status.as_ref()?;
        let released =
            !s.is_true("QuotaReserved") && s.is_true("Requeued") && s.admission.is_none();
        released.then_some(())
    })
    .await;
    assert!(
        !active_remote(&sim.state).contains(&low_id),
        "low stopped remotely"
    );
    let low = jobs.get("low").await.unwrap();
    let (_, reason, message) = condition(&low, "Admitted").unwrap();
    assert!(
        reason == "Evicted" || reason == "WaitingForQuota",
        "{reason}: {message}"
    );
    wait_phase(&jobs, "high", RemoteJobPhase::Succeeded).await;
    let low = wait_for("low to finish after its requeue", WAIT, || async {
        let j = jobs.get("low").await.ok()?;
        (j.status.as_ref()?.phase == RemoteJobPhase::Succeeded).then_some(j)
    })
    .await;
    let max = sampler.finish().await;
    assert_eq!(max, 1, "one GPU: one remote job at a time");
    assert_eq!(
        low.status.unwrap().attempts,
        1,
        "resumed in place, not resubmitted"
    );
    assert_creates(&sim, 2, "low and high once each");
    let events = events(&ns.name, "involvedObject.name=low");
    assert!(
        events.contains("Evicted: evicted: evicted by Kueue (Preempted)"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_queued_and_running_jobs_frees_quota_and_leaves_no_workload() {
    let (ns, sim, _op, jobs, wls) = queued_bed("kueue-delete", 1).await;
    apply(&ns.name, &queued_job("running", "600", ""), Some(&sim));
    let id = running_id(&jobs, "running").await;
    apply(&ns.name, &queued_job("queued", "600", ""), Some(&sim));
    wait_for("two Workloads", WAIT, || async {
        (wls.list(&ListParams::default()).await.ok()?.items.len() == 2).then_some(())
    })
    .await;
    delete_jobs(&ns.name, &["running", "queued"]);
    assert!(
        !active_remote(&sim.state).contains(&id),
        "the running one was cancelled"
    );
    wait_for("no Workload left", WAIT, || async {
        let list = wls.list(&ListParams::default()).await.ok()?;
        list.items.is_empty().then_some(())
    })
    .await;
    // The quota is free: a new job is admitted and runs.
    apply(&ns.name, &queued_job("next", "1", ""), Some(&sim));
    wait_phase(&jobs, "next", RemoteJobPhase::Succeeded).await;
    // The README's example is accepted by Kueue's API and ours (server-side dry run: nothing stays).
    let example = support::repo_root().join("examples/kueue/quota.yaml");
    let path = example.display().to_string();
    kubectl_ok(&["apply", "--dry-run=server", "-n", &ns.name, "-f", &path]);
    assert_creates(&sim, 2, "the queued one never ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workload_deleted_by_hand_stops_the_job_until_a_new_one_is_admitted() {
    let (ns, sim, _op, jobs, wls) = queued_bed("kueue-wl-deleted", 1).await;
    let sampler = Sampler::start(&sim, &jobs, &wls);
    apply(&ns.name, &queued_job("w", "6", ""), Some(&sim));
    running_id(&jobs, "w").await;
    let first = wls.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(first.len(), 1);
    let (name, uid) = (
        first[0].metadata.name.clone().unwrap(),
        first[0].metadata.uid.clone().unwrap(),
    );
    kubectl_ok(&["delete", "workload", &name, "-n", &ns.name, "--wait=false"]);
    wait_phase(&jobs, "w", RemoteJobPhase::Succeeded).await;
    // It was stopped (suspended in place on Run:ai) and resumed under a new Workload.
    let seen = events(&ns.name, "involvedObject.name=w");
    assert!(
        seen.contains("WorkloadDeleted: its Workload is being deleted"),
        "{seen}"
    );
    let requests = counters(&sim).requests;
    for action in ["suspend", "resume"] {
        let key = format!("POST /runai/api/v1/workloads/trainings/{{id}}/{action} 202");
        assert!(
            requests.get(&key).is_some_and(|n| *n >= 1),
            "{key}: {requests:?}"
        );
    }
    let now = wls.list(&ListParams::default()).await.unwrap().items;
    assert!(
        now.len() == 1 && now[0].metadata.uid.as_deref() != Some(uid.as_str()),
        "a new Workload: {now:?}"
    );
    sampler.finish().await;
    assert_creates(&sim, 1, "resumed in place");
}
