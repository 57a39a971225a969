//! Helpers every scenario shares: the scale, a fast kube client, bulk creates, a RemoteJob watch with
//! local receive timestamps, the apiserver audit log, a counting proxy in front of the simulator, RSS.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Our own requests carry this user agent, so that the audit log tells them from the operator's.
pub const BENCH_AGENT: &str = "jobrelay-bench";

/// Full scale, or 1/10 (`QUICK=1`).
#[derive(Clone, Copy)]
pub struct Scale {
    pub quick: bool,
}

impl Scale {
    pub fn from_env() -> Self {
        let quick = std::env::var("QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        Scale { quick }
    }
    /// `full`, or a tenth of it (at least 1).
    pub fn n(&self, full: usize) -> usize {
        if self.quick { (full / 10).max(1) } else { full }
    }
    pub fn secs(&self, full: u64, quick: u64) -> Duration {
        Duration::from_secs(if self.quick { quick } else { full })
    }
}

/// A kube client for `kubeconfig` whose requests say `jobrelay-bench` (no client-side rate limit).
pub async fn client_for(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(BENCH_AGENT),
    ));
    config.read_timeout = Some(Duration::from_secs(120));
    kube::Client::try_from(config).expect("client")
}

pub async fn client() -> kube::Client {
    client_for(&crate::support::control_plane().kubeconfig).await
}

