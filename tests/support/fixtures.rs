//! Manifests and waits the RemoteJob end-to-end tests share (ApiClient ones: `apiclient.rs`).

use std::time::Duration;

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::Api;

use super::operator::{Operator, apply, example, simulator};
use super::{TestNamespace, wait_for};

pub const LONG: Duration = Duration::from_secs(60);

/// The usual end-to-end bed: a namespace, a simulator (tokens living `token_ttl`), an operator
/// watching the namespace, the Run:ai ApiClient of examples/ pointed at the simulator, and the
/// namespace's RemoteJobs: `let (ns, sim, _op, jobs) = runai_bed("prefix", None).await;`.
pub async fn runai_bed(
    prefix: &str,
    token_ttl: Option<Duration>,
) -> (
    TestNamespace,
    jobrelay::simulator::Handle,
    Operator,
    Api<RemoteJob>,
) {
    let ns = TestNamespace::new(prefix);
    let sim = simulator(token_ttl).await;
    let op = Operator::start(&ns.name).await;
    apply(&ns.name, &runai_client(), Some(&sim));
    let jobs = Api::namespaced(super::client().await, &ns.name);
    (ns, sim, op, jobs)
}

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

/// A RemoteJob spec with the platform body `body` (e.g. `{"runai": {…}}`), for calling platforms directly.
pub fn spec(body: serde_json::Value) -> jobrelay::crd::RemoteJobSpec {
    let mut v = serde_json::json!({"clientRef": {"name": "c"}});
    v.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}
