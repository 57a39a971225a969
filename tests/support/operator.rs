//! The operator as a real process (`jobrelay run`) against the test control plane, and the platform
//! simulator in-process, for end-to-end tests.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jobrelay::simulator::{self, Config, Counters, Fault};

use super::{control_plane, wait_for};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `jobrelay run`, watching one namespace. Stopped (SIGTERM, then SIGKILL) on drop.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    pub metrics_url: String,
    namespace: String,
}

/// What the operator of a test may do unless the test says otherwise: the simulator speaks plain http
/// on loopback, so insecure options are permitted and loopback is allowed — 127.0.0.1 exactly too, as
/// the test apiserver listens there and its address is denied unless allowed exactly. Tests of the
/// policy itself start with [`Operator::start_bare`].
pub const TEST_POLICY: &[&str] = &[
    "--permit-insecure",
    "--egress-allow=127.0.0.0/8",
    "--egress-allow=127.0.0.1/32",
];

impl Operator {
    pub async fn start(namespace: &str) -> Self {
        Self::start_with(namespace, &[]).await
    }

    /// Starts it with [`TEST_POLICY`] and `extra` flags for `jobrelay run`.
    pub async fn start_with(namespace: &str, extra: &[&str]) -> Self {
        let flags: Vec<&str> = TEST_POLICY.iter().chain(extra).copied().collect();
        Self::start_bare(namespace, &flags).await
    }

    /// Starts it with only `flags` (no [`TEST_POLICY`]): the operator's own defaults otherwise.
    pub async fn start_bare(namespace: &str, flags: &[&str]) -> Self {
        // A port probed free can be taken by another test's process before the child binds it: the
        // child then exits with "Address already in use", and it is started again on other ports.
        for _ in 0..3 {
            if let Some(op) = Self::try_start(namespace, flags).await {
                return op;
            }
        }
        panic!("jobrelay run found its ports taken three times");
    }

    async fn try_start(namespace: &str, flags: &[&str]) -> Option<Self> {
        let extra = flags;
        let (metrics, health) = (free_port(), free_port());
        let log = std::env::temp_dir().join(format!(
            "jobrelay-operator-{namespace}-{}.log",
            rand_suffix()
        ));
        let file = std::fs::File::create(&log).unwrap();
        // JOBRELAY_TEST_OPERATOR_WRAP: a command prefix for profiling (e.g. `heaptrack -o /tmp/h`);
        // the pid is then the wrapper's, and dropping the Operator stops only the wrapper.
        let wrap = std::env::var("JOBRELAY_TEST_OPERATOR_WRAP").unwrap_or_default();
        let mut argv: Vec<String> = wrap.split_whitespace().map(String::from).collect();
        // JOBRELAY_TEST_OPERATOR_BIN: another build of the operator (the bench runs the image's).
        argv.push(
            std::env::var("JOBRELAY_TEST_OPERATOR_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_jobrelay").into()),
        );
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .args([
                "run",
                "--namespace",
                namespace,
                "--leader-elect=false",
                "--log-format",
                "json",
            ])
            .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .args(extra)
            .env("KUBECONFIG", &control_plane().kubeconfig)
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        // Tests read the debug log. JOBRELAY_TEST_OPERATOR_LOG: another filter, or `default` for
        // the operator's own (the level users get; `make bench`).
        match std::env::var("JOBRELAY_TEST_OPERATOR_LOG").as_deref() {
            Ok("default") => cmd.env_remove("RUST_LOG"),
            Ok(filter) => cmd.env("RUST_LOG", filter),
            Err(_) => cmd.env(
                "RUST_LOG",
                "debug,kube=info,hyper=info,tower=info,reqwest=info,h2=info,rustls=info",
            ),
        };
        let child = cmd.spawn().expect("start jobrelay run");
        let ready = format!("http://127.0.0.1:{health}/readyz");
        let child = std::sync::Mutex::new(child);
        let up = wait_for("operator /readyz", Duration::from_secs(30), || {
            let ready = ready.clone();
            let exited = child.lock().unwrap().try_wait().ok().flatten().is_some();
            let log = log.clone();
            async move {
                if exited {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(
                        text.contains("Address already in use"),
                        "jobrelay run exited: {text}"
                    );
                    return Some(false);
                }
                reqwest::get(&ready)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| true)
            }
        })
        .await;
        up.then(|| Operator {
            child: Some(child.into_inner().unwrap()),
            log,
            metrics_url: format!("http://127.0.0.1:{metrics}/metrics"),
            namespace: namespace.into(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(&self.metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            for _ in 0..50 {
                if c.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- operator log ({}) ---\n{}",
                self.namespace,
                self.logs()
                    .lines()
                    .rev()
                    .take(60)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

/// The simulator in-process, with the demo credentials of examples/.
pub async fn simulator(token_ttl: Option<Duration>) -> simulator::Handle {
    let config = Config {
        clients: [("demo-client".to_string(), "demo-secret".to_string())].into(),
        users: [("demo".to_string(), "demo-password".to_string())].into(),
        token_ttl,
        ..Default::default()
    };
    simulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The demo client's token answer from the simulator's Keycloak `realm` of `platform` (its URL prefix).
pub async fn sim_token(sim: &simulator::Handle, platform: &str, realm: &str) -> serde_json::Value {
    let url = format!(
        "{}/auth/realms/{realm}/protocol/openid-connect/token",
        sim.base_url(platform)
    );
    super::client_credentials(&url, "demo-client", "demo-secret").await
}

/// The JSON answer of the simulator's admin API at `path` (`counters`, `requests`, ...).
pub async fn admin_json(sim: &simulator::Handle, path: &str) -> serde_json::Value {
    let url = format!("http://{}/_admin/{path}", sim.addr);
    super::json_of(reqwest::Client::new().get(url)).await
}

/// A POST to the simulator's admin API at `path` (`pause`, `resume`), which must succeed.
pub async fn admin_post(sim: &simulator::Handle, path: &str) {
    let url = format!("http://{}/_admin/{path}", sim.addr);
    let answer = reqwest::Client::new().post(url).send().await.unwrap();
    answer.error_for_status().unwrap();
}

pub fn counters(sim: &simulator::Handle) -> Counters {
    sim.state.lock().counters.clone()
}

/// How many requests the simulator counted whose `METHOD /route STATUS` key starts with `prefix`.
pub fn requests(sim: &simulator::Handle, prefix: &str) -> u64 {
    counters(sim)
        .requests
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, n)| *n)
        .sum()
}

pub fn inject(sim: &simulator::Handle, fault: Fault) {
    sim.state.lock().faults.push(fault);
}

/// Applies YAML text in `namespace`, rewriting the examples' simulator address to `sim`'s.
pub fn apply(namespace: &str, yaml: &str, sim: Option<&simulator::Handle>) {
    let text = match sim {
        Some(s) => yaml.replace("127.0.0.1:8090", &s.addr.to_string()),
        None => yaml.to_string(),
    };
    let mut child = Command::new(super::kubectl_path())
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .args(["apply", "-n", namespace, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An example manifest from examples/.
pub fn example(name: &str) -> String {
    std::fs::read_to_string(super::repo_root().join("examples").join(name)).unwrap()
}