/// Creates every object, `concurrency` at a time; returns when each create came back, by name.
pub async fn create_all<K>(
    api: &Api<K>,
    objects: Vec<Value>,
    concurrency: usize,
) -> HashMap<String, Instant>
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    futures::stream::iter(objects)
        .map(|o| async move {
            let obj: K = serde_json::from_value(o).expect("object");
            let name = obj.meta().name.clone().unwrap_or_default();
            let mut tries = 0;
            loop {
                match api.create(&PostParams::default(), &obj).await {
                    Ok(_) => break,
                    Err(e) if tries < 5 => {
                        tries += 1;
                        eprintln!("bench: create {name}: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => panic!("create {name}: {e}"),
                }
            }
            (name, Instant::now())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// A RemoteJob of `client` on the simulator's Run:ai: queued 0.2 s, running `run_s` seconds remotely.
pub fn job(name: &str, client: &str, run_s: f64, extra: Value) -> Value {
    let mut j = json!({
        "apiVersion": "jobrelay.io/v1alpha1", "kind": "RemoteJob", "metadata": {"name": name},
        "spec": {"clientRef": {"name": client}, "runai": {"projectId": "5",
            "clusterId": "c0ffee00-0000-4000-8000-000000000000", "image": "busybox",
            "environment": [{"name": "SIM_RUN_SECONDS", "value": run_s.to_string()},
                            {"name": "SIM_QUEUE_SECONDS", "value": "0.2"}]}}
    });
    if let (Some(spec), Value::Object(extra)) = (j["spec"].as_object_mut(), extra) {
        spec.extend(extra);
    }
    j
}

/// The Secret `bench-credentials` and `n` Run:ai ApiClients `c0..` pointing at `base` (the proxy).
pub async fn api_clients(
    client: &kube::Client,
    ns: &str,
    n: usize,
    base: SocketAddr,
) -> Vec<String> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-credentials"},
        "stringData": {"client_id": "demo-client", "client_secret": "demo-secret"}});
    create_all(&secrets, vec![secret], 1).await;
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let objs = names
        .iter()
        .map(|name| {
            json!({"apiVersion": "jobrelay.io/v1alpha1", "kind": "ApiClient", "metadata": {"name": name},
            "spec": {"platform": "runai", "baseUrl": format!("http://{base}/runai"), "allowInsecureHttp": true,
                "auth": {"oauth2": {"tokenUrl": format!("http://{base}/runai/auth/realms/runai/protocol/openid-connect/token"),
                    "scopes": ["openid"], "extraParams": {"response_type": "id_token"}}},
                "credentialsSecretRef": {"name": "bench-credentials"}}})
        })
        .collect();
    let apis: Api<jobrelay::crd::ApiClient> = Api::namespaced(client.clone(), ns);
    create_all(&apis, objs, 32).await;
    names
}

/// What the watch saw of one RemoteJob, with local receive times.
#[derive(Default, Clone, Debug)]
pub struct Seen {
    pub submitted: Option<Instant>,
    pub succeeded: Option<Instant>,
    /// Distinct consecutive phases.
    pub phases: Vec<RemoteJobPhase>,
    pub events: u32,
}

/// A watch on the namespace's RemoteJobs, recording when each got its remote id and when it Succeeded.
#[derive(Clone)]
pub struct Tracker {
    pub seen: Arc<Mutex<HashMap<String, Seen>>>,
    /// Every progress (a new remote id or a new Succeeded), in receive order.
    pub progress: Arc<Mutex<Vec<Instant>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Tracker {
    pub async fn start(client: &kube::Client, ns: &str) -> Self {
        let api: Api<RemoteJob> = Api::namespaced(client.clone(), ns);
        let seen: Arc<Mutex<HashMap<String, Seen>>> = Default::default();
        let progress: Arc<Mutex<Vec<Instant>>> = Default::default();
        let (s, p) = (seen.clone(), progress.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = stream.next().await {
                let now = Instant::now();
                let obj = match ev {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                    Ok(watcher::Event::InitDone) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("bench: watch: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let name = obj.metadata.name.clone().unwrap_or_default();
                let mut seen = s.lock().unwrap();
                let e = seen.entry(name).or_default();
                e.events += 1;
                if let Some(st) = &obj.status {
                    if e.phases.last() != Some(&st.phase) {
                        e.phases.push(st.phase);
                    }
                    if st.remote_id.is_some() && e.submitted.is_none() {
                        e.submitted = Some(now);
                        p.lock().unwrap().push(now);
                    }
                    if st.phase == RemoteJobPhase::Succeeded && e.succeeded.is_none() {
                        e.succeeded = Some(now);
                        p.lock().unwrap().push(now);
                    }
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(30), ready_rx).await;
        Tracker {
            seen,
            progress,
            task: Arc::new(task),
        }
    }

    pub fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.seen.lock().unwrap().values().filter(|s| f(s)).count()
    }

    /// Waits until `n` jobs satisfy `f`; returns when the last one did (receive time).
    pub async fn wait(
        &self,
        what: &str,
        n: usize,
        timeout: Duration,
        f: impl Fn(&Seen) -> Option<Instant>,
    ) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let times: Vec<Instant> = seen.values().filter_map(&f).collect();
                if times.len() >= n {
                    return times.into_iter().max().unwrap();
                }
                if Instant::now() > deadline {
                    panic!(
                        "bench: timed out after {timeout:?} waiting for {n} jobs {what} ({} so far)",
                        times.len()
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A field of /proc/PID/status in MiB (VmRSS:, VmHWM:).
pub fn mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// One apiserver audit event (level Metadata), the fields we count by.
#[derive(serde::Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AuditEvent {
    pub verb: String,
    pub user_agent: String,
    pub user: AuditUser,
    pub object_ref: Option<ObjectRef>,
    pub request_uri: String,
    pub stage: String,
}

#[derive(serde::Deserialize, Debug, Clone, Default)]
#[serde(default)]
pub struct AuditUser {
    pub username: String,
}

#[derive(serde::Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectRef {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub subresource: String,
    pub api_group: String,
}

impl AuditEvent {
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
    pub fn ns(&self) -> &str {
        self.object_ref
            .as_ref()
            .map_or("", |o| o.namespace.as_str())
    }
    pub fn resource(&self) -> &str {
        self.object_ref.as_ref().map_or("", |o| o.resource.as_str())
    }
    /// Not made by us (the bench's client, kubectl or helm).
    pub fn by_operator(&self) -> bool {
        !(self.user_agent.starts_with(BENCH_AGENT)
            || self.user_agent.starts_with("kubectl")
            || self.user_agent.starts_with("Helm"))
    }
}

/// The apiserver audit log (`hack/testenv/up --audit`): `mark()` now, `since(mark)` later.
#[derive(Clone)]
pub struct Audit {
    pub path: Option<PathBuf>,
}

impl Audit {
    pub fn from_env(var: &str) -> Self {
        Audit {
            path: std::env::var_os(var).map(PathBuf::from),
        }
    }
    pub fn mark(&self) -> u64 {
        self.path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }
    /// Events written after `mark` (waits a moment for the apiserver to flush).
    pub async fn since(&self, mark: u64) -> Vec<AuditEvent> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut f = std::fs::File::open(path).expect("audit log");
        f.seek(SeekFrom::Start(mark)).unwrap();
        let mut out = Vec::new();
        for line in std::io::BufReader::new(f.by_ref()).lines() {
            let Ok(line) = line else { break };
            if let Ok(e) = serde_json::from_str::<AuditEvent>(&line)
                && e.stage == "ResponseComplete"
            {
                out.push(e);
            }
        }
        out
    }
}

/// Requests to the simulator, by kind, counted by a proxy in front of it.
#[derive(Default, Debug, Clone)]
pub struct Calls {
    pub by_kind: BTreeMap<&'static str, u64>,
    /// 401s on anything but the token endpoint.
    pub unauthorized: u64,
}

impl Calls {
    pub fn get(&self, k: &str) -> u64 {
        self.by_kind.get(k).copied().unwrap_or(0)
    }
    pub fn platform(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|(k, _)| **k != "token")
            .map(|(_, v)| v)
            .sum()
    }
    pub fn minus(&self, before: &Calls) -> Calls {
        let mut c = self.clone();
        for (k, v) in &before.by_kind {
            *c.by_kind.entry(k).or_default() -= v;
        }
        c.unauthorized -= before.unauthorized;
        c
    }
}

fn kind_of(method: &http::Method, path: &str, query: &str) -> &'static str {
    if path.contains("/token") {
        "token"
    } else if method == http::Method::POST && path.ends_with("/trainings") {
        "create"
    } else if method == http::Method::GET && path.ends_with("/workloads") {
        if query.contains("name%3D%3D") || query.contains("name==") {
            "lookup"
        } else {
            "list"
        }
    } else if method == http::Method::GET {
        "get"
    } else {
        "other"
    }
}

/// A counting HTTP proxy to `upstream` on 127.0.0.1; the ApiClients point at it.
pub struct Proxy {
    pub addr: SocketAddr,
    pub calls: Arc<Mutex<Calls>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        use axum::body::{Body, Bytes};
        use axum::extract::State;
        use axum::response::Response;
        type S = (reqwest::Client, SocketAddr, Arc<Mutex<Calls>>);
        async fn forward(
            State((http, up, calls)): State<S>,
            method: http::Method,
            uri: http::Uri,
            headers: http::HeaderMap,
            body: Bytes,
        ) -> Response {
            let kind = kind_of(&method, uri.path(), uri.query().unwrap_or(""));
            let pq = uri.path_and_query().map_or("/", |p| p.as_str());
            let mut req = http.request(method, format!("http://{up}{pq}")).body(body);
            for (k, v) in &headers {
                if k != http::header::HOST && k != http::header::CONTENT_LENGTH {
                    req = req.header(k, v);
                }
            }
            let ans = match req.send().await {
                Ok(a) => a,
                Err(e) => {
                    return Response::builder()
                        .status(502)
                        .body(Body::from(e.to_string()))
                        .unwrap();
                }
            };
            let status = ans.status();
            {
                let mut c = calls.lock().unwrap();
                *c.by_kind.entry(kind).or_default() += 1;
                if status == 401 && kind != "token" {
                    c.unauthorized += 1;
                }
            }
            let mut out = Response::builder().status(status);
            for (k, v) in ans.headers() {
                if k != http::header::CONTENT_LENGTH && k != http::header::TRANSFER_ENCODING {
                    out = out.header(k, v);
                }
            }
            out.body(Body::from(ans.bytes().await.unwrap_or_default()))
                .unwrap()
        }
        let calls: Arc<Mutex<Calls>> = Default::default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((http, upstream, calls.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Proxy { addr, calls }
    }
    pub fn snapshot(&self) -> Calls {
        self.calls.lock().unwrap().clone()
    }
}

/// A simulator (tokens living `token_ttl`) behind a counting proxy.
pub async fn platform(token_ttl: Option<Duration>) -> (jobrelay::simulator::Handle, Proxy) {
    let sim = crate::support::operator::simulator(token_ttl).await;
    let proxy = Proxy::start(sim.addr).await;
    (sim, proxy)
}

/// A row of the table: scenario, metric, value, target, met (None: no target).
pub struct Row(
    pub String,
    pub String,
    pub String,
    pub String,
    pub Option<bool>,
);

/// The table and `target/bench/results.json`.
#[derive(Default)]
pub struct Report {
    pub json: serde_json::Map<String, Value>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Report {
    /// Sets `group.key` in the JSON.
    pub fn set(&mut self, group: &str, key: &str, v: impl Into<Value>) {
        let g = self.json.entry(group).or_insert_with(|| json!({}));
        g[key] = v.into();
    }
    pub fn row(
        &mut self,
        scenario: &str,
        metric: &str,
        value: String,
        target: &str,
        met: Option<bool>,
    ) {
        self.rows.push(Row(
            scenario.into(),
            metric.into(),
            value,
            target.into(),
            met,
        ));
    }
    pub fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        eprintln!("bench: note: {n}");
        self.notes.push(n);
    }
}
