//! ApiClient tokens from a real Keycloak (hack/testenv/keycloak) with the real operator process on a
//! real apiserver: Ready with an expiry, understandable reasons, live Secret fixes and rotations, every
//! OAuth2 endpoint form (token URL, OIDC discovery, DAI login URL and CSV), id tokens, single-flight, a
//! refresh rate close to ideal, and secret values that never show.
//!
//! Each test makes its own Keycloak client (admin REST API), so tests never disturb one another.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobrelay::auth::service::TokenService;
use jobrelay::crd::ApiClient;
use kube::Api;
use secrecy::ExposeSecret;
use support::keycloak;
use support::operator::{Operator, apply};
use support::{TestNamespace, kubectl_ok, wait_for};

async fn wait_ready(
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

fn secret(name: &str, pairs: &[(&str, &str)]) -> String {
    let data: String = pairs
        .iter()
        .map(|(k, v)| format!("\n  {k}: {v:?}"))
        .collect();
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:{data}\n")
}

/// An ApiClient on `platform` whose `auth:` block is `auth` (indented four spaces).
fn api_client(name: &str, platform: &str, auth: &str, secret_ref: &str) -> String {
    format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: {name}\nspec:\n  platform: {platform}\n  baseUrl: http://127.0.0.1:1/{platform}\n  allowInsecureHttp: true\n  auth:\n{auth}\n  credentialsSecretRef:\n    name: {secret_ref}\n"
    )
}

fn oauth2(field: &str, url: &str) -> String {
    format!("    oauth2:\n      {field}: {url}")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_007)
}

