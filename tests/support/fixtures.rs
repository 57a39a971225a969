//! Manifests and waits the RemoteJob end-to-end tests share (ApiClient ones: `apiclient.rs`).

use std::time::Duration;

use jobrelay::crd::{RemoteJob, RemoteJobPhase};
use kube::Api;

use super::operator::{Operator, apply, example, simulator};
use super::{TestNamespace, kubectl_ok, wait_for};

pub const LONG: Duration = Duration::from_secs(60);

/// A namespace, its simulator, its operator and its RemoteJobs.
pub type Bed = (
    TestNamespace,
    jobrelay::simulator::Handle,
    Operator,
    Api<RemoteJob>,
);

/// An end-to-end bed without an ApiClient: a namespace, a simulator (tokens living `token_ttl`), an
/// operator watching the namespace, and the namespace's RemoteJobs.
pub async fn bed(prefix: &str, token_ttl: Option<Duration>) -> Bed {
    let ns = TestNamespace::new(prefix);
    let sim = simulator(token_ttl).await;
    let op = Operator::start(&ns.name).await;
    let jobs = Api::namespaced(super::client().await, &ns.name);
    (ns, sim, op, jobs)
}

/// The usual end-to-end bed: [`bed`] plus the Run:ai ApiClient of examples/ pointed at the
/// simulator: `let (ns, sim, _op, jobs) = runai_bed("prefix", None).await;`.
pub async fn runai_bed(prefix: &str, token_ttl: Option<Duration>) -> Bed {
    let bed = bed(prefix, token_ttl).await;
    apply(&bed.0.name, &runai_client(), Some(&bed.1));
    bed
}

/// Waits until RemoteJob `name` runs; its remote id.
pub async fn running_id(jobs: &Api<RemoteJob>, name: &str) -> String {
    let job = wait_phase(jobs, name, RemoteJobPhase::Running).await;
    job.status
        .and_then(|s| s.remote_id)
        .expect("a running job has a remote id")
}

/// Deletes RemoteJobs `names` in `namespace` and waits until they are gone (finalizers done).
pub fn delete_jobs(namespace: &str, names: &[&str]) {
    let mut args = vec!["delete", "rjob"];
    args.extend(names);
    args.extend(["-n", namespace, "--wait=true", "--timeout=60s"]);
    kubectl_ok(&args);
}

/// Sets `spec.suspend` of RemoteJob `name`.
pub fn set_suspend(namespace: &str, name: &str, suspend: bool) {
    let patch = format!(r#"{{"spec":{{"suspend":{suspend}}}}}"#);
    kubectl_ok(&[
        "patch",
        "rjob",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        &patch,
    ]);
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

/// The (status, reason) of condition `type_` of `job`.
pub fn condition(job: &RemoteJob, type_: &str) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// A generic ApiClient `rest` on the simulator's DAI execution service and a RemoteJob `name`
/// without a lookup, its id at `id_pointer`, with `extra` spec lines.
pub fn generic_job(name: &str, id_pointer: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: ids}}\nstringData: {{client_id: demo-client, client_secret: demo-secret}}\n---\napiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata: {{name: rest}}\nspec:\n  platform: generic\n  baseUrl: http://127.0.0.1:8090/dai\n  allowInsecureHttp: true\n  auth:\n    oauth2: {{tokenUrl: 'http://127.0.0.1:8090/dai/auth/realms/x/protocol/openid-connect/token'}}\n  credentialsSecretRef: {{name: ids}}\n---\napiVersion: jobrelay.io/v1alpha1\nkind: RemoteJob\nmetadata: {{name: {name}}}\nspec:\n  clientRef: {{name: rest}}\n  generic:\n    submitPath: /execution_service/api/v1/executions\n    body: {{model_id: m, SIM_RUN_SECONDS: 600}}\n    idPointer: {id_pointer}\n    statusPath: '/execution_service/api/v1/executions/{{id}}'\n    cancelPath: '/execution_service/api/v1/executions/{{id}}'\n{extra}"
    )
}
