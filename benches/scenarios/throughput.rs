//! Burst (with the writes and remote calls it cost), the raw PATCH limit, steady load, backlog.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::common::{
    Audit, Report, Scale, Tracker, api_clients, client, create_all, job, mib, percentile, platform,
};
use crate::support::TestNamespace;
use crate::support::operator::Operator;

const WAIT: Duration = Duration::from_secs(600);

/// Waits until every ApiClient in `ns` is Ready.
pub async fn clients_ready(c: &kube::Client, ns: &str, n: usize) {
    let api: Api<jobrelay::crd::ApiClient> = Api::namespaced(c.clone(), ns);
    crate::support::wait_for("ApiClients Ready", Duration::from_secs(120), || async {
        let list = api.list(&Default::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|a| {
                a.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        (ready >= n).then_some(())
    })
    .await
}

/// Job `i` of a scenario's load: `<prefix><i>`, on the ApiClients in turn, 1 s of remote run.
fn load_job(prefix: &str, i: usize, clients: &[String]) -> serde_json::Value {
    job(
        &format!("{prefix}{i}"),
        &clients[i % clients.len()],
        1.0,
        json!({}),
    )
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

/// create→Submitted latencies in seconds (create: when our create call came back; Submitted: when the
/// watch delivered the remote id).
fn submit_latencies(t: &Tracker, created: &HashMap<String, Instant>) -> Vec<f64> {
    let seen = t.seen.lock().unwrap();
    created
        .iter()
        .filter_map(|(name, at)| {
            let s = seen.get(name)?.submitted?;
            Some(s.saturating_duration_since(*at).as_secs_f64())
        })
        .collect()
}

/// Scenarios 1, 4, 5 and 7: N RemoteJobs at once over 10 ApiClients; writes from the audit log, remote
/// calls from the proxy; then the raw PATCH rate of a minimal client on the same apiserver.
pub async fn burst(scale: Scale, audit: &Audit, r: &mut Report) {
    let n = scale.n(1000);
    let k = 10;
    let ns = TestNamespace::new("bench-burst");
    let c = client().await;
    let (_sim, proxy) = platform(None).await;
    let op = Operator::start(&ns.name).await;
    let clients = api_clients(&c, &ns.name, k, proxy.addr).await;
    clients_ready(&c, &ns.name, k).await;
    let tracker = Tracker::start(&c, &ns.name).await;
    let api: Api<RemoteJob> = Api::namespaced(c.clone(), &ns.name);
    let (mark, calls0) = (audit.mark(), proxy.snapshot());
    let objs = (0..n).map(|i| load_job("b", i, &clients)).collect();
    let t0 = Instant::now();
    let created = create_all(&api, objs, 64).await;
    let created_s = t0.elapsed();
    let submitted = tracker.wait("Submitted", n, WAIT, |s| s.submitted).await;
    let succeeded = tracker.wait("Succeeded", n, WAIT, |s| s.succeeded).await;
    let lat = submit_latencies(&tracker, &created);
    let hwm = mib(op.pid(), "VmHWM:");
    tokio::time::sleep(Duration::from_secs(2)).await; // the last writes land in the log
    let calls = proxy.snapshot().minus(&calls0);
    let events = audit.since(mark).await;
    let ours =
        |e: &&crate::common::AuditEvent| e.is_write() && e.ns() == ns.name && e.by_operator();
    let writes = events.iter().filter(ours).count();
    let job_writes = events
        .iter()
        .filter(ours)
        .filter(|e| e.resource() == "remotejobs")
        .count();
    let phases: f64 = {
        let seen = tracker.seen.lock().unwrap();
        seen.values().map(|s| s.phases.len() as f64).sum::<f64>() / n as f64
    };
    drop(op);

    let all_sub = secs(submitted - t0);
    let all_succ = secs(succeeded - t0);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    r.set("burst", "jobs", n);
    r.set("burst", "api_clients", k);
    r.set("burst", "create_s", secs(created_s));
    r.set("burst", "all_submitted_s", all_sub);
    r.set("burst", "all_succeeded_s", all_succ);
    r.set("burst", "submit_p50_s", secs(Duration::from_secs_f64(p50)));
    r.set("burst", "submit_p99_s", secs(Duration::from_secs_f64(p99)));
    r.set("burst", "hwm_mib", hwm.round());
    let s = format!("1 burst ({n} jobs, {k} ApiClients)");
    r.row(
        &s,
        "our creates (64 at a time) took",
        format!("{:.2} s", created_s.as_secs_f64()),
        "",
        None,
    );
    let want_sub = if scale.quick { 6.0 } else { 60.0 };
    r.row(
        &s,
        "all Submitted",
        format!("{all_sub:.2} s"),
        &format!("≤ {want_sub} s"),
        Some(all_sub <= want_sub),
    );
    r.row(
        &s,
        "all Succeeded (remote run 1.2 s)",
        format!("{all_succ:.2} s"),
        "",
        None,
    );
    r.row(
        &s,
        "create→Submitted p50 / p99",
        format!("{p50:.2} / {p99:.2} s"),
        "",
        None,
    );
    r.row(
        &s,
        "operator RSS high-water",
        format!("{hwm:.0} MiB"),
        "",
        None,
    );

    let per_job = writes as f64 / n as f64;
    let audit_ok = audit.path.is_some();
    r.set("writes", "per_job", per_job);
    r.set(
        "writes",
        "remotejob_writes_per_job",
        job_writes as f64 / n as f64,
    );
    r.set("writes", "phase_changes_per_job", phases);
    let s4 = "4 writes (audit log)";
    r.row(
        s4,
        "operator writes per job (all kinds) / on the RemoteJob",
        format!("{per_job:.2} / {:.2}", job_writes as f64 / n as f64),
        "≤ phase changes + 3",
        audit_ok.then_some(per_job <= phases + 3.0),
    );
    r.row(
        s4,
        "phase changes per job (watch)",
        format!("{phases:.2}"),
        "",
        None,
    );

    let per = |k: &str| calls.get(k) as f64 / n as f64;
    r.set(
        "remote",
        "calls_per_job",
        calls.platform() as f64 / n as f64,
    );
    r.set("remote", "lookups_per_job", per("lookup"));
    r.set("remote", "creates_per_job", per("create"));
    r.set("remote", "gets_per_job", per("get"));
    r.set("remote", "lists_per_job", per("list"));
    r.set("remote", "token_requests_burst", calls.get("token"));
    let s5 = "5 remote calls (burst)";
    r.row(
        s5,
        "platform calls per job: create / lookup / get / list",
        format!(
            "{:.2}: {:.2} / {:.2} / {:.2} / {:.2}",
            calls.platform() as f64 / n as f64,
            per("create"),
            per("lookup"),
            per("get"),
            per("list")
        ),
        "",
        None,
    );
    r.row(
        s5,
        "name lookups per job",
        format!("{:.2}", per("lookup")),
        "0 when nothing went wrong",
        Some(calls.get("lookup") == 0),
    );

    // 7. The limit: status PATCHes of the same objects, as fast as this apiserver takes them.
    let lim = TestNamespace::new("bench-limit");
    let api: Api<RemoteJob> = Api::namespaced(c.clone(), &lim.name);
    let objs = (0..n)
        .map(|i| job(&format!("l{i}"), "c0", 1.0, json!({})))
        .collect();
    create_all(&api, objs, 64).await;
    let rounds = 4;
    let phases_cycle = ["Submitting", "Queued", "Running", "Succeeded"];
    let t = Instant::now();
    use futures::StreamExt;
    futures::stream::iter((0..rounds).flat_map(|round| (0..n).map(move |i| (round, i))))
        .map(|(round, i)| {
            let api = api.clone();
            async move {
                let p = json!({"status": {"phase": phases_cycle[round % 4], "message": format!("raw {round}")}});
                api.patch_status(&format!("l{i}"), &PatchParams::default(), &Patch::Merge(&p))
                    .await
                    .expect("raw status patch");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let raw = (rounds * n) as f64 / t.elapsed().as_secs_f64();
    let raw_jobs = raw / phases.max(1.0);
    let jr = n as f64 / all_succ;
    r.set("limit", "raw_patch_per_s", raw.round());
    r.set("limit", "raw_jobs_per_s", raw_jobs.round());
    r.set("limit", "jobrelay_per_s", (jr * 10.0).round() / 10.0);
    r.set("limit", "ratio", (jr / raw_jobs * 100.0).round() / 100.0);
    let s7 = "7 limit (same apiserver)";
    r.row(
        s7,
        "raw status PATCHes (32 at a time)",
        format!("{raw:.0} /s"),
        "",
        None,
    );
    r.row(
        s7,
        "= jobs/s at one PATCH per phase change",
        format!("{raw_jobs:.0} jobs/s"),
        "",
        None,
    );
    r.row(
        s7,
        "jobrelay (burst jobs / all Succeeded) and ratio",
        format!("{jr:.1} jobs/s = {:.0} %", jr / raw_jobs * 100.0),
        "≥ 50 %",
        Some(jr / raw_jobs >= 0.5),
    );
}

/// Scenario 2: creates at 50/s for 60 s (quick: 6 s); create→Submitted p50/p99 and the backlog.
pub async fn steady(scale: Scale, r: &mut Report) {
    let rate = 50.0;
    let dur = scale.secs(60, 6);
    let n = (rate * dur.as_secs_f64()) as usize;
    let k = 10;
    let ns = TestNamespace::new("bench-steady");
    let c = client().await;
    let (_sim, proxy) = platform(None).await;
    let op = Operator::start(&ns.name).await;
    let clients = api_clients(&c, &ns.name, k, proxy.addr).await;
    clients_ready(&c, &ns.name, k).await;
    let tracker = Tracker::start(&c, &ns.name).await;
    let api: Api<RemoteJob> = Api::namespaced(c.clone(), &ns.name);
    let created: std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut backlog_max = 0usize;
    let mut tasks = Vec::new();
    let t0 = Instant::now();
    for i in 0..n {
        tick.tick().await;
        let (api, made) = (api.clone(), created.clone());
        let obj: RemoteJob = serde_json::from_value(load_job("s", i, &clients)).unwrap();
        tasks.push(tokio::spawn(async move {
            api.create(&Default::default(), &obj).await.expect("create");
            made.lock().unwrap().insert(format!("s{i}"), Instant::now());
        }));
        if i % 10 == 0 {
            let made = created.lock().unwrap().len();
            backlog_max =
                backlog_max.max(made.saturating_sub(tracker.count(|s| s.submitted.is_some())));
        }
    }
    let offered = n as f64 / t0.elapsed().as_secs_f64();
    for t in tasks {
        t.await.unwrap();
    }
    let last = tracker.wait("Submitted", n, WAIT, |s| s.submitted).await;
    let drain = last.saturating_duration_since(t0 + dur).as_secs_f64();
    let lat = submit_latencies(&tracker, &created.lock().unwrap());
    drop(op);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    r.set("steady", "jobs", n);
    r.set("steady", "rate_per_s", (offered * 10.0).round() / 10.0);
    r.set("steady", "submit_p50_s", (p50 * 100.0).round() / 100.0);
    r.set("steady", "submit_p99_s", (p99 * 100.0).round() / 100.0);
    r.set("steady", "backlog_max", backlog_max);
    r.set("steady", "drain_s", (drain * 100.0).round() / 100.0);
    let s = format!(
        "2 steady ({offered:.0}/s for {} s, {k} ApiClients)",
        dur.as_secs()
    );
    r.row(
        &s,
        "create→Submitted p50 / p99",
        format!("{p50:.2} / {p99:.2} s"),
        "p99 ≤ 2 s",
        Some(p99 <= 2.0),
    );
    r.row(
        &s,
        "backlog (created, not yet Submitted): max",
        format!("{backlog_max} jobs"),
        "",
        None,
    );
    r.row(
        &s,
        "last Submitted after the last create",
        format!("{drain:.2} s"),
        "",
        None,
    );
}

/// Scenario 10: N RemoteJobs created while no operator runs, then it starts.
pub async fn backlog(scale: Scale, r: &mut Report) {
    let n = scale.n(1000);
    let k = 10;
    let ns = TestNamespace::new("bench-backlog");
    let c = client().await;
    let (_sim, proxy) = platform(None).await;
    let clients = api_clients(&c, &ns.name, k, proxy.addr).await;
    let tracker = Tracker::start(&c, &ns.name).await;
    let api: Api<RemoteJob> = Api::namespaced(c.clone(), &ns.name);
    let objs = (0..n).map(|i| load_job("q", i, &clients)).collect();
    create_all(&api, objs, 64).await;
    let calls0 = proxy.snapshot();
    let t0 = Instant::now();
    let op = Operator::start(&ns.name).await;
    let done = tracker.wait("Succeeded", n, WAIT, |s| s.succeeded).await;
    let all = (done - t0).as_secs_f64();
    let hwm = mib(op.pid(), "VmHWM:");
    let calls = proxy.snapshot().minus(&calls0);
    drop(op);
    assert!(tracker.count(|s| s.phases.last() == Some(&RemoteJobPhase::Succeeded)) >= n);
    r.set("backlog", "jobs", n);
    r.set("backlog", "all_succeeded_s", (all * 100.0).round() / 100.0);
    r.set("backlog", "hwm_mib", hwm.round());
    r.set(
        "backlog",
        "lookups_per_job",
        calls.get("lookup") as f64 / n as f64,
    );
    let s = format!("10 backlog ({n} jobs, operator started after)");
    let (want_s, want_m) = if scale.quick {
        (3.0, 80.0)
    } else {
        (30.0, 80.0)
    };
    r.row(
        &s,
        "operator start → all Succeeded",
        format!("{all:.2} s"),
        &format!("≤ {want_s} s"),
        Some(all <= want_s),
    );
    r.row(
        &s,
        "operator RSS high-water",
        format!("{hwm:.0} MiB"),
        &format!("≤ {want_m} MiB"),
        Some(hwm <= want_m),
    );
    r.row(
        &s,
        "name lookups per job",
        format!("{:.2}", calls.get("lookup") as f64 / n as f64),
        "0",
        Some(calls.get("lookup") == 0),
    );
}
