//! `spec.requestsPerSecond` end to end: two ApiClients on one operator, each on its own simulator, the
//! same burst of jobs on both. The limited one's platform sees requests at least 1/n s apart (read from
//! the simulator's arrival log); the unlimited one shows the workload needs more requests than the
//! bound allows. Both finish every job, each submitted once.

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

    // The limiter hands out one permit per 1/n s and no burst; a request reaches the platform some
    // time after its permit (token, HTTP, a busy scheduler). Allowing up to 1 s of that delay, any
    // 2 s window holds the permits of 3 s at most: 3n + 1 requests.
    let allowed = (3 * RATE + 1) as usize;
    let paced = busiest_window(&limited, 2000);
    let burst = busiest_window(&free, 2000);
    eprintln!("busiest 2 s: {paced} requests limited, {burst} unlimited (allowed {allowed})");
    assert!(paced <= allowed, "{paced} requests in 2 s at {RATE}/s");
    // The same permits over the whole run: the first and the last request of the limited client
    // are at least (count - 1)/n s apart, less the first request's delay (1 s at most, as above).
    let log: Vec<i64> = limited
        .state
        .lock()
        .request_log
        .iter()
        .filter(|(_, r)| !r.contains("/token") && !r.contains("/auth/realms/"))
        .map(|(at, _)| *at)
        .collect();
    let span = log.last().unwrap() - log.first().unwrap();
    let least = (log.len() as i64 - 1) * 1000 / RATE - 1000;
    assert!(
        span >= least,
        "{} requests in {span} ms at {RATE}/s",
        log.len()
    );
    // The check can fail at all: the same work, unlimited, needs more requests than one window
    // allows (a count from the workload, not a hoped-for burst on a busy machine).
    let unlimited = free
        .state
        .lock()
        .request_log
        .iter()
        .filter(|(_, r)| !r.contains("/token") && !r.contains("/auth/realms/"))
        .count();
    assert!(
        unlimited > allowed,
        "the workload needs {unlimited} requests, more than the {allowed} one window may hold"
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
