//! ApiClient end to end: Ready with a token expiry, clear reasons for bad credentials, a Secret created
//! or rotated later is picked up without a restart, and secret values never show anywhere.

mod support;

use support::apiclient::{DEMO_CLIENT, secret, shown_lifetime, wait_ready};

use std::time::{Duration, Instant};

use jobrelay::crd::ApiClient;
use kube::Api;
use support::operator::{Operator, apply, simulator};
use support::{TestNamespace, kubectl_ok, wait_for};

fn client(name: &str, platform: &str, auth: &str, secret_ref: &str) -> String {
    format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: {name}\nspec:\n  platform: {platform}\n  baseUrl: http://127.0.0.1:8090/{platform}\n  allowInsecureHttp: true\n  auth:\n{auth}\n  credentialsSecretRef:\n{secret_ref}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_errors_have_reasons_and_fixes_are_picked_up_live() {
    let ns = TestNamespace::new("apic-live");
    let sim = simulator(None).await;
    let _op = Operator::start(&ns.name).await;
    let token_url = "    oauth2:\n      tokenUrl: http://127.0.0.1:8090/runai/auth/realms/runai/protocol/openid-connect/token";
    apply(
        &ns.name,
        &secret(
            "wrong",
            &[("client_id", "demo-client"), ("client_secret", "not-it")],
        ),
        None,
    );
    apply(
        &ns.name,
        &client("wrong", "runai", token_url, "    name: wrong"),
        Some(&sim),
    );
    apply(
        &ns.name,
        &client("later", "runai", token_url, "    name: not-yet"),
        Some(&sim),
    );
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    let wrong = wait_ready(
        &clients,
        "wrong",
        "False",
        "InvalidCredentials",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(shown_lifetime(&wrong), None, "no token, no lifetime");
    wait_ready(
        &clients,
        "later",
        "False",
        "SecretNotFound",
        Duration::from_secs(30),
    )
    .await;

    // Fix both without touching the operator: rotation and creation are seen through the Secret watch.
    let fixed = Instant::now();
    apply(&ns.name, &secret("wrong", DEMO_CLIENT), None);
    apply(&ns.name, &secret("not-yet", DEMO_CLIENT), None);
    // Without the Secret watch the operator would look again only after its recheck interval (60 s
    // after a permanent failure such as SecretNotFound or InvalidCredentials); half of that proves
    // the watch however slow process starts and apiserver round trips are on a busy machine.
    let via_watch = Duration::from_secs(30);
    let c = wait_ready(&clients, "wrong", "True", "Ready", via_watch).await;
    wait_ready(&clients, "later", "True", "Ready", via_watch).await;
    assert!(fixed.elapsed() < via_watch);
    let s = c.status.clone().unwrap();
    assert!(s.credentials_version.is_some() && shown_lifetime(&c).is_some());
    assert_eq!(s.observed_generation, c.metadata.generation);
    let printed = kubectl_ok(&["get", "apic", "wrong", "-n", &ns.name]);
    assert!(
        printed.contains("True") && printed.contains("runai"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_token_method_against_the_simulator() {
    let ns = TestNamespace::new("apic-methods");
    let sim = simulator(None).await;
    let _op = Operator::start(&ns.name).await;
    apply(&ns.name, &secret("ids", DEMO_CLIENT), None);
    apply(
        &ns.name,
        &secret(
            "pai",
            &[("username", "demo"), ("password", "demo-password")],
        ),
        None,
    );
    apply(
        &ns.name,
        &secret(
            "pai-bad",
            &[("username", "demo"), ("password", "wrong-password")],
        ),
        None,
    );
    let csv = "client_id,client_secret,token_url\ndemo-client,demo-secret,http://127.0.0.1:8090/dai/auth/realms/eggplant/protocol/openid-connect/token\n";
    apply(
        &ns.name,
        &secret("csv", &[("credentials.csv", csv)]),
        Some(&sim),
    );
    let realm = "http://127.0.0.1:8090/dai/auth/realms/eggplant/protocol/openid-connect";
    let cases = [
        ("runai-json", "runai", "    runaiToken: {}".to_string(), "    name: ids"),
        ("runai-idtoken", "runai", "    oauth2:\n      tokenUrl: http://127.0.0.1:8090/runai/auth/realms/r/protocol/openid-connect/token\n      scopes: [openid]\n      extraParams: {response_type: id_token}\n      tokenField: id_token\n      clientAuthMethod: client_secret_basic".to_string(), "    name: ids"),
        ("dai-login", "dai", format!("    oauth2:\n      loginUrl: {realm}/auth?client_id=demo-client&response_type=code"), "    name: ids"),
        ("dai-csv", "dai", "    oauth2: {}".to_string(), "    name: csv\n    csvKey: credentials.csv"),
        ("pai", "openpai", "    openpaiLogin: {}".to_string(), "    name: pai"),
        ("pai-bad", "openpai", "    openpaiLogin: {}".to_string(), "    name: pai-bad"),
    ];
    for (name, platform, auth, secret_ref) in &cases {
        apply(
            &ns.name,
            &client(name, platform, auth, secret_ref),
            Some(&sim),
        );
    }
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    for (name, ..) in cases.iter().filter(|c| c.0 != "pai-bad") {
        wait_ready(&clients, name, "True", "Ready", Duration::from_secs(30)).await;
    }
    let bad = wait_ready(
        &clients,
        "pai-bad",
        "False",
        "InvalidCredentials",
        Duration::from_secs(30),
    )
    .await;
    let msg = bad.status.unwrap().conditions[0].message.clone();
    assert!(msg.contains("Password is incorrect"), "{msg}");
    // DAI tokens live 300 s: the expiry says so.
    let dai = clients.get("dai-csv").await.unwrap();
    let life = shown_lifetime(&dai).unwrap();
    assert!((295..=305).contains(&life), "{life}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_values_never_show_in_logs_events_status_or_metrics() {
    let ns = TestNamespace::new("apic-canary");
    let sim = simulator(None).await;
    let op = Operator::start(&ns.name).await;
    let canary = format!("canary-{}-{}", std::process::id(), rand_word());
    // A wrong secret (so error paths run too) and a right one whose token is used for a job.
    apply(
        &ns.name,
        &secret(
            "c1",
            &[("client_id", "demo-client"), ("client_secret", &canary)],
        ),
        None,
    );
    apply(
        &ns.name,
        &secret("c2", &[("username", "demo"), ("password", &canary)]),
        None,
    );
    apply(
        &ns.name,
        &client("bad-oauth", "runai", "    runaiToken: {}", "    name: c1"),
        Some(&sim),
    );
    apply(
        &ns.name,
        &client(
            "bad-login",
            "openpai",
            "    openpaiLogin: {}",
            "    name: c2",
        ),
        Some(&sim),
    );
    apply(
        &ns.name,
        &support::operator::example("openpai.yaml"),
        Some(&sim),
    );
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    wait_ready(
        &clients,
        "bad-oauth",
        "False",
        "InvalidCredentials",
        Duration::from_secs(30),
    )
    .await;
    wait_ready(
        &clients,
        "bad-login",
        "False",
        "InvalidCredentials",
        Duration::from_secs(30),
    )
    .await;
    let jobs: Api<jobrelay::crd::RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    wait_for(
        "openpai-hello to finish",
        Duration::from_secs(60),
        || async {
            jobs.get("openpai-hello")
                .await
                .ok()?
                .status
                .filter(|s| s.phase == jobrelay::crd::RemoteJobPhase::Succeeded)
        },
    )
    .await;
    // The real bearer tokens the simulator issued must not show either.
    let issued: Vec<String> = vec![canary.clone(), "demo-password".into(), "demo-secret".into()];
    let everything = [
        op.logs(),
        kubectl_ok(&["get", "events", "-n", &ns.name, "-o", "yaml"]),
        kubectl_ok(&["get", "apic,rjob", "-n", &ns.name, "-o", "yaml"]),
        op.metrics().await,
    ];
    // The failures were logged (so the check below looks at the error paths too).
    let logs = op.logs();
    assert!(
        logs.contains("InvalidCredentials")
            && logs.contains("bad-login")
            && logs.contains("phase changed"),
        "{logs}"
    );
    for (i, text) in everything.iter().enumerate() {
        for secret in &issued {
            assert!(
                !text.contains(secret.as_str()),
                "source {i} leaks a secret value"
            );
        }
        assert!(!text.contains("eyJ"), "source {i} holds something JWT-like");
    }
}

fn rand_word() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_003
}

/// TLS for real: the test apiserver serves https with the test bed's own CA. Its OIDC discovery document
/// is not readable anonymously, so a client that gets through TLS ends at DiscoveryFailed (HTTP 403),
/// one that does not trust the CA at TlsError.
#[tokio::test(flavor = "multi_thread")]
async fn ca_bundles_are_trusted_and_unknown_cas_are_refused() {
    let ns = TestNamespace::new("apic-tls");
    let _op = Operator::start(&ns.name).await;
    let kubeconfig = std::fs::read_to_string(&support::control_plane().kubeconfig).unwrap();
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_string();
    let ca_path = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority: "))
        .unwrap()
        .to_string();
    let ca = std::fs::read_to_string(ca_path).unwrap();
    let ca_indented: String = ca.lines().map(|l| format!("    {l}\n")).collect();
    apply(
        &ns.name,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: testenv-ca\ndata:\n  ca.crt: |\n{ca_indented}"
        ),
        None,
    );
    apply(
        &ns.name,
        &secret("ids", &[("client_id", "x"), ("client_secret", "y")]),
        None,
    );
    let auth = format!("    oauth2:\n      issuerUrl: {server}");
    let https = |name: &str, tls: &str| {
        format!(
            "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: {name}\nspec:\n  platform: dai\n  baseUrl: {server}\n  auth:\n{auth}\n  credentialsSecretRef:\n    name: ids\n{tls}"
        )
    };
    apply(&ns.name, &https("untrusted", ""), None);
    apply(
        &ns.name,
        &https(
            "trusted",
            "  tls:\n    caBundleRef: {kind: ConfigMap, name: testenv-ca, key: ca.crt}\n",
        ),
        None,
    );
    apply(
        &ns.name,
        &https("skip-verify", "  tls:\n    insecureSkipVerify: true\n"),
        None,
    );
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    wait_ready(
        &clients,
        "untrusted",
        "False",
        "TlsError",
        Duration::from_secs(30),
    )
    .await;
    let trusted = wait_ready(
        &clients,
        "trusted",
        "False",
        "DiscoveryFailed",
        Duration::from_secs(30),
    )
    .await;
    let msg = &trusted.status.unwrap().conditions[0].message;
    assert!(
        msg.contains("HTTP 401") || msg.contains("HTTP 403"),
        "{msg}"
    );
    wait_ready(
        &clients,
        "skip-verify",
        "False",
        "DiscoveryFailed",
        Duration::from_secs(30),
    )
    .await;

    // A CA bundle that arrives after its ApiClient: the bundle's object is watched, so the client gets
    // through TLS within seconds of it appearing, long before the 60 s recheck of a TLS error.
    apply(
        &ns.name,
        &https(
            "late-ca",
            "  tls:\n    caBundleRef: {kind: ConfigMap, name: late-ca, key: ca.crt}\n",
        ),
        None,
    );
    let missing = wait_ready(
        &clients,
        "late-ca",
        "False",
        "TlsError",
        Duration::from_secs(30),
    )
    .await;
    let msg = &missing.status.unwrap().conditions[0].message;
    assert!(
        msg.contains("late-ca") && msg.contains("not found"),
        "{msg}"
    );
    apply(
        &ns.name,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late-ca\ndata:\n  ca.crt: |\n{ca_indented}"
        ),
        None,
    );
    wait_ready(
        &clients,
        "late-ca",
        "False",
        "DiscoveryFailed",
        Duration::from_secs(10),
    )
    .await;
}
