//! Prometheus metrics (OpenMetrics text at /metrics). Labels carry names and outcomes, never secrets.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub namespace: String,
    pub apiclient: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenRequestLabels {
    pub namespace: String,
    pub apiclient: String,
    /// `success` or a Ready-condition reason (InvalidCredentials, TokenEndpointUnreachable, …).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemoteCallLabels {
    pub platform: String,
    pub operation: String,
    /// `ok` or the error class.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub token_requests: Family<TokenRequestLabels, Counter>,
    pub token_expiry_seconds: Family<ClientLabels, Gauge>,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_seconds: Family<ReconcileLabels, Histogram>,
    pub remote_calls: Family<RemoteCallLabels, Counter>,
    pub remote_call_seconds: Family<RemoteCallLabels, Histogram>,
    pub job_phase_changes: Family<PhaseLabels, Counter>,
    pub jobs_by_phase: Family<PhaseLabels, Gauge>,
    pub submit_seconds: Histogram,
    pub throttled_seconds: Family<ClientLabels, Counter<f64, AtomicU64>>,
    /// 1 while this replica holds the leader Lease (or runs without election), else 0.
    pub leader: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("jobrelay");
        let m = Metrics {
            token_requests: Family::default(),
            token_expiry_seconds: Family::default(),
            reconciles: Family::default(),
            reconcile_seconds: Family::new_with_constructor(latency_histogram),
            remote_calls: Family::default(),
            remote_call_seconds: Family::new_with_constructor(latency_histogram),
            job_phase_changes: Family::default(),
            jobs_by_phase: Family::default(),
            submit_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            throttled_seconds: Family::default(),
            leader: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "token_requests",
            "Token requests by ApiClient and result",
            m.token_requests.clone(),
        );
        registry.register(
            "token_expiry_seconds",
            "Seconds until the current token of an ApiClient expires",
            m.token_expiry_seconds.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles by controller and result",
            m.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            m.reconcile_seconds.clone(),
        );
        registry.register(
            "remote_calls",
            "Calls to remote platforms by operation and result",
            m.remote_calls.clone(),
        );
        registry.register(
            "remote_call_duration_seconds",
            "Remote call latency",
            m.remote_call_seconds.clone(),
        );
        registry.register(
            "remote_job_phase_changes",
            "RemoteJob phase changes by new phase",
            m.job_phase_changes.clone(),
        );
        registry.register(
            "remote_jobs",
            "RemoteJobs by phase (watched namespaces)",
            m.jobs_by_phase.clone(),
        );
        registry.register(
            "submit_duration_seconds",
            "Time from RemoteJob creation to the platform accepting it",
            m.submit_seconds.clone(),
        );
        registry.register(
            "throttled_seconds",
            "Seconds platform calls waited for their ApiClient's requestsPerSecond",
            m.throttled_seconds.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica leads (reconciles), 0 on a standby",
            m.leader.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding metrics into a String");
        out
    }

    pub fn observe_reconcile(&self, controller: &str, ok: bool, took: Duration) {
        let l = ReconcileLabels {
            controller: controller.into(),
            result: if ok { "ok" } else { "error" }.into(),
        };
        self.reconciles.get_or_create(&l).inc();
        self.reconcile_seconds
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_registered_families() {
        let m = Metrics::default();
        m.observe_reconcile("apiclient", true, Duration::from_millis(3));
        m.token_requests
            .get_or_create(&TokenRequestLabels {
                namespace: "n".into(),
                apiclient: "a".into(),
                result: "success".into(),
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("jobrelay_reconciles_total{controller=\"apiclient\",result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("jobrelay_token_requests_total{namespace=\"n\",apiclient=\"a\",result=\"success\"} 1"), "{text}");
    }
}
