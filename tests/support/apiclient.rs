//! Manifests and waits for ApiClient tests: Secrets, ApiClients, the Ready condition.

use std::time::Duration;

use jobrelay::crd::{ApiClient, RemoteJob};
use kube::Api;

use super::operator::apply;
use super::wait_for;

/// The simulator's demo client (examples/): the pairs of a client_credentials Secret.
pub const DEMO_CLIENT: &[(&str, &str)] = &[
    ("client_id", "demo-client"),
    ("client_secret", "demo-secret"),
];

/// Applies `manifests` in `namespace` (as given: no simulator address rewritten); the namespace's
/// ApiClients and RemoteJobs.
pub async fn set_up(namespace: &str, manifests: &[&str]) -> (Api<ApiClient>, Api<RemoteJob>) {
    apply(namespace, &manifests.join("\n---\n"), None);
    let client = super::client().await;
    (
        Api::namespaced(client.clone(), namespace),
        Api::namespaced(client, namespace),
    )
}

/// Waits (30 s) until ApiClient `name` is refused with `reason` (Ready=False); its Ready message.
pub async fn refused(api: &Api<ApiClient>, name: &str, reason: &str) -> String {
    ready_message(&wait_ready(api, name, "False", reason, Duration::from_secs(30)).await)
}

/// Waits until ApiClient `name` has Ready=`status` with `reason`, and returns it.
pub async fn wait_ready(
    api: &Api<ApiClient>,
    name: &str,
    status: &str,
    reason: &str,
    within: Duration,
) -> ApiClient {
    wait_for(
        &format!("{name} Ready={status} ({reason})"),
        within,
        || async {
            let c = api.get(name).await.ok()?;
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

pub fn secret(name: &str, pairs: &[(&str, &str)]) -> String {
    let data: String = pairs
        .iter()
        .map(|(k, v)| format!("\n  {k}: {v:?}"))
        .collect();
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:{data}\n")
}

/// An ApiClient on `platform` whose `auth:` block is `auth` (indented four spaces).
pub fn api_client(name: &str, platform: &str, auth: &str, secret_ref: &str) -> String {
    format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: {name}\nspec:\n  platform: {platform}\n  baseUrl: http://127.0.0.1:1/{platform}\n  allowInsecureHttp: true\n  auth:\n{auth}\n  credentialsSecretRef:\n    name: {secret_ref}\n"
    )
}

pub fn oauth2(field: &str, url: &str) -> String {
    format!("    oauth2:\n      {field}: {url}")
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_007)
}

pub fn ready_message(c: &ApiClient) -> String {
    c.status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message
        .clone()
}

/// The token lifetime the Ready message shows ("tokens live N s"; 5 s steps), if any.
pub fn shown_lifetime(c: &ApiClient) -> Option<i64> {
    let m = ready_message(c);
    let rest = m.split("tokens live ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// `jobrelay_token_expiry_timestamp_seconds` of ApiClient `ns/name` in a /metrics text: when its
/// current token expires (Unix seconds; 0 without a token). The expiry is not in status.
pub fn token_expiry(metrics: &str, ns: &str, name: &str) -> Option<i64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("jobrelay_token_expiry_timestamp_seconds{"))
        .find(|l| {
            l.contains(&format!("namespace=\"{ns}\""))
                && l.contains(&format!("apiclient=\"{name}\""))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
