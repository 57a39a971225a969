//! The simulator's shared state: jobs, the simulated clock, fault rules, counters, rate-limit
//! windows, and persistence to `--state-file`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::SimConfig;
use super::faults::{Decision, FaultRule, decide};
use super::lifecycle::SimJob;

/// Counters tests read through `/_admin/counters` to assert exactly-once and token economy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// Accepted creates per `platform/name` (DAI: `dai/<model or script>`).
    pub creates: BTreeMap<String, u64>,
    /// Successful token requests per `platform/client-or-user`.
    pub tokens: BTreeMap<String, u64>,
    /// Requests per `METHOD route status` (status `dropped` for commit-then-drop).
    pub requests: BTreeMap<String, u64>,
}

/// What survives a restart.
#[derive(Serialize, Deserialize, Default)]
struct Persisted {
    jobs: Vec<SimJob>,
    paused_total: f64,
    signing_key: Vec<u8>,
    next_pid: u64,
}

pub struct Inner {
    pub jobs: Vec<SimJob>,
    pub faults: Vec<FaultRule>,
    pub counters: Counters,
    paused_since: Option<f64>,
    paused_total: f64,
    /// (user, limiter) → (window start, count), wall-clock seconds.
    rate: HashMap<(String, &'static str), (f64, u32)>,
    pub next_pid: u64,
    pub signing_key: Vec<u8>,
}

pub struct Sim {
    pub config: SimConfig,
    inner: Mutex<Inner>,
    /// External issuers whose RS256 tokens are accepted too (`--trust-issuer`).
    pub trusted: Option<super::external::TrustedIssuers>,
}

pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Inner {
    /// The simulated clock: wall time minus time spent paused.
    pub fn now(&self) -> f64 {
        let wall = self.paused_since.unwrap_or_else(wall_now);
        wall - self.paused_total
    }

    pub fn set_paused(&mut self, paused: bool) {
        match (paused, self.paused_since) {
            (true, None) => self.paused_since = Some(wall_now()),
            (false, Some(since)) => {
                self.paused_total += wall_now() - since;
                self.paused_since = None;
            }
            _ => {}
        }
    }

    pub fn paused(&self) -> bool {
        self.paused_since.is_some()
    }

    pub fn decide(&mut self, platform: &str, op: &str) -> Decision {
        decide(&mut self.faults, platform, op)
    }

    /// Fixed-window limiter; `Err(seconds until the window ends)` when over the limit.
    pub fn rate_check(
        &mut self,
        user: &str,
        limiter: &'static str,
        limit: u32,
        window: f64,
    ) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let now = wall_now();
        let entry = self
            .rate
            .entry((user.to_string(), limiter))
            .or_insert((now, 0));
        if now - entry.0 >= window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return Err((window - (now - entry.0)).ceil().max(1.0) as u64);
        }
        entry.1 += 1;
        Ok(())
    }

    pub fn count_create(&mut self, key: String) {
        *self.counters.creates.entry(key).or_default() += 1;
    }
}

impl Sim {
    pub fn new(config: SimConfig) -> anyhow::Result<Self> {
        let persisted: Persisted = match &config.state_file {
            Some(p) if p.exists() => serde_json::from_slice(&std::fs::read(p)?)?,
            _ => Persisted::default(),
        };
        let signing_key = if persisted.signing_key.is_empty() {
            rand::random::<[u8; 32]>().to_vec()
        } else {
            persisted.signing_key
        };
        let inner = Inner {
            jobs: persisted.jobs,
            faults: config.faults.clone(),
            counters: Counters::default(),
            paused_since: None,
            paused_total: persisted.paused_total,
            rate: HashMap::new(),
            next_pid: persisted.next_pid.max(1000),
            signing_key,
        };
        let trusted = (!config.trust_issuers.is_empty())
            .then(|| super::external::TrustedIssuers::new(config.trust_issuers.clone()));
        Ok(Self {
            config,
            inner: Mutex::new(inner),
            trusted,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking handler must not take the whole simulator down with a poisoned lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes jobs and clock to the state file (atomically: temp file + rename).
    pub fn persist(&self, inner: &Inner) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let p = Persisted {
            jobs: inner.jobs.clone(),
            paused_total: inner.paused_total
                + inner.paused_since.map(|s| wall_now() - s).unwrap_or(0.0),
            signing_key: inner.signing_key.clone(),
            next_pid: inner.next_pid,
        };
        let tmp = path.with_extension("tmp");
        let result = serde_json::to_vec(&p)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!(error = %e, path = %path.display(), "could not write simulator state");
        }
    }
}
