//! `make bench`: jobrelay against the physical limit and against what users do without it (issue 12).
//!
//! Two parts, one binary (`BENCH_PART`):
//! - `loopback` (default): the test control plane of `hack/testenv/up --audit` (JOBRELAY_TEST_KUBECONFIG,
//!   JOBRELAY_TEST_AUDIT_LOG), the simulator in-process behind a counting proxy, the operator as a process
//!   (`support::operator::Operator`): burst, steady, tokens, writes, remote calls, memory, the raw PATCH
//!   limit, backlog (benches/scenarios/{throughput,cost,memory}.rs).
//! - `node`: the one-node cluster of `hack/testenv/up --node --audit`: jobrelay installed by the chart
//!   against 50 batch/v1 Jobs of benches/alt-client (benches/scenarios/alternative.rs), then fail-over
//!   with the chart's two replicas (failover.rs). It adds its figures to the loopback part's results.
//!
//! Prints a table on stdout and writes `target/bench/results.json`. `QUICK=1`: everything at 1/10 scale
//! (targets shown scaled where they depend on the size). Nothing is asserted: the figures are reported.
//! `BENCH_ONLY=burst,steady,...` runs a subset of the loopback part.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "scenarios/alternative.rs"]
mod alternative;
#[path = "scenarios/common.rs"]
mod common;
#[path = "scenarios/cost.rs"]
mod cost;
#[path = "scenarios/failover.rs"]
mod failover;
#[path = "scenarios/memory.rs"]
mod memory;
#[path = "scenarios/table.rs"]
mod table;
#[path = "scenarios/throughput.rs"]
mod throughput;

use std::time::Instant;

use common::{Audit, Report, Scale};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let scale = Scale::from_env();
    let part = std::env::var("BENCH_PART").unwrap_or_else(|_| "loopback".into());
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wanted = |s: &str| only.is_empty() || only.split(',').any(|o| o.trim() == s);
    let audit = Audit::from_env("JOBRELAY_TEST_AUDIT_LOG");
    let started = Instant::now();
    let mut r = if part == "node" {
        table::load()
    } else {
        Report::default()
    };
    if audit.path.is_none() {
        r.note("no audit log (JOBRELAY_TEST_AUDIT_LOG): write and Secret LIST counts are missing");
    }
    table::machine(&mut r, scale);
    if part == "node" {
        match std::env::var("BENCH_NODE_SKIPPED") {
            Ok(why) if !why.is_empty() => {
                r.note(format!("alternative (scenario 8) skipped: {why}"));
            }
            _ => alternative::alternative(scale, &audit, &mut r).await,
        }
    } else {
        type Step = (&'static str, u32);
        let steps: [Step; 5] = [
            ("burst", 1),
            ("steady", 2),
            ("tokens", 3),
            ("memory", 6),
            ("backlog", 10),
        ];
        for (name, _) in steps {
            if !wanted(name) {
                continue;
            }
            let t = Instant::now();
            eprintln!("bench: {name} …");
            match name {
                "burst" => throughput::burst(scale, &audit, &mut r).await,
                "steady" => throughput::steady(scale, &mut r).await,
                "tokens" => cost::tokens(scale, &audit, &mut r).await,
                "memory" => memory::memory(scale, &audit, &mut r).await,
                _ => throughput::backlog(scale, &mut r).await,
            }
            eprintln!("bench: {name} took {:.0} s", t.elapsed().as_secs_f64());
        }
    }
    r.set(
        "run",
        &format!("{part}_s"),
        started.elapsed().as_secs_f64().round(),
    );
    table::print_and_save(&r);
}
