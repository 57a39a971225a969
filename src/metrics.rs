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
pub struct BuildLabels {
    pub version: String,
    pub revision: String,
}

/// The operator's version and the commit it was built from (`JOBRELAY_REVISION` at build time, set
/// by hack/image; "unknown" otherwise).
pub fn build_labels() -> BuildLabels {
    BuildLabels {
        version: env!("CARGO_PKG_VERSION").into(),
        revision: option_env!("JOBRELAY_REVISION")
            .filter(|r| !r.is_empty())
            .unwrap_or("unknown")
            .into(),
    }
}

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
    /// When the current token expires (Unix seconds; 0 without one): the expiry is not in status.
    pub token_expiry_timestamp_seconds: Family<ClientLabels, Gauge>,
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
    pub build_info: Family<BuildLabels, Gauge>,
    /// The ApiClients (namespace, name) that have series, so a deleted one's can be removed.
    clients: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
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
            token_expiry_timestamp_seconds: Family::default(),
            reconciles: Family::default(),
            reconcile_seconds: Family::new_with_constructor(latency_histogram),
            remote_calls: Family::default(),
            remote_call_seconds: Family::new_with_constructor(latency_histogram),
            job_phase_changes: Family::default(),
            jobs_by_phase: Family::default(),
            submit_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            throttled_seconds: Family::default(),
            leader: Gauge::default(),
            build_info: Family::default(),
            clients: Default::default(),
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
            "token_expiry_timestamp_seconds",
            "When the current token of an ApiClient expires (Unix seconds, 0 without a token)",
            m.token_expiry_timestamp_seconds.clone(),
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
        registry.register(
            "build_info",
            "1, labelled with the operator's version and the commit it was built from",
            m.build_info.clone(),
        );
        m.build_info.get_or_create(&build_labels()).set(1);
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

    /// ApiClient `namespace/name` has (or is about to have) series.
    pub fn client_seen(&self, namespace: &str, name: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.into(), name.into()));
    }

    /// Removes the series of every ApiClient `alive(namespace, name)` says is gone.
    pub fn forget_clients(&self, alive: impl Fn(&str, &str) -> bool) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<_> = clients
            .iter()
            .filter(|(ns, name)| !alive(ns, name))
            .cloned()
            .collect();
        for (namespace, apiclient) in gone {
            clients.remove(&(namespace.clone(), apiclient.clone()));
            let labels = ClientLabels {
                namespace: namespace.clone(),
                apiclient: apiclient.clone(),
            };
            self.token_expiry_seconds.remove(&labels);
            self.token_expiry_timestamp_seconds.remove(&labels);
            self.throttled_seconds.remove(&labels);
            for result in TOKEN_RESULTS {
                self.token_requests.remove(&TokenRequestLabels {
                    namespace: namespace.clone(),
                    apiclient: apiclient.clone(),
                    result: (*result).into(),
                });
            }
        }
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

/// Every `result` of `token_requests`: success, or an AuthError reason.
const TOKEN_RESULTS: &[&str] = {
    use crate::crd::conditions::reasons::*;
    &[
        "success",
        SECRET_NOT_FOUND,
        SECRET_KEY_MISSING,
        INVALID_CREDENTIALS,
        TOKEN_ENDPOINT_UNREACHABLE,
        TLS_ERROR,
        INVALID_TOKEN_RESPONSE,
        DISCOVERY_FAILED,
        INVALID_SPEC,
        EGRESS_DENIED,
        INSECURE_NOT_PERMITTED,
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_and_deleted_clients() {
        let m = Metrics::default();
        let text = m.encode();
        assert!(
            text.contains(&format!(
                "jobrelay_build_info{{version=\"{}\",revision=",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        for (ns, name) in [("a", "gone"), ("a", "kept")] {
            m.client_seen(ns, name);
            let labels = ClientLabels {
                namespace: ns.into(),
                apiclient: name.into(),
            };
            m.token_expiry_seconds.get_or_create(&labels).set(60);
            m.throttled_seconds.get_or_create(&labels).inc_by(1.0);
            for result in ["success", "TokenEndpointUnreachable"] {
                m.token_requests
                    .get_or_create(&TokenRequestLabels {
                        namespace: ns.into(),
                        apiclient: name.into(),
                        result: result.into(),
                    })
                    .inc();
            }
        }
        m.forget_clients(|_, name| name == "kept");
        let text = m.encode();
        assert!(!text.contains("apiclient=\"gone\""), "{text}");
        assert_eq!(text.matches("apiclient=\"kept\"").count(), 4, "{text}");
    }

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
