//! The simulator's shared state: configuration, jobs, counters, injected faults; persisted to the
//! state file (when given) after every change so a restarted simulator continues where it was.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::jobs::Job;

/// Simulator configuration (from the command line or a test).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// OAuth2 clients (Run:ai, DAI): id → secret.
    pub clients: BTreeMap<String, String>,
    /// OpenPAI users: name → password.
    pub users: BTreeMap<String, String>,
    /// Token lifetime; `None` uses each platform's usual one (Run:ai 3600 s, OpenPAI 7 days, DAI 300 s).
    pub token_ttl: Option<Duration>,
    pub state_file: Option<PathBuf>,
    /// OpenPAI submit limit per user and hour (OpenPAI's default is 60); 0 disables.
    pub openpai_submits_per_hour: u32,
    /// OpenPAI list limit per user and minute (OpenPAI's default is 60); 0 disables.
    pub openpai_lists_per_min: u32,
    /// OpenPAI limit on all its API calls per client address and minute (OpenPAI's default is 600);
    /// 0 disables.
    pub openpai_requests_per_min: u32,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// OIDC issuers whose RS256 tokens are accepted besides our own (e.g. a real Keycloak realm URL).
    pub trust_issuers: Vec<String>,
    /// How far the simulated platforms' clock is ahead of the real one, in seconds (negative: behind):
    /// the DAI times they answer, the `since` they filter by, and every `Date` header.
    pub clock_skew_seconds: i64,
}

/// A fault to inject. Matches requests of `platform` (`runai`, `openpai`, `dai`, or `*`) and `op`
/// (`token`, `create`, `get`, `list`, `cancel`, `suspend`, `resume`, or `*`), `count` times (0 = forever).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(default = "any")]
    pub platform: String,
    #[serde(default = "any")]
    pub op: String,
    pub kind: FaultKind,
    #[serde(default)]
    pub count: u32,
    /// Seconds, for `tooManyRequests` and `unavailable`.
    #[serde(default = "one")]
    pub retry_after: u64,
    /// Milliseconds, for `latency`.
    #[serde(default)]
    pub latency_ms: u64,
}

impl Fault {
    /// A one-shot fault of `kind` on `platform`/`op` (Retry-After 1 s, no latency); change the rest
    /// with struct update syntax: `Fault { count: 3, ..Fault::once("runai", "get", kind) }`.
    pub fn once(platform: &str, op: &str, kind: FaultKind) -> Self {
        Fault {
            platform: platform.into(),
            op: op.into(),
            kind,
            count: 1,
            retry_after: 1,
            latency_ms: 0,
        }
    }
}

fn any() -> String {
    "*".into()
}
fn one() -> u64 {
    1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// Delay the answer by `latencyMs`.
    Latency,
    /// 401 although the token is valid.
    Unauthorized,
    /// 429 with Retry-After.
    TooManyRequests,
    /// 500.
    ServerError,
    /// 503 with Retry-After.
    Unavailable,
    /// Store the create, then close the connection without a proper response.
    CommitThenDrop,
    /// Store the create, then answer 502 Bad Gateway (a proxy that lost the platform's answer): a
    /// 5xx on a create is no proof that nothing was created.
    CommitThenBadGateway,
    /// Run:ai: the next create whose name is taken answers 400 (`SubmissionErrorV2`-shaped) instead of
    /// 409 — the trainings create documents 400 but not 409 (platforms.md §1.2).
    DuplicateAsBadRequest,
    /// 404 as a web framework answers a route it does not have (DAI/FastAPI `{"detail":"Not Found"}`):
    /// the read itself is missing, not the job.
    RouteNotFound,
    /// 405 Method Not Allowed.
    MethodNotAllowed,
    /// 501 Not Implemented.
    NotImplemented,
}

