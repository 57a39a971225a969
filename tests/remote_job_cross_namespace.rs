//! A RemoteJob may use an ApiClient of another namespace only when that ApiClient lists the job's
//! namespace in `spec.allowedNamespaces`. A team namespace borrows a shared client; a namespace it
//! was not granted to waits with ApiClientNotGranted (condition and event) and submits nothing, until
//! the grant is added.

mod support;

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::Api;
use support::fixtures::*;
use support::operator::{Operator, apply, counters, simulator};
use support::{TestNamespace, kubectl_ok, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_api_client_serves_only_the_namespaces_it_grants() {
    let (home, team, other) = (
        TestNamespace::new("xns-home"),
        TestNamespace::new("xns-team"),
        TestNamespace::new("xns-other"),
    );
    let sim = simulator(None).await;
    // One operator serving the three namespaces, as an install with watchNamespaces does (one
    // controller per namespace; an ApiClient change in one reaches the jobs of the others).
    let _op = Operator::start_with(
        &home.name,
        &["--namespace", &team.name, "--namespace", &other.name],
    )
    .await;
    let client = runai_client().replace(
        "  platform: runai\n",
        &format!("  platform: runai\n  allowedNamespaces: [{}]\n", team.name),
    );
    apply(&home.name, &client, Some(&sim));
    let borrowed = |name: &str| {
        runai_job(
            name,
            "",
            &[("SIM_RUN_SECONDS", "1"), ("SIM_QUEUE_SECONDS", "0.2")],
        )
        .replace(
            "clientRef: {name: runai}",
            &format!("clientRef: {{name: runai, namespace: {}}}", home.name),
        )
    };
    apply(&team.name, &borrowed("granted"), None);
    apply(&other.name, &borrowed("refused"), None);

    let team_jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &team.name);
    let job = wait_phase(&team_jobs, "granted", RemoteJobPhase::Succeeded).await;
    assert_eq!(job.status.unwrap().attempts, 1);
    // Phase events; a warning only if the job had to wait for the ApiClient, never for submitting.
    let events = kubectl_ok(&[
        "get",
        "events",
        "-n",
        &team.name,
        "-o",
        "jsonpath={range .items[*]}{.type}/{.reason}{\"\\n\"}{end}",
    ]);
    let events: Vec<&str> = events.lines().collect();
    assert!(events.contains(&"Normal/Succeeded"), "{events:?}");
    assert!(
        events
            .iter()
            .filter(|e| e.starts_with("Warning/"))
            .all(|e| *e == "Warning/ApiClientNotReady"),
        "{events:?}"
    );

    let other_jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &other.name);
    let refused = wait_for("ApiClientNotGranted", LONG, || async {
        let j = other_jobs.get("refused").await.ok()?;
        let c = j
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Submitted")?;
        (c.reason == "ApiClientNotGranted" && c.status == "False").then_some(c)
    })
    .await;
    assert!(
        refused.message.contains(&other.name) && refused.message.contains("allowedNamespaces"),
        "{}",
        refused.message
    );
    let events = kubectl_ok(&["get", "events", "-n", &other.name, "-o", "yaml"]);
    assert!(events.contains("ApiClientNotGranted"), "{events}");
    let creates = counters(&sim).creates;
    assert_eq!(
        creates.len(),
        1,
        "only the granted job was submitted: {creates:?}"
    );

    // The grant is extended: the waiting job goes ahead on its own.
    kubectl_ok(&[
        "patch",
        "apic",
        "runai",
        "-n",
        &home.name,
        "--type=merge",
        "-p",
        &format!(
            r#"{{"spec":{{"allowedNamespaces":["{}","{}"]}}}}"#,
            team.name, other.name
        ),
    ]);
    wait_phase(&other_jobs, "refused", RemoteJobPhase::Succeeded).await;
    let creates = counters(&sim).creates;
    assert_eq!(creates.len(), 2, "{creates:?}");
    assert!(creates.values().all(|n| *n == 1), "{creates:?}");
}
