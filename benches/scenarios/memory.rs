//! Scenario 6: the operator's RSS idle, with unrelated Secrets (and whether it LISTs Secrets), and with
//! 10k RemoteJobs + 1k ApiClients in its cache.

use std::time::{Duration, Instant};

use jobrelay::crd::RemoteJob;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

use crate::common::{Audit, Report, Scale, api_clients, client, create_all, job, mib, platform};
use crate::support::TestNamespace;
use crate::support::operator::Operator;

/// Samples VmRSS for `d` and returns the last sample and the peak.
async fn settle(pid: u32, d: Duration) -> (f64, f64) {
    let end = Instant::now() + d;
    let mut peak: f64 = 0.0;
    let mut last = mib(pid, "VmRSS:");
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        last = mib(pid, "VmRSS:");
        peak = peak.max(last);
    }
    (last, peak)
}

pub async fn memory(scale: Scale, audit: &Audit, r: &mut Report) {
    let (jobs, clients, secrets) = (scale.n(10_000), scale.n(1000), scale.n(10_000));
    let ns = TestNamespace::new("bench-memory");
    let c = client().await;
    let (_sim, proxy) = platform(None).await;
    let mark = audit.mark();
    let op = Operator::start(&ns.name).await;
    let pid = op.pid();
    let (idle, _) = settle(pid, scale.secs(5, 2)).await;

    // Unrelated Secrets: no ApiClient refers to them.
    let api: Api<Secret> = Api::namespaced(c.clone(), &ns.name);
    let objs = (0..secrets)
        .map(|i| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("unrelated-{i}")},
            "stringData": {"password": format!("not-for-jobrelay-{i:0>64}")}}))
        .collect();
    create_all(&api, objs, 64).await;
    let (with_secrets, _) = settle(pid, scale.secs(5, 2)).await;
    let delta = with_secrets - idle;
    let events = audit.since(mark).await;
    let lists: Vec<_> = events
        .iter()
        .filter(|e| e.verb == "list" && e.resource() == "secrets" && e.by_operator())
        .collect();
    let unscoped = lists
        .iter()
        .filter(|e| !e.request_uri.contains("fieldSelector"))
        .count();

    // 1k ApiClients and 10k suspended RemoteJobs (suspended: in the cache, never submitted).
    let t = Instant::now();
    let names = api_clients(&c, &ns.name, clients, proxy.addr).await;
    let api: Api<RemoteJob> = Api::namespaced(c.clone(), &ns.name);
    let objs = (0..jobs)
        .map(|i| {
            job(
                &format!("m{i}"),
                &names[i % clients],
                1.0,
                json!({"suspend": true}),
            )
        })
        .collect();
    create_all(&api, objs, 64).await;
    let create_s = t.elapsed().as_secs_f64();
    let (at_10k, peak) = settle(pid, scale.secs(15, 3)).await;
    let hwm = mib(pid, "VmHWM:");
    drop(op);
    let per_obj = (at_10k - with_secrets) * 1024.0 * 1024.0 / (jobs + clients) as f64;

    r.set("memory", "idle_mib", (idle * 10.0).round() / 10.0);
    r.set(
        "memory",
        "with_secrets_mib",
        (with_secrets * 10.0).round() / 10.0,
    );
    r.set("memory", "secrets", secrets);
    r.set(
        "memory",
        "secrets_10k_delta_mib",
        (delta * 10.0).round() / 10.0,
    );
    r.set("memory", "secret_lists", lists.len());
    r.set("memory", "secret_lists_unscoped", unscoped);
    r.set("memory", "jobs", jobs);
    r.set("memory", "api_clients", clients);
    r.set("memory", "at_10k_jobs_mib", (at_10k * 10.0).round() / 10.0);
    r.set("memory", "at_10k_peak_mib", (peak * 10.0).round() / 10.0);
    r.set("memory", "hwm_mib", hwm.round());
    r.set("memory", "bytes_per_object", per_obj.round());
    let s = "6 memory (RSS)";
    r.row(
        s,
        "idle",
        format!("{idle:.1} MiB"),
        "≤ 20 MiB",
        Some(idle <= 20.0),
    );
    r.row(
        s,
        &format!("+ {secrets} unrelated Secrets: change"),
        format!("{delta:+.1} MiB"),
        "< 2 MiB",
        Some(delta.abs() < 2.0),
    );
    r.row(
        s,
        "Secret LISTs by the operator (audit log; without a name selector)",
        format!("{} ({unscoped})", lists.len()),
        "0",
        audit.path.is_some().then_some(lists.is_empty()),
    );
    r.row(
        s,
        &format!("with {jobs} RemoteJobs (suspended) + {clients} ApiClients, {:.0} s after creating them", scale.secs(15, 3).as_secs()),
        format!("{at_10k:.1} MiB (peak {peak:.1}, high-water {hwm:.0})"),
        if scale.quick { "" } else { "≤ 80 MiB" },
        (!scale.quick).then_some(at_10k <= 80.0),
    );
    r.row(
        s,
        "bytes per extra object",
        format!("{per_obj:.0} B"),
        "",
        None,
    );
    r.row(
        s,
        "our creates of those took",
        format!("{create_s:.1} s"),
        "",
        None,
    );
}
