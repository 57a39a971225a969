//! Test support: a real control plane (kube-apiserver + etcd from `hack/testenv`) per test binary, or
//! the one named by `JOBRELAY_TEST_KUBECONFIG` (what `make test` starts once for all binaries), with the
//! CRDs installed, and a fresh namespace per test.
//!
//! There is no mock apiserver here: every integration test talks to the real one.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

pub mod apiclient;
pub mod fixtures;
pub mod keycloak;
pub mod kueue;
pub mod node;
pub mod operator;

/// The control plane this test binary uses.
pub struct ControlPlane {
    pub kubeconfig: PathBuf,
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cache_dir() -> PathBuf {
    std::env::var_os("JOBRELAY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/jobrelay")
        })
}

/// A version pinned in `hack/testenv/versions.env`, e.g. `version_of("KUBE_VERSION")`.
pub fn version_of(key: &str) -> String {
    let versions = std::fs::read_to_string(repo_root().join("hack/testenv/versions.env"))
        .expect("versions.env");
    versions
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key} in versions.env"))
        .trim()
        .to_string()
}

fn kube_version() -> String {
    version_of("KUBE_VERSION")
}

/// The helm built by `hack/testenv/build`.
pub fn helm_path() -> PathBuf {
    let v = version_of("HELM_VERSION");
    cache_dir().join(format!("bin/helm-{v}/helm"))
}

/// Runs helm against the test control plane, with its own config and cache directories.
pub fn helm<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let cp = control_plane();
    let home = std::env::temp_dir().join("jobrelay-helm");
    Command::new(helm_path())
        .env("KUBECONFIG", &cp.kubeconfig)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .args(args)
        .output()
        .expect("run helm")
}

/// The kubectl built by `hack/testenv/build` (same version as the apiserver).
pub fn kubectl_path() -> PathBuf {
    let v = kube_version();
    cache_dir().join(format!("bin/kubectl-{v}/kubectl"))
}

/// Starts (once per process) or reuses a control plane and installs the CRDs.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| {
        let kubeconfig = match std::env::var_os("JOBRELAY_TEST_KUBECONFIG") {
            Some(path) => PathBuf::from(path),
            None => start_own_control_plane(),
        };
        let cp = ControlPlane { kubeconfig };
        // On the node test bed the Helm chart installs (and owns) the CRDs.
        if std::env::var_os("JOBRELAY_TEST_NODE").is_none() {
            install_crds(&cp);
        }
        cp
    })
}

/// Starts a control plane for this test binary alone, stopped when this process exits ([`down_at_exit`]).
fn start_own_control_plane() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jobrelay-test-{}", std::process::id()));
    let up = repo_root().join("hack/testenv/up");
    let out = Command::new(&up)
        .arg("--dir")
        .arg(&dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("run hack/testenv/up");
    assert!(out.status.success(), "hack/testenv/up failed");
    down_at_exit(&dir);
    dir.join("kubeconfig")
}

/// Runs `hack/testenv/down <dir>` when this process exits, however it exits: a watchdog reads a pipe
/// whose write end only this process holds, and runs `down` at end-of-file. (Polling our pid would not
/// do: in a container whose init does not reap, a dead test process stays a zombie that still answers
/// `kill -0`.)
pub fn down_at_exit(dir: &Path) {
    let down = repo_root().join("hack/testenv/down");
    let watchdog = format!("cat >/dev/null; '{}' '{}'", down.display(), dir.display());
    let mut child = Command::new("setsid")
        .args(["sh", "-c", &watchdog])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the hack/testenv/down watchdog");
    // Keep the write end open for the life of this process.
    std::mem::forget(child.stdin.take());
    std::mem::forget(child);
}

fn install_crds(cp: &ControlPlane) {
    let crds = repo_root().join("crds");
    let out = kubectl_raw(
        cp,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "installing CRDs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl_raw(
        cp,
        &[
            "wait",
            "--for",
            "condition=established",
            "--timeout=60s",
            "crd/apiclients.jobrelay.io",
            "crd/remotejobs.jobrelay.io",
        ],
    );
    assert!(
        out.status.success(),
        "CRDs not established: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kubectl_raw(cp: &ControlPlane, args: &[&str]) -> Output {
    Command::new(kubectl_path())
        .env("KUBECONFIG", &cp.kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl")
}

/// Runs kubectl against the test control plane.
pub fn kubectl(args: &[&str]) -> Output {
    kubectl_raw(control_plane(), args)
}

/// Runs kubectl and returns stdout, panicking with stderr on failure.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A kube client for the test control plane. Make one per test: a client is tied to the runtime it
/// was created on, and every `#[tokio::test]` has its own.
pub async fn client() -> kube::Client {
    let cp = control_plane();
    let kc = Kubeconfig::read_from(&cp.kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    kube::Client::try_from(config).expect("client")
}

/// A namespace of its own for one test; deleted (best effort) on drop. No namespace controller runs in
/// the test bed, so a deleted namespace stays Terminating until the control plane is torn down.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub fn new(prefix: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        kubectl_ok(&["create", "namespace", &name]);
        Self { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("JOBRELAY_TEST_KEEP_NAMESPACES").is_none() {
            let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what` and the last value seen.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The JSON answer to a form POST (token endpoints).
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> serde_json::Value {
    json_of(reqwest::Client::new().post(url).form(form)).await
}

/// The JSON answer of a request (panics when it cannot be sent or the answer is not JSON).
pub async fn json_of(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// The JSON answer of an OAuth2 client_credentials request (form, client secret in the body).
pub async fn client_credentials(token_url: &str, id: &str, secret: &str) -> serde_json::Value {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    post_form(token_url, &form).await
}
