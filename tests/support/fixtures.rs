//! Manifests and waits the end-to-end tests share.

use std::time::Duration;

use jobrelay::crd::{ApiClient, RemoteJob, RemoteJobPhase};
use kube::Api;

use super::operator::example;
use super::wait_for;

pub const LONG: Duration = Duration::from_secs(60);

/// Waits until RemoteJob `name` reaches `phase`.
pub async fn wait_phase(jobs: &Api<RemoteJob>, name: &str, phase: RemoteJobPhase) -> RemoteJob {
    wait_for(&format!("{name} to reach {phase:?}"), LONG, || async {
        jobs.get_opt(name)
            .await
            .ok()
            .flatten()
            .filter(|j| j.status.as_ref().is_some_and(|s| s.phase == phase))
    })
    .await
}

/// Waits until ApiClient `name` has Ready=`status` with `reason`.
pub async fn wait_ready(
    clients: &Api<ApiClient>,
    name: &str,
    status: &str,
    reason: &str,
    within: Duration,
) -> ApiClient {
    wait_for(
        &format!("{name} Ready={status} ({reason})"),
        within,
        || async {
            let c = clients.get(name).await.ok()?;
            let ready = c
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")?
                .clone();
            (ready.status == status && ready.reason == reason).then_some(c)
        },
    )
    .await
}

/// A Secret with `stringData`.
pub fn secret(name: &str, pairs: &[(&str, &str)]) -> String {
    let data: String = pairs
        .iter()
        .map(|(k, v)| format!("\n  {k}: {v:?}"))
        .collect();
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:{data}\n")
}

/// The Run:ai Secret and ApiClient of examples/runai.yaml (without its RemoteJob).
pub fn runai_client() -> String {
    example("runai.yaml")
        .split("\n---\n")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// A Run:ai RemoteJob on the `runai` ApiClient with simulator variables `env` and extra spec lines.
pub fn runai_job(name: &str, extra_spec: &str, env: &[(&str, &str)]) -> String {
    let env: String = env
        .iter()
        .map(|(k, v)| format!("\n      - {{name: {k}, value: \"{v}\"}}"))
        .collect();
    format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: RemoteJob\nmetadata:\n  name: {name}\nspec:\n  clientRef: {{name: runai}}\n  runai:\n    projectId: \"5\"\n    clusterId: c0ffee00-0000-4000-8000-000000000000\n    image: busybox\n    environment:{env}\n{extra_spec}"
    )
}
