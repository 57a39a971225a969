//! `make bench`: the operator under load on the real test control plane and the simulator. Creates N
//! RemoteJobs at once (Run:ai, each running 1 s remotely) and reports how fast they are submitted and
//! finished, how many platform and token requests they cost, and the operator's memory. Prints a table.
//!
//! Knobs: BENCH_JOBS (default 100), BENCH_RUN_SECONDS (default 1).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::Api;
use support::operator::{Operator, apply, counters, example, simulator};
use support::{TestNamespace, wait_for};

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_or("BENCH_JOBS", 100);
    let run_s = env_or("BENCH_RUN_SECONDS", 1);
    let ns = TestNamespace::new("bench");
    let sim = simulator(None).await;
    let op = Operator::start(&ns.name).await;
    let pid = op.pid();
    let idle_rss = rss_kib(pid, "VmRSS:");
    apply(
        &ns.name,
        &example("runai.yaml")
            .split("\n---\n")
            .take(2)
            .collect::<Vec<_>>()
            .join("\n---\n"),
        Some(&sim),
    );

    let mut docs = String::new();
    for i in 0..n {
        docs.push_str(&format!(
            "---\napiVersion: jobrelay.io/v1alpha1\nkind: RemoteJob\nmetadata:\n  name: bench-{i}\nspec:\n  clientRef: {{name: runai}}\n  runai:\n    projectId: \"5\"\n    clusterId: c0ffee00-0000-4000-8000-000000000000\n    image: busybox\n    environment:\n      - {{name: SIM_RUN_SECONDS, value: \"{run_s}\"}}\n      - {{name: SIM_QUEUE_SECONDS, value: \"0.2\"}}\n"
        ));
    }
    let started = Instant::now();
    apply(&ns.name, &docs, None);
    let applied = started.elapsed();
    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    let all_submitted = std::sync::Mutex::new(None);
    let peak = std::sync::atomic::AtomicU64::new(0);
    let (sub_ref, peak_ref, jobs_ref) = (&all_submitted, &peak, &jobs);
    let finished = wait_for(
        "all jobs to succeed",
        Duration::from_secs(600),
        move || async move {
            peak_ref.fetch_max(rss_kib(pid, "VmRSS:"), std::sync::atomic::Ordering::Relaxed);
            let list = jobs_ref.list(&Default::default()).await.ok()?;
            let submitted = list
                .items
                .iter()
                .filter(|j| j.status.as_ref().is_some_and(|s| s.remote_id.is_some()))
                .count();
            let mut sub = sub_ref.lock().unwrap();
            if submitted as u64 == n && sub.is_none() {
                *sub = Some(started.elapsed());
            }
            let done = list
                .items
                .iter()
                .filter(|j| {
                    j.status
                        .as_ref()
                        .is_some_and(|s| s.phase == RemoteJobPhase::Succeeded)
                })
                .count();
            (done as u64 == n).then(|| (started.elapsed(), list.items))
        },
    )
    .await;
    let (total, items) = finished;
    let mut submit_latency: Vec<f64> = items
        .iter()
        .filter_map(|j| {
            let created = j.metadata.creation_timestamp.as_ref()?.0;
            let submitted = j
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Submitted" && c.status == "True")?
                .last_transition_time
                .0;
            Some((submitted.as_millisecond() - created.as_millisecond()) as f64 / 1000.0)
        })
        .collect();
    submit_latency.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let c = counters(&sim);
    let platform_requests: u64 = c
        .requests
        .iter()
        .filter(|(k, _)| !k.contains("/token"))
        .map(|(_, v)| v)
        .sum();
    let token_requests: u64 = c.token_requests.values().sum();
    let creates: u64 = c.creates.values().sum();
    let hwm = rss_kib(pid, "VmHWM:");
    let peak_rss = peak.load(std::sync::atomic::Ordering::Relaxed);
    let all_submitted = *all_submitted.lock().unwrap();

    println!(
        "\njobrelay operator benchmark ({n} Run:ai jobs, {run_s} s each remotely, 2-core machine)\n"
    );
    println!("| metric | value |");
    println!("| --- | --- |");
    println!(
        "| kubectl apply of {n} RemoteJobs | {:.2} s |",
        applied.as_secs_f64()
    );
    println!(
        "| all submitted (remote id in status) | {:.2} s |",
        all_submitted.unwrap_or(total).as_secs_f64()
    );
    println!("| all Succeeded | {:.2} s |", total.as_secs_f64());
    println!(
        "| throughput | {:.1} jobs/s |",
        n as f64 / total.as_secs_f64()
    );
    println!(
        "| submit latency p50 / p95 / max | {:.2} / {:.2} / {:.2} s |",
        percentile(&submit_latency, 0.5),
        percentile(&submit_latency, 0.95),
        percentile(&submit_latency, 1.0)
    );
    println!("| remote creates (want {n}) | {creates} |");
    println!(
        "| platform requests per job | {:.1} |",
        platform_requests as f64 / n as f64
    );
    println!("| token requests | {token_requests} |");
    println!(
        "| operator RSS idle / peak (sampled) / high-water | {} / {} / {} MiB |",
        idle_rss / 1024,
        peak_rss / 1024,
        hwm / 1024
    );
    assert_eq!(creates, n, "exactly one create per RemoteJob");
    drop(op);
}
