//! Scenario 3 (tokens), with 4 (writes during no-op polling) and 5 (remote calls per poll interval)
//! measured on the same long-running jobs.

use std::time::{Duration, Instant};

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::api::Api;
use serde_json::json;

use crate::common::{
    Audit, Report, Scale, Tracker, api_clients, client, create_all, job, platform,
};
use crate::support::TestNamespace;
use crate::support::operator::Operator;
use crate::throughput::clients_ready;

/// The operator's default refresh-ahead: clamp(10 % of the lifetime, 10 s, 5 min).
fn refresh_before(ttl: f64) -> f64 {
    (ttl * 0.1).clamp(10.0, 300.0)
}

pub async fn tokens(scale: Scale, audit: &Audit, r: &mut Report) {
    let (k, n) = if scale.quick { (2, 50) } else { (10, 500) };
    let ttl = scale.secs(60, 20);
    let dur = scale.secs(180, 30);
    let poll = 10.0; // the default poll interval of a Running job
    let ns = TestNamespace::new("bench-tokens");
    let c = client().await;
    let (sim, proxy) = platform(Some(ttl)).await;
    let op = Operator::start(&ns.name).await;
    let t0 = Instant::now();
    let clients = api_clients(&c, &ns.name, k, proxy.addr).await;
    clients_ready(&c, &ns.name, k).await;
    let tracker = Tracker::start(&c, &ns.name).await;
    let api: Api<RemoteJob> = Api::namespaced(c.clone(), &ns.name);
    let run = dur.as_secs_f64() + 120.0;
    let objs = (0..n)
        .map(|i| job(&format!("t{i}"), &clients[i % k], run, json!({})))
        .collect();
    create_all(&api, objs, 64).await;
    let running = |s: &crate::common::Seen| s.phases.last() == Some(&RemoteJobPhase::Running);
    crate::support::wait_for("jobs Running", Duration::from_secs(300), || async {
        (tracker.count(running) >= n).then_some(())
    })
    .await;
    // A quiet window: every job Running, nothing changes remotely; the operator only polls.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mark, calls0, w0) = (audit.mark(), proxy.snapshot(), Instant::now());
    let rest = (t0 + dur).saturating_duration_since(Instant::now());
    let window = rest.max(Duration::from_secs_f64(poll * 2.0));
    tokio::time::sleep(window).await;
    let calls_w = proxy.snapshot().minus(&calls0);
    let w = w0.elapsed().as_secs_f64();
    let events = audit.since(mark).await;
    let total = t0.elapsed().as_secs_f64();
    let all = proxy.snapshot();
    let expiry_401 = all.unauthorized;
    let sim_tokens: u64 = crate::support::operator::counters(&sim)
        .token_requests
        .values()
        .sum();
    drop(op);
    let mut noop_by: std::collections::BTreeMap<String, u64> = Default::default();
    for e in events
        .iter()
        .filter(|e| e.is_write() && e.ns() == ns.name && e.by_operator())
    {
        let sub = e.object_ref.as_ref().map_or("", |o| o.subresource.as_str());
        *noop_by
            .entry(format!("{} {}/{sub}", e.verb, e.resource()))
            .or_default() += 1;
    }
    let noop: u64 = noop_by.values().sum();
    let requests = all.get("token");
    let ttl_s = ttl.as_secs_f64();
    let ideal = k as u64 * (total / (ttl_s - refresh_before(ttl_s))).ceil() as u64;
    let ratio = requests as f64 / ideal as f64;
    r.set("tokens", "requests", requests);
    r.set("tokens", "simulator_token_requests", sim_tokens);
    r.set("tokens", "ideal", ideal);
    r.set("tokens", "ratio", (ratio * 100.0).round() / 100.0);
    r.set("tokens", "expiry_401", expiry_401);
    r.set("tokens", "seconds", total.round());
    r.set("tokens", "token_ttl_s", ttl_s);
    r.set("tokens", "api_clients", k);
    r.set("tokens", "jobs", n);
    let s = format!(
        "3 tokens ({} s tokens, {k} ApiClients, {n} Running jobs, {total:.0} s{})",
        ttl.as_secs(),
        if scale.quick {
            ""
        } else {
            "; the issue's 5 min scaled to 3"
        }
    );
    r.row(
        &s,
        "token requests / ideal",
        format!("{requests} / {ideal} = {ratio:.2}×"),
        "≤ 1.05×",
        Some(ratio <= 1.05),
    );
    r.row(
        &s,
        "401s from expired tokens",
        expiry_401.to_string(),
        "0",
        Some(expiry_401 == 0),
    );

    let per_poll = calls_w.platform() as f64 / (w / poll);
    r.set("writes", "noop_poll_writes", noop);
    r.set("writes", "noop_window_s", w.round());
    r.set(
        "writes",
        "noop_by_kind",
        serde_json::to_value(&noop_by).unwrap(),
    );
    r.set(
        "remote",
        "calls_per_poll_interval",
        (per_poll * 10.0).round() / 10.0,
    );
    r.set("remote", "poll_api_clients", k);
    r.set("remote", "poll_jobs", n);
    r.set("remote", "poll_lists", calls_w.get("list"));
    r.set("remote", "poll_gets", calls_w.get("get"));
    r.row(
        "4 writes (audit log)",
        &format!("operator writes in {w:.0} s of no-op polling ({n} Running jobs)"),
        noop.to_string(),
        "0",
        audit.path.is_some().then_some(noop == 0),
    );
    r.row(
        &format!("5 remote calls ({k} ApiClients, {n} Running jobs)"),
        &format!("calls per {poll:.0} s poll interval (list / get)"),
        format!(
            "{per_poll:.1} ({} / {} in {w:.0} s)",
            calls_w.get("list"),
            calls_w.get("get")
        ),
        "about 1 list per ApiClient",
        None,
    );
}
