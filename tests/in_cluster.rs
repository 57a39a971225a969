//! jobrelay installed the way users install it, on a real node: the image built by `make image`, the
//! Helm chart with `--wait`, a namespace that enforces the `restricted` Pod Security Standard, the
//! simulator running in-cluster from the same image behind a Service. The operator runs in a pod with
//! its ServiceAccount's token and nothing else.
//!
//! Needs the node test bed (`hack/testenv/up --node`, which `make test-node` starts and `make test`
//! runs): the tests are ignored otherwise and run with `--ignored --test-threads=1` there.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::Api;
use support::{TestNamespace, helm, kubectl, kubectl_ok, repo_root, wait_for};

const INSTALL: Duration = Duration::from_secs(300);

/// The chart's default image reference, `jobrelay:<appVersion>`: what `make image` built and the node
/// imported as docker.io/library/jobrelay:<version>.
fn short_image() -> String {
    format!("jobrelay:{}", env!("CARGO_PKG_VERSION"))
}

fn chart() -> String {
    repo_root().join("charts/jobrelay").display().to_string()
}

fn helm_ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = helm(args);
    assert!(
        out.status.success(),
        "helm {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apply(ns: &str, yaml: &str) {
    let file = std::env::temp_dir().join(format!("jobrelay-node-{}-{ns}.yaml", std::process::id()));
    std::fs::write(&file, yaml).unwrap();
    kubectl_ok(&["apply", "-n", ns, "-f", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(file);
}

/// On a failing step, the operator's and simulator's logs say why.
struct Diagnostics<'a>(&'a str);

impl Drop for Diagnostics<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for args in [
                &["get", "pods,rjob,apic,lease", "-o", "wide", "-n", self.0][..],
                &[
                    "logs",
                    "-n",
                    self.0,
                    "-l",
                    "app.kubernetes.io/name=jobrelay",
                    "--tail=60",
                    "--prefix",
                ],
                &["logs", "-n", self.0, "-l", "app=simulator", "--tail=20"],
                &["get", "events", "-n", self.0],
            ] {
                let out = kubectl(args);
                eprintln!(
                    "--- kubectl {}\n{}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// The in-cluster simulator of examples/simulator.yaml, which must name this version's image.
async fn simulator_service(ns: &str) -> String {
    let manifest = std::fs::read_to_string(repo_root().join("examples/simulator.yaml")).unwrap();
    assert!(
        manifest.contains(&format!("image: {}", short_image())),
        "examples/simulator.yaml names the image of this version"
    );
    support::node::simulator_service(ns)
}

/// Creates per `platform/name`, from the in-cluster simulator (through its Service, from the host).
async fn creates(sim: &str) -> BTreeMap<String, u64> {
    let c: serde_json::Value = reqwest::get(format!("{sim}/_admin/counters"))
        .await
        .expect("simulator counters")
        .json()
        .await
        .unwrap();
    serde_json::from_value(c["creates"].clone()).unwrap()
}

fn lease_holder(ns: &str) -> String {
    support::node::lease_holder(ns, "jr-jobrelay-leader")
}

fn ready_operator_pods(ns: &str) -> Vec<String> {
    let out = kubectl_ok(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/name=jobrelay",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    ]);
    out.lines()
        .filter_map(|l| l.strip_suffix("=True"))
        .map(str::to_string)
        .collect()
}

async fn wait_all(jobs: &Api<RemoteJob>, phase: RemoteJobPhase, count: usize, within: Duration) {
    wait_for(&format!("{count} RemoteJobs {phase:?}"), within, || async {
        let list = jobs.list(&Default::default()).await.ok()?;
        let done = list
            .items
            .iter()
            .filter(|j| j.status.as_ref().is_some_and(|s| s.phase == phase))
            .count();
        (list.items.len() == count && done == count).then_some(())
    })
    .await
}

fn run_ai_jobs(prefix: &str, n: usize, run_seconds: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "apiVersion: jobrelay.io/v1alpha1\nkind: RemoteJob\nmetadata: {{name: {prefix}-{i}}}\nspec:\n  clientRef: {{name: runai}}\n  pollInterval: 2s\n  runai:\n    projectId: \"5\"\n    clusterId: c0ffee00-0000-4000-8000-000000000000\n    image: busybox\n    environment:\n      - {{name: SIM_RUN_SECONDS, value: \"{run_seconds}\"}}\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// A user's journey: install, run the examples on all three platforms, upgrade to two replicas, lose
/// the leader with 50 jobs in flight, scale back, uninstall.
#[tokio::test]
#[ignore = "needs the node test bed: make test-node"]
async fn helm_install_runs_remote_jobs_in_cluster_and_survives_a_leader_change() {
    let ns = TestNamespace::new("jr-node");
    let _diag = Diagnostics(&ns.name);
    kubectl_ok(&[
        "label",
        "namespace",
        &ns.name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    ]);
    let sim = simulator_service(&ns.name).await;

    // 1. A plain install serving this namespace; --wait means Running and Ready pods.
    // --take-ownership: the other node test may have applied the CRDs without helm (as a user who
    // had applied crds/ would have; README: Install with Helm).
    helm_ok(&support::node::chart_args(
        &[
            "install",
            "jr",
            &chart(),
            "-n",
            &ns.name,
            "--take-ownership",
        ],
        &ns.name,
    ));
    let pods = ready_operator_pods(&ns.name);
    assert_eq!(pods.len(), 1, "{pods:?}");
    let user = kubectl_ok(&[
        "get",
        "pod",
        &pods[0],
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.spec.securityContext.runAsUser}/{.spec.containers[0].image}",
    ]);
    // The chart's default reference (`jobrelay:<appVersion>`) is the image `make image` built.
    assert_eq!(
        user,
        format!("65532/jobrelay:{}", env!("CARGO_PKG_VERSION"))
    );

    // 2. The examples, pointed at the in-cluster simulator, run on all three platforms.
    for example in ["runai.yaml", "openpai.yaml", "dai.yaml"] {
        let text = std::fs::read_to_string(repo_root().join("examples").join(example)).unwrap();
        apply(&ns.name, &text.replace("http://127.0.0.1:8090", &sim));
    }
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    wait_all(&jobs, RemoteJobPhase::Succeeded, 3, INSTALL).await;
    let before = creates(&sim).await;
    assert_eq!(
        before.values().sum::<u64>(),
        3,
        "one create per example: {before:?}"
    );

    // 3. Least privilege, asked of the apiserver as the chart's ServiceAccount.
    let sa = format!("system:serviceaccount:{}:jr-jobrelay", ns.name);
    let can = |args: &[&str]| {
        kubectl(&[&["auth", "can-i", "--as", &sa][..], args].concat())
            .status
            .success()
    };
    assert!(can(&["watch", "secrets", "-n", &ns.name]));
    assert!(!can(&["list", "secrets", "-n", "default"]));
    assert!(!can(&["list", "secrets", "--all-namespaces"]));
    assert!(!can(&["delete", "secrets", "-n", &ns.name]));
    assert!(!can(&["create", "pods", "-n", &ns.name]));
    // Where the apiserver is (for the egress policy), and nothing else in `default`.
    assert!(can(&["get", "services/kubernetes", "-n", "default"]));
    assert!(!can(&["get", "services/other", "-n", "default"]));
    let log = kubectl_ok(&["logs", "-n", &ns.name, &pods[0]]);
    assert!(
        !log.contains("cannot read Service default/kubernetes")
            && !log.contains("cannot list the apiserver's EndpointSlices"),
        "the operator reads the apiserver's addresses: {log}"
    );

    // 4. Upgrade to two replicas with a changed value: the rolling update completes (a standby is Ready).
    helm_ok(&[
        "upgrade",
        "jr",
        &chart(),
        "-n",
        &ns.name,
        "--reuse-values",
        "--set",
        "replicas=2",
        "--set",
        "logLevel=debug",
        "--wait",
        "--timeout",
        "5m",
    ]);
    wait_for("two Ready operator pods", INSTALL, || async {
        (ready_operator_pods(&ns.name).len() == 2).then_some(())
    })
    .await;

    // 5. Fifty jobs in flight, then the leader pod is deleted: the standby takes over within a few
    //    seconds (the old leader releases its Lease on SIGTERM), and every job runs exactly once.
    apply(&ns.name, &run_ai_jobs("burst", 50, 15));
    wait_for("submissions under way", INSTALL, || async {
        let list = jobs.list(&Default::default()).await.ok()?;
        let started = list
            .items
            .iter()
            .filter(|j| j.status.as_ref().is_some_and(|s| s.remote_id.is_some()))
            .count();
        (started >= 10).then_some(())
    })
    .await;
    let leader = lease_holder(&ns.name);
    assert!(
        pods_contain(&ns.name, &leader),
        "leader {leader:?} is one of the pods"
    );
    let deleted = Instant::now();
    kubectl_ok(&["delete", "pod", &leader, "-n", &ns.name, "--wait=false"]);
    let successor = wait_for("a new leader", Duration::from_secs(60), || async {
        let h = lease_holder(&ns.name);
        (!h.is_empty() && h != leader).then_some(h)
    })
    .await;
    let handover = deleted.elapsed();
    eprintln!("hand-over to {successor}: {handover:?} after the leader's pod was deleted");
    // Waiting for the 15 s Lease to expire instead would take at least 13 s after the deletion.
    assert!(
        handover < Duration::from_secs(12),
        "{successor} led {handover:?} after the leader's pod was deleted"
    );
    wait_all(&jobs, RemoteJobPhase::Succeeded, 53, INSTALL).await;
    let after = creates(&sim).await;
    let burst: Vec<_> = after.iter().filter(|(k, _)| k.contains("burst")).collect();
    assert_eq!(burst.len(), 50, "one remote job per RemoteJob: {after:?}");
    assert!(
        burst.iter().all(|(_, n)| **n == 1),
        "a RemoteJob was created twice: {burst:?}"
    );

    // 6. Back to one replica; then uninstall keeps the CRDs (and so the users' objects).
    helm_ok(&[
        "upgrade",
        "jr",
        &chart(),
        "-n",
        &ns.name,
        "--reuse-values",
        "--set",
        "replicas=1",
        "--wait",
        "--timeout",
        "5m",
    ]);
    kubectl_ok(&["delete", "rjob", "--all", "-n", &ns.name, "--timeout=120s"]);
    helm_ok(&[
        "uninstall",
        "jr",
        "-n",
        &ns.name,
        "--wait",
        "--timeout",
        "2m",
    ]);
    kubectl_ok(&[
        "get",
        "crd",
        "remotejobs.jobrelay.io",
        "apiclients.jobrelay.io",
    ]);
}

fn pods_contain(ns: &str, name: &str) -> bool {
    !name.is_empty() && ready_operator_pods(ns).iter().any(|p| p == name)
}

/// Issue 11 item 3 with a real namespace deletion (kube-controller-manager's namespace controller
/// deletes ApiClient, Secret and RemoteJobs in its own order): it completes within a minute and every
/// remote job of a Cancel-policy RemoteJob is cancelled on the platform. (Served by watchNamespaces,
/// the operator's Role and RoleBinding in that namespace are deleted with it, in no particular order:
/// this is the test that shows whether the finalizers can still be removed then.)
#[tokio::test]
#[ignore = "needs the node test bed: make test-node"]
async fn deleting_a_namespace_with_running_jobs_cancels_them_and_completes() {
    let ns = TestNamespace::new("jr-nsdel");
    let doomed = TestNamespace::new("jr-doomed");
    let _diag = Diagnostics(&ns.name);
    let sim = simulator_service(&ns.name).await;
    // Its own release name and no CRDs in the release: the other node test's release `jr` may own
    // them and its cluster-wide objects.
    kubectl_ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        repo_root().join("crds").to_str().unwrap(),
    ]);
    let served = format!("{},{}", ns.name, doomed.name);
    helm_ok(&support::node::chart_args(
        &[
            "install",
            "jrdel",
            &chart(),
            "-n",
            &ns.name,
            "--set",
            "crds.enabled=false",
        ],
        &served,
    ));
    let runai = std::fs::read_to_string(repo_root().join("examples/runai.yaml")).unwrap();
    let client: String = runai
        .split("\n---\n")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n---\n");
    apply(&doomed.name, &client.replace("http://127.0.0.1:8090", &sim));
    apply(&doomed.name, &run_ai_jobs("doomed", 3, 3600));
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &doomed.name);
    wait_all(&jobs, RemoteJobPhase::Running, 3, INSTALL).await;

    let started = Instant::now();
    kubectl_ok(&["delete", "namespace", &doomed.name, "--wait=false"]);
    wait_for(
        "the namespace to be gone",
        Duration::from_secs(60),
        || async {
            (!kubectl(&["get", "namespace", &doomed.name])
                .status
                .success())
            .then_some(())
        },
    )
    .await;
    eprintln!("namespace deleted after {:?}", started.elapsed());
    let stored: Vec<serde_json::Value> = reqwest::get(format!("{sim}/_admin/jobs"))
        .await
        .expect("simulator jobs")
        .json()
        .await
        .unwrap();
    let ours: Vec<_> = stored
        .iter()
        .filter(|j| j["name"].as_str().is_some_and(|n| n.contains("doomed")))
        .collect();
    assert_eq!(ours.len(), 3, "{stored:?}");
    assert!(
        ours.iter().all(|j| !j["frozen"].is_null()),
        "every remote job was cancelled: {ours:?}"
    );
    helm_ok(&[
        "uninstall",
        "jrdel",
        "-n",
        &ns.name,
        "--wait",
        "--timeout",
        "2m",
    ]);
}