fn ready_message(c: &ApiClient) -> String {
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

#[tokio::test(flavor = "multi_thread")]
async fn credentials_live_fixes_rotation_and_no_secret_leaks() {
    let Some(kc) = keycloak::shared("credentials_live_fixes_rotation_and_no_secret_leaks") else {
        return;
    };
    let ns = TestNamespace::new("kc-live");
    let client_id = unique("live");
    // Canaries: secret values that must never show anywhere a person or a log collector looks.
    let (first, second, wrong) = (
        unique("canary-first"),
        unique("canary-second"),
        unique("canary-wrong"),
    );
    kc.create_client(&client_id, &first, 300).await;
    let op = Operator::start(&ns.name).await;
    let api: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    let token_url = oauth2("tokenUrl", &kc.token_url());

    apply(
        &ns.name,
        &secret(
            "good",
            &[("client_id", &client_id), ("client_secret", &first)],
        ),
        None,
    );
    apply(
        &ns.name,
        &secret(
            "wrong",
            &[("client_id", &client_id), ("client_secret", &wrong)],
        ),
        None,
    );
    let applied = Instant::now();
    apply(
        &ns.name,
        &api_client("good", "runai", &token_url, "good"),
        None,
    );
    apply(
        &ns.name,
        &api_client("wrong", "runai", &token_url, "wrong"),
        None,
    );
    apply(
        &ns.name,
        &api_client("later", "runai", &token_url, "not-yet"),
        None,
    );

    let good = wait_ready(&api, "good", "True", "Ready", Duration::from_secs(10)).await;
    eprintln!("good Ready after {:?}", applied.elapsed());
    let s = good.status.clone().unwrap();
    let life =
        s.token_expires_at.unwrap().0.as_second() - s.last_refresh_time.unwrap().0.as_second();
    assert!(
        (295..=301).contains(&life),
        "Keycloak said 300 s, status says {life}"
    );
    assert_eq!(s.observed_generation, good.metadata.generation);
    let bad = wait_ready(
        &api,
        "wrong",
        "False",
        "InvalidCredentials",
        Duration::from_secs(10),
    )
    .await;
    assert!(bad.status.as_ref().unwrap().token_expires_at.is_none());
    let msg = ready_message(&bad);
    assert!(
        msg.contains("refused") || msg.contains("unauthorized"),
        "a person should understand: {msg}"
    );
    wait_ready(
        &api,
        "later",
        "False",
        "SecretNotFound",
        Duration::from_secs(10),
    )
    .await;
    let printed = kubectl_ok(&["get", "apic", "-n", &ns.name]);
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("good") && l.contains("True")),
        "{printed}"
    );

    // The missing Secret appears: Ready without a restart.
    let t = Instant::now();
    apply(
        &ns.name,
        &secret(
            "not-yet",
            &[("client_id", &client_id), ("client_secret", &first)],
        ),
        None,
    );
    wait_ready(&api, "later", "True", "Ready", Duration::from_secs(5)).await;
    eprintln!("created Secret picked up after {:?}", t.elapsed());

    // Rotation: Keycloak gets a new secret (the cached token stays valid, so Ready stays True), then the
    // Secret follows and the operator fetches with it within seconds.
    kc.set_secret(&client_id, &second).await;
    let issued_before = kc.tokens_issued(&client_id).await;
    let t = Instant::now();
    apply(
        &ns.name,
        &secret(
            "good",
            &[("client_id", &client_id), ("client_secret", &second)],
        ),
        None,
    );
    let old_version = s.credentials_version.clone();
    wait_for(
        "good re-fetched with the rotated Secret",
        Duration::from_secs(5),
        || async {
            let c = api.get("good").await.ok()?;
            let st = c.status.clone()?;
            let ready = st
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (ready && st.credentials_version != old_version).then_some(())
        },
    )
    .await;
    eprintln!("rotated Secret picked up after {:?}", t.elapsed());
    assert!(
        kc.tokens_issued(&client_id).await > issued_before,
        "the new secret was really used"
    );
    // The old secret is refused by Keycloak now: `later` still holds it, and a Secret change shows it.
    apply(
        &ns.name,
        &secret(
            "not-yet",
            &[
                ("client_id", &client_id),
                ("client_secret", &first),
                ("touch", "1"),
            ],
        ),
        None,
    );
    wait_ready(
        &api,
        "later",
        "False",
        "InvalidCredentials",
        Duration::from_secs(5),
    )
    .await;

    let everything = [
        op.logs(),
        kubectl_ok(&["get", "events", "-n", &ns.name, "-o", "yaml"]),
        kubectl_ok(&["get", "apic", "-n", &ns.name, "-o", "yaml"]),
        op.metrics().await,
    ];
    assert!(
        everything[0].contains("InvalidCredentials"),
        "the failures were logged, so error paths are covered"
    );
    assert!(
        everything[1].contains("InvalidCredentials"),
        "the transitions made events"
    );
    for (i, text) in everything.iter().enumerate() {
        for canary in [&first, &second, &wrong] {
            assert!(
                !text.contains(canary.as_str()),
                "source {i} leaks a secret value"
            );
        }
        assert!(!text.contains("eyJ"), "source {i} holds something JWT-like");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_dai_login_url_csv_and_id_token() {
    let Some(kc) = keycloak::shared("discovery_dai_login_url_csv_and_id_token") else {
        return;
    };
    let ns = TestNamespace::new("kc-forms");
    let client_id = unique("forms");
    let pw = unique("forms-secret");
    kc.create_client(&client_id, &pw, 300).await;
    let _op = Operator::start(&ns.name).await;
    let api: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    apply(
        &ns.name,
        &secret("ids", &[("client_id", &client_id), ("client_secret", &pw)]),
        None,
    );
    // DAI hands out a CSV; its header spelling varies.
    let csv = format!(
        "Client ID,Client Secret,Token URL\n{client_id},{pw},{}\n",
        kc.token_url()
    );
    apply(&ns.name, &secret("csv", &[("credentials.csv", &csv)]), None);
    let realm = kc.realm_url();
    let login =
        format!("{realm}/protocol/openid-connect/auth?client_id={client_id}&response_type=code");
    let cases = [
        ("discovery", "runai", oauth2("issuerUrl", &realm), "ids"),
        ("dai-login", "dai", oauth2("loginUrl", &login), "ids"),
        (
            "dai-csv",
            "dai",
            "    oauth2: {}".to_string(),
            "csv\n    csvKey: credentials.csv",
        ),
        (
            "runai-id-token",
            "runai",
            format!(
                "{}\n      scopes: [openid]\n      extraParams: {{response_type: id_token}}\n      tokenField: id_token\n      clientAuthMethod: client_secret_basic",
                oauth2("tokenUrl", &kc.token_url())
            ),
            "ids",
        ),
        (
            "bad-issuer",
            "runai",
            oauth2("issuerUrl", &format!("{}/realms/no-such-realm", kc.url)),
            "ids",
        ),
    ];
    for (name, platform, auth, secret_ref) in &cases {
        apply(
            &ns.name,
            &api_client(name, platform, auth, secret_ref),
            None,
        );
    }
    for (name, ..) in cases.iter().filter(|c| c.0 != "bad-issuer") {
        wait_ready(&api, name, "True", "Ready", Duration::from_secs(15)).await;
    }
    let bad = wait_ready(
        &api,
        "bad-issuer",
        "False",
        "DiscoveryFailed",
        Duration::from_secs(15),
    )
    .await;
    eprintln!("bad issuer: {}", ready_message(&bad));
    // Each of the four really went to Keycloak.
    assert!(kc.tokens_issued(&client_id).await >= 4);

    // Which token the bearer is: the token service itself, as the RemoteJob controller calls it.
    let service = TokenService::new(support::client().await, Arc::default());
    let typ = |apic: ApiClient| {
        let service = &service;
        async move {
            let t = service.bearer(&apic, None).await.expect("bearer");
            let claims = jobrelay::auth::jwt_claims(t.bearer.expose_secret()).expect("a JWT");
            claims["typ"].as_str().unwrap_or_default().to_string()
        }
    };
    assert_eq!(typ(api.get("runai-id-token").await.unwrap()).await, "ID");
    assert_eq!(typ(api.get("discovery").await.unwrap()).await, "Bearer");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_callers_cause_one_token_request() {
    let Some(kc) = keycloak::shared("twenty_concurrent_callers_cause_one_token_request") else {
        return;
    };
    let ns = TestNamespace::new("kc-flight");
    let client_id = unique("flight");
    let pw = unique("flight-secret");
    kc.create_client(&client_id, &pw, 300).await;
    // No operator: the token service alone, the way the RemoteJob controller uses it.
    apply(
        &ns.name,
        &secret("ids", &[("client_id", &client_id), ("client_secret", &pw)]),
        None,
    );
    apply(
        &ns.name,
        &api_client(
            "flight",
            "runai",
            &oauth2("tokenUrl", &kc.token_url()),
            "ids",
        ),
        None,
    );
    let api: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    let apic = api.get("flight").await.unwrap();
    let service = Arc::new(TokenService::new(support::client().await, Arc::default()));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (service, apic) = (service.clone(), apic.clone());
            tokio::spawn(async move {
                service
                    .bearer(&apic, None)
                    .await
                    .map(|t| t.bearer.expose_secret().to_string())
            })
        })
        .collect();
    let mut bearers = Vec::new();
    for c in calls {
        bearers.push(c.await.unwrap().expect("bearer"));
    }
    assert!(
        bearers.iter().all(|b| *b == bearers[0]),
        "all callers share one token"
    );
    assert_eq!(kc.tokens_issued(&client_id).await, 1);
    // A 401 from the platform: one forced refresh, however many callers report the same token.
    let refused: secrecy::SecretString = bearers[0].clone().into();
    let mut again = Vec::new();
    for _ in 0..5 {
        again.push(
            service
                .bearer(&apic, Some(&refused))
                .await
                .unwrap()
                .bearer
                .expose_secret()
                .to_string(),
        );
    }
    assert!(again.iter().all(|b| *b == again[0] && *b != bearers[0]));
    assert_eq!(kc.tokens_issued(&client_id).await, 2);
}

