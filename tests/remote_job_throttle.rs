//! `spec.requestsPerSecond` end to end: two ApiClients on one operator, each on its own simulator, the
//! same burst of jobs on both. The limited one's platform sees requests at least 1/n s apart (read from
//! the simulator's arrival log); the unlimited one shows the burst the limit exists to smooth. Both
//! finish every job, each submitted once.

mod support;

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::Api;
use support::TestNamespace;
use support::fixtures::*;
use support::operator::{Operator, apply, counters, simulator};

const RATE: i64 = 2;
const JOBS: usize = 6;

/// The most platform requests (token requests aside) that arrived within any `window_ms`.
fn busiest_window(sim: &jobrelay::simulator::Handle, window_ms: i64) -> usize {
    let times: Vec<i64> = sim
        .state
        .lock()
        .request_log
        .iter()
        .filter(|(_, r)| !r.contains("/token") && !r.contains("/auth/realms/"))
        .map(|(at, _)| *at)
        .collect();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < window_ms)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_per_second_paces_the_platform_calls_of_one_api_client() {
    let ns = TestNamespace::new("e2e-throttle");
    let (limited, free) = (simulator(None).await, simulator(None).await);
    let op = Operator::start(&ns.name).await;
    apply(
        &ns.name,
        &runai_client().replace(
            "  platform: runai\n",
            &format!("  platform: runai\n  requestsPerSecond: {RATE}\n"),
        ),
        Some(&limited),
    );
    // The same ApiClient, unlimited, named `free`, on the other simulator.
    let free_client = runai_client()
        .split("\n---\n")
        .nth(1)
        .unwrap()
        .replace("name: runai\n", "name: free\n");
    apply(&ns.name, &free_client, Some(&free));
    // All jobs in one apply, so both clients get their burst at once however slow kubectl is.
    let mut all = Vec::new();
    for i in 0..JOBS {
        let env = [("SIM_RUN_SECONDS", "2"), ("SIM_QUEUE_SECONDS", "0.5")];
        all.push(runai_job(
            &format!("paced-{i}"),
            "  pollInterval: 1s\n",
            &env,
        ));
        all.push(
            runai_job(&format!("burst-{i}"), "  pollInterval: 1s\n", &env)
                .replace("clientRef: {name: runai}", "clientRef: {name: free}"),
        );
    }
    apply(&ns.name, &all.join("\n---\n"), None);
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    for i in 0..JOBS {
        for name in [format!("paced-{i}"), format!("burst-{i}")] {
            wait_phase(&jobs, &name, RemoteJobPhase::Succeeded).await;
        }
    }

    // At n per second and no burst, any 2 s hold at most 2n + 1 requests; one more for arrival jitter.
    let allowed = (2 * RATE + 2) as usize;
    let paced = busiest_window(&limited, 2000);
    let burst = busiest_window(&free, 2000);
    eprintln!("busiest 2 s: {paced} requests limited, {burst} unlimited (allowed {allowed})");
    assert!(paced <= allowed, "{paced} requests in 2 s at {RATE}/s");
    assert!(
        burst > allowed,
        "the unlimited client bursts past the limit ({burst}), so the check above can fail"
    );
    for sim in [&limited, &free] {
        let creates = counters(sim).creates;
        assert_eq!(creates.len(), JOBS, "{creates:?}");
        assert!(creates.values().all(|n| *n == 1), "{creates:?}");
    }
    let metrics = op.metrics().await;
    let waited = |apic: &str| -> Option<f64> {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("jobrelay_throttled_seconds_total")
                    && l.contains(&format!("apiclient=\"{apic}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    assert!(waited("runai").is_some_and(|s| s > 0.0), "{metrics}");
    assert_eq!(waited("free"), None, "no limit, no waiting");
}
