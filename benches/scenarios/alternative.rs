//! Scenario 8, on the one-node cluster: the same N Run:ai jobs through jobrelay (installed by the chart)
//! and as N batch/v1 Jobs whose pods run benches/alt-client (image built by `make bench`, imported by
//! `hack/testenv/up --node --image`). Pods, memory (pod cgroups' working set, sampled), apiserver writes
//! in each namespace (audit log, every user: kubelet, controllers, scheduler, operator, us) and time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;

use crate::common::{Audit, Report, Scale, client, create_all, job};
use crate::support::{TestNamespace, helm, repo_root};

pub const ALT_IMAGE: &str = "docker.io/library/jobrelay-alt-client:bench";
const RUN_S: f64 = 5.0;

/// A pod's working set (usage minus inactive file cache), from its cgroup v1 memory controller.
fn pod_mib(uid: &str) -> Option<f64> {
    let base = "/sys/fs/cgroup/memory/kubepods";
    let dirs = [
        format!("{base}/pod{uid}"),
        format!("{base}/burstable/pod{uid}"),
        format!("{base}/besteffort/pod{uid}"),
    ];
    let dir = dirs.iter().find(|d| std::path::Path::new(d).exists())?;
    let usage: f64 = std::fs::read_to_string(format!("{dir}/memory.usage_in_bytes"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("{dir}/memory.stat")).ok()?;
    let inactive: f64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("total_inactive_file "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    Some((usage - inactive).max(0.0) / 1048576.0)
}

/// Samples the summed working set of `ns`'s pods (matching `selector`) until `done` says so; returns
/// (peak of the sum, peak per pod by uid, pods seen).
async fn sample_until(
    c: &kube::Client,
    ns: &str,
    selector: &str,
    timeout: Duration,
    mut done: impl AsyncFnMut() -> bool,
) -> (f64, HashMap<String, f64>) {
    let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
    let lp = kube::api::ListParams::default().labels(selector);
    let (mut peak_sum, mut per_pod) = (0.0f64, HashMap::<String, f64>::new());
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(list) = pods.list(&lp).await {
            let mut sum = 0.0;
            for p in list.items {
                let uid = p.metadata.uid.unwrap_or_default();
                if let Some(m) = pod_mib(&uid) {
                    sum += m;
                    let e = per_pod.entry(uid).or_default();
                    *e = e.max(m);
                }
            }
            peak_sum = peak_sum.max(sum);
        }
        if done().await {
            return (peak_sum, per_pod);
        }
        assert!(Instant::now() < deadline, "bench: alternative timed out");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn writes(events: &[crate::common::AuditEvent], ns: &str) -> usize {
    events
        .iter()
        .filter(|e| e.is_write() && e.ns() == ns)
        .count()
}

pub async fn alternative(scale: Scale, audit: &Audit, r: &mut Report) {
    let n = scale.n(50).max(5);
    let c = client().await;
    let jr = TestNamespace::new("bench-alt-jr");
    let alt = TestNamespace::new("bench-alt-jobs");
    let sim = crate::support::node::simulator_service(&jr.name);
    let chart = repo_root().join("charts/jobrelay");
    let out = helm(&crate::support::node::chart_args(
        &["install", "jr", chart.to_str().unwrap(), "-n", &jr.name],
        &jr.name,
    ));
    assert!(
        out.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = |ns: &str| {
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.clone(), ns);
        let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "credentials"},
            "stringData": {"client_id": "demo-client", "client_secret": "demo-secret"}});
        async move { create_all(&api, vec![s], 1).await }
    };
    secret(&jr.name).await;
    secret(&alt.name).await;
    let token_url = format!("{sim}/runai/auth/realms/runai/protocol/openid-connect/token");
    let apic = json!({"apiVersion": "jobrelay.io/v1alpha1", "kind": "ApiClient", "metadata": {"name": "runai"},
        "spec": {"platform": "runai", "baseUrl": format!("{sim}/runai"), "allowInsecureHttp": true,
            "auth": {"oauth2": {"tokenUrl": token_url, "scopes": ["openid"]}},
            "credentialsSecretRef": {"name": "credentials"}}});
    let apis: Api<jobrelay::crd::ApiClient> = Api::namespaced(c.clone(), &jr.name);
    create_all(&apis, vec![apic], 1).await;
    crate::throughput::clients_ready(&c, &jr.name, 1).await;

    // jobrelay: N RemoteJobs polled every 2 s, like the alternative's pods.
    let jobs: Api<RemoteJob> = Api::namespaced(c.clone(), &jr.name);
    let mark = audit.mark();
    let t0 = Instant::now();
    let objs = (0..n)
        .map(|i| {
            job(
                &format!("j{i}"),
                "runai",
                RUN_S,
                json!({"pollInterval": "2s"}),
            )
        })
        .collect();
    create_all(&jobs, objs, 16).await;
    let (jr_peak, jr_pods) = sample_until(
        &c,
        &jr.name,
        "app.kubernetes.io/name=jobrelay",
        Duration::from_secs(600),
        async || {
            let l = jobs
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            l.iter()
                .filter(|j| {
                    j.status
                        .as_ref()
                        .is_some_and(|s| s.phase == RemoteJobPhase::Succeeded)
                })
                .count()
                >= n
        },
    )
    .await;
    let jr_s = t0.elapsed().as_secs_f64();
    let jr_writes = writes(&audit.since(mark).await, &jr.name);

    // The alternative: N Jobs, one pod each, submitting and polling with alt-client.
    let batch: Api<Job> = Api::namespaced(c.clone(), &alt.name);
    let env = |k: &str, v: &str| json!({"name": k, "value": v});
    let from_secret = |k: &str, key: &str| json!({"name": k, "valueFrom": {"secretKeyRef": {"name": "credentials", "key": key}}});
    let objs = (0..n)
        .map(|i| {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": format!("alt-{i}")},
            "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"app": "alt-client"}}, "spec": {
                "restartPolicy": "Never", "automountServiceAccountToken": false,
                "containers": [{"name": "client", "image": ALT_IMAGE, "imagePullPolicy": "Never",
                    "env": [env("BASE_URL", &format!("{sim}/runai")), env("TOKEN_URL", &token_url),
                        from_secret("CLIENT_ID", "client_id"), from_secret("CLIENT_SECRET", "client_secret"),
                        env("NAME", &format!("{}-alt-{i}", alt.name)), env("RUN_SECONDS", &RUN_S.to_string()),
                        env("POLL_SECONDS", "2")],
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}}]}}}})
        })
        .collect();
    let mark = audit.mark();
    let t0 = Instant::now();
    create_all(&batch, objs, 16).await;
    let (alt_peak, alt_pods) = sample_until(
        &c,
        &alt.name,
        "app=alt-client",
        Duration::from_secs(900),
        async || {
            let l = batch
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let done = l
                .iter()
                .filter(|j| {
                    j.status
                        .as_ref()
                        .is_some_and(|s| s.succeeded.unwrap_or(0) + s.failed.unwrap_or(0) > 0)
                })
                .count();
            done >= n
        },
    )
    .await;
    let alt_s = t0.elapsed().as_secs_f64();
    let alt_writes = writes(&audit.since(mark).await, &alt.name);
    let failed = batch
        .list(&Default::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|j| j.status.as_ref().and_then(|s| s.failed).unwrap_or(0) > 0)
                .count()
        })
        .unwrap_or(0);
    let alt_pod_count = alt_pods.len().max(n);
    let per_pod = alt_pods.values().sum::<f64>() / alt_pods.len().max(1) as f64;

    r.set("alternative", "jobs", n);
    r.set("alternative", "jobrelay_pods", jr_pods.len());
    r.set("alternative", "job_pods", alt_pod_count);
    r.set(
        "alternative",
        "jobrelay_mib",
        (jr_peak * 10.0).round() / 10.0,
    );
    r.set("alternative", "job_mib", (alt_peak * 10.0).round() / 10.0);
    r.set(
        "alternative",
        "job_mib_per_pod",
        (per_pod * 10.0).round() / 10.0,
    );
    r.set("alternative", "jobrelay_writes", jr_writes);
    r.set("alternative", "job_writes", alt_writes);
    r.set("alternative", "jobrelay_s", (jr_s * 10.0).round() / 10.0);
    r.set("alternative", "job_s", (alt_s * 10.0).round() / 10.0);
    r.set("alternative", "job_failed", failed);
    let s = format!("8 alternative (node, {n} jobs of {RUN_S} s, poll 2 s)");
    r.row(
        &s,
        "pods: jobrelay / batch Jobs",
        format!("{} / {alt_pod_count}", jr_pods.len()),
        "",
        None,
    );
    r.row(
        &s,
        "memory, peak sum of pod working sets: jobrelay / batch Jobs",
        format!("{jr_peak:.1} / {alt_peak:.1} MiB ({per_pod:.1} MiB per Job pod)"),
        "",
        None,
    );
    r.row(
        &s,
        "apiserver writes in the namespace (all users): jobrelay / batch Jobs",
        format!(
            "{jr_writes} / {alt_writes} ({:.1} / {:.1} per job)",
            jr_writes as f64 / n as f64,
            alt_writes as f64 / n as f64
        ),
        "",
        None,
    );
    r.row(
        &s,
        "create → all done: jobrelay / batch Jobs",
        format!("{jr_s:.1} / {alt_s:.1} s ({failed} Jobs failed)"),
        "",
        None,
    );
    crate::failover::failover(scale, &c, &jr.name, r).await;
}