/// Token lifetime 30 s over 3 minutes: refreshed ahead of expiry each time (10 s margin → every 20 s),
/// and no more often than that.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_rate_stays_within_five_percent_of_ideal() {
    let Some(kc) = keycloak::shared("refresh_rate_stays_within_five_percent_of_ideal") else {
        return;
    };
    let ns = TestNamespace::new("kc-rate");
    let client_id = unique("rate");
    let pw = unique("rate-secret");
    kc.create_client(&client_id, &pw, 30).await;
    let op = Operator::start(&ns.name).await;
    apply(
        &ns.name,
        &secret("ids", &[("client_id", &client_id), ("client_secret", &pw)]),
        None,
    );
    apply(
        &ns.name,
        &api_client("rate", "runai", &oauth2("tokenUrl", &kc.token_url()), "ids"),
        None,
    );
    let api: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    let first = wait_ready(&api, "rate", "True", "Ready", Duration::from_secs(10)).await;
    let start = first.status.unwrap().last_refresh_time.unwrap().0;
    let window = Duration::from_secs(180);
    let mut expiry_seen = Vec::new();
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        // The token is never allowed to lapse while we watch.
        let st = api.get("rate").await.unwrap().status.unwrap();
        let exp = st.token_expires_at.unwrap().0;
        assert!(
            exp > k8s_openapi::jiff::Timestamp::now(),
            "status shows an expired token"
        );
        expiry_seen.push(exp);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let elapsed = k8s_openapi::jiff::Timestamp::now().as_second() - start.as_second();
    let issued = kc.tokens_issued(&client_id).await as f64;
    let ideal = 1.0 + (elapsed as f64 / 20.0).floor();
    eprintln!("{issued} tokens in {elapsed} s, ideal {ideal}");
    assert!(
        issued <= (ideal * 1.05).ceil(),
        "{issued} token requests, ideal {ideal}"
    );
    assert!(
        issued >= ideal - 1.0,
        "refreshed ahead of expiry: {issued} requests, ideal {ideal}"
    );
    expiry_seen.dedup();
    assert!(
        expiry_seen.len() as f64 >= ideal - 1.0,
        "status followed the refreshes"
    );
    // The operator's own count agrees with Keycloak's.
    let metrics = op.metrics().await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("jobrelay_token_requests_total")
                && l.contains("apiclient=\"rate\"")
                && l.contains("success")
        })
        .unwrap_or_else(|| panic!("no token request metric:\n{metrics}"));
    let counted: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (counted - issued).abs() <= 1.0,
        "metrics {counted}, Keycloak {issued}"
    );
    assert!(
        metrics.contains("jobrelay_token_expiry_seconds"),
        "{metrics}"
    );
}