/// Counters tests assert on (exactly-once, token economy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Accepted creates per `platform/name` (DAI: `dai/<model or script>`).
    pub creates: BTreeMap<String, u64>,
    /// Successful token requests per client id or user.
    pub token_requests: BTreeMap<String, u64>,
    /// Requests per `METHOD /route STATUS`.
    pub requests: BTreeMap<String, u64>,
    /// Look-ups by remote name per platform (Run:ai's `filterBy=name==…`; a route count cannot tell
    /// them from the project lists on the same route).
    #[serde(default)]
    pub lookups: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    jobs: BTreeMap<String, Job>,
    counters: Counters,
    seq: u64,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub jobs: BTreeMap<String, Job>,
    pub counters: Counters,
    pub seq: u64,
    pub paused_at: Option<i64>,
    pub faults: Vec<Fault>,
    /// OpenPAI rate-limit windows: hit timestamps (ms) per limiter and key.
    pub rate_windows: BTreeMap<String, Vec<i64>>,
    /// The latest requests: arrival time (ms) and `METHOD /route STATUS`, oldest first.
    pub request_log: VecDeque<(i64, String)>,
}

/// How many requests [`Inner::request_log`] keeps.
pub const REQUEST_LOG: usize = 10_000;

impl Inner {
    pub fn log_request(&mut self, at_ms: i64, request: String) {
        if self.request_log.len() == REQUEST_LOG {
            self.request_log.pop_front();
        }
        self.request_log.push_back((at_ms, request));
    }
}

pub struct State {
    pub config: Config,
    pub trusted: super::external::TrustedIssuers,
    /// Signing key of the tokens; random per process unless a state file keeps it stable.
    pub key: Vec<u8>,
    pub inner: Mutex<Inner>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl State {
    /// A real time (ms since the epoch) as the platforms' skewed clock shows it.
    pub fn platform_ms(&self, ms: i64) -> i64 {
        ms.saturating_add(self.config.clock_skew_seconds.saturating_mul(1000))
    }

    pub fn new(config: Config) -> std::io::Result<Self> {
        let mut inner = Inner {
            faults: config.faults.clone(),
            ..Default::default()
        };
        if let Some(Ok(text)) = config.state_file.as_ref().map(std::fs::read_to_string) {
            let p: Persisted = serde_json::from_str(&text)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            (inner.jobs, inner.counters, inner.seq) = (p.jobs, p.counters, p.seq);
        }
        // With a state file the key derives from it, so tokens stay valid across a restart.
        let key = match &config.state_file {
            Some(p) => format!("jobrelay-simulator:{}", p.display()).into_bytes(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        Ok(State {
            trusted: super::external::TrustedIssuers::new(config.trust_issuers.clone()),
            config,
            key,
            inner: Mutex::new(inner),
        })
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the state file (if any). Called with the lock held, after a change.
    pub fn persist(&self, inner: &Inner) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let p = Persisted {
            jobs: inner.jobs.clone(),
            counters: inner.counters.clone(),
            seq: inner.seq,
        };
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, serde_json::to_vec(&p).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// A copy of job `id` if it belongs to `platform`.
    pub fn job(&self, platform: &str, id: &str) -> Option<Job> {
        self.lock()
            .jobs
            .get(id)
            .filter(|j| j.platform == platform)
            .cloned()
    }

    /// Stores a newly created job, counts the create under `counter_key` (`platform/name`) and persists.
    pub fn record_create(&self, inner: &mut Inner, job: Job, counter_key: String) {
        inner.jobs.insert(job.id.clone(), job);
        *inner.counters.creates.entry(counter_key).or_default() += 1;
        self.persist(inner);
    }

    /// Takes the first matching fault (counting it down).
    pub fn take_fault(&self, platform: &str, op: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let idx = inner.faults.iter().position(|f| {
            (f.platform == "*" || f.platform == platform) && (f.op == "*" || f.op == op)
        })?;
        let fault = inner.faults[idx].clone();
        if fault.count == 1 {
            inner.faults.remove(idx);
        } else if fault.count > 1 {
            inner.faults[idx].count -= 1;
        }
        Some(fault)
    }

    pub fn token_ttl(&self, platform_default: Duration) -> Duration {
        self.config.token_ttl.unwrap_or(platform_default)
    }

    pub fn next_seq(inner: &mut Inner) -> u64 {
        inner.seq += 1;
        inner.seq
    }
}
