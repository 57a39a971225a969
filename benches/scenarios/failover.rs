//! Scenario 9, on the one-node cluster: the chart with two replicas (leader election on its Lease); the
//! leader's process is SIGKILLed during a burst and its pod force-deleted (a crash: the standby waits
//! for the Lease to expire), then the new leader's pod is deleted during a second burst (SIGTERM: a graceful
//! hand-over). Reports the longest time without progress after each disruption.
//!
//! (On the loopback bed `support::operator::Operator` starts operators with `--leader-elect=false`, so
//! fail-over is measured where users get it: the chart's Deployment.)

use std::time::{Duration, Instant};

use jobrelay::crd::RemoteJob;
use kube::api::Api;
use serde_json::json;

use crate::common::{Report, Scale, Tracker, create_all, job};
use crate::support::{helm, kubectl_ok};

const WAIT: Duration = Duration::from_secs(600);

/// The longest time without progress (a new remote id or a new Succeeded seen by the watch) from `at`
/// until the round ended: the take-over stall, not blurred by writes still in flight at `at`.
fn stall(t: &Tracker, at: Instant, end: Instant) -> Option<f64> {
    let p = t.progress.lock().unwrap();
    let mut last = at;
    let mut worst: f64 = 0.0;
    for i in p.iter().filter(|i| **i > at && **i <= end) {
        worst = worst.max((*i - last).as_secs_f64());
        last = *i;
    }
    (last > at).then_some(worst)
}

fn holder(ns: &str) -> String {
    crate::support::node::lease_holder(ns, "jr-jobrelay-leader")
}

fn pod_uid(ns: &str, pod: &str) -> String {
    kubectl_ok(&[
        "get",
        "pod",
        pod,
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ])
}

/// SIGKILLs the `jobrelay` processes of pod `uid` (found through its cgroup on this machine).
fn kill_pod_process(uid: &str) -> usize {
    let base = "/sys/fs/cgroup/memory/kubepods";
    let mut killed = 0;
    for dir in [
        format!("{base}/pod{uid}"),
        format!("{base}/burstable/pod{uid}"),
        format!("{base}/besteffort/pod{uid}"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(procs) = std::fs::read_to_string(e.path().join("cgroup.procs")) else {
                continue;
            };
            for pid in procs.lines() {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "jobrelay" {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", pid])
                        .status();
                    killed += 1;
                }
            }
        }
    }
    killed
}

/// Creates `n` jobs named `prefix{i}`, waits until a quarter is Submitted, runs `disrupt`, waits for all
/// to succeed; returns the stall after the disruption.
async fn round(
    c: &kube::Client,
    ns: &str,
    t: &Tracker,
    prefix: &str,
    n: usize,
    disrupt: impl FnOnce(),
) -> f64 {
    let api: Api<RemoteJob> = Api::namespaced(c.clone(), ns);
    let before = t.count(|s| s.succeeded.is_some());
    let sub_before = t.count(|s| s.submitted.is_some());
    let objs = (0..n)
        .map(|i| {
            job(
                &format!("{prefix}{i}"),
                "runai",
                1.0,
                json!({"pollInterval": "2s"}),
            )
        })
        .collect();
    create_all(&api, objs, 32).await;
    crate::support::wait_for("a quarter submitted", WAIT, || async {
        (t.count(|s| s.submitted.is_some()) >= sub_before + n / 4).then_some(())
    })
    .await;
    let at = Instant::now();
    disrupt();
    let end = t.wait("Succeeded", before + n, WAIT, |s| s.succeeded).await;
    stall(t, at, end).unwrap_or(f64::NAN)
}

/// Runs in the namespace where the alternative installed the chart as release `jr` and the `runai`
/// ApiClient is Ready.
pub async fn failover(scale: Scale, c: &kube::Client, ns: &str, r: &mut Report) {
    let n = scale.n(300).max(20);
    let chart = crate::support::repo_root().join("charts/jobrelay");
    let out = helm(&crate::support::node::chart_args(
        &[
            "upgrade",
            "jr",
            chart.to_str().unwrap(),
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "replicas=2",
        ],
        ns,
    ));
    assert!(
        out.status.success(),
        "helm upgrade: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Tracker::start(c, ns).await;

    let leader = holder(ns);
    let uid = pod_uid(ns, &leader);
    let mut killed = 0;
    // A crash that does not come back under the same name: SIGKILL, then the pod object goes at once
    // (a restarted container would keep the pod's name, which is its Lease identity, and resume).
    let kill = round(c, ns, &t, "k", n, || {
        killed = kill_pod_process(&uid);
        let _ = crate::support::kubectl(&[
            "delete",
            "pod",
            &leader,
            "-n",
            ns,
            "--grace-period=0",
            "--force",
            "--wait=false",
        ]);
    })
    .await;
    let leader2 = holder(ns);
    let graceful = round(c, ns, &t, "g", n, || {
        let _ = crate::support::kubectl(&["delete", "pod", &leader2, "-n", ns, "--wait=false"]);
    })
    .await;
    let leader3 = holder(ns);
    r.set("failover", "jobs", n);
    r.set("failover", "kill_s", (kill * 100.0).round() / 100.0);
    r.set("failover", "graceful_s", (graceful * 100.0).round() / 100.0);
    r.set("failover", "lease_duration_s", 15);
    let s = format!("9 failover (node, chart with 2 replicas, {n} jobs per round)");
    r.row(
        &s,
        "leader SIGKILLed + pod force-deleted → longest time without progress",
        format!("{kill:.2} s"),
        "≤ 17 s",
        Some(kill <= 17.0),
    );
    r.row(
        &s,
        "leader pod deleted (SIGTERM) → longest time without progress",
        format!("{graceful:.2} s"),
        "≤ 3 s",
        Some(graceful <= 3.0),
    );
    if killed == 0 || leader2 == leader || leader3 == leader2 {
        r.note(format!(
            "failover: killed {killed} process(es); Lease holders {leader} → {leader2} → {leader3}"
        ));
    }
}
