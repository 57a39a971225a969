//! ApiClient tokens from a real Keycloak (hack/testenv/keycloak) with the real operator process on a
//! real apiserver: Ready with an expiry, understandable reasons, live Secret fixes and rotations, every
//! OAuth2 endpoint form (token URL, OIDC discovery, DAI login URL and CSV), id tokens, TLS with a CA
//! bundle, and secret values that never show.
//!
//! Each test makes its own Keycloak client (admin REST API), so tests never disturb one another.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobrelay::auth::service::TokenService;
use jobrelay::crd::ApiClient;
use kube::Api;
use secrecy::ExposeSecret;
use support::apiclient::{
    api_client, oauth2, ready_message, secret, shown_lifetime, unique, wait_ready,
};
use support::keycloak;
use support::operator::{Operator, apply};
use support::{TestNamespace, kubectl_ok, wait_for};

/// How soon a Secret change must show: the watch reacts in well under a second; without it the
/// operator would look again only at its 60 s recheck (permanent failures) or at the next refresh
/// of a 300 s token. Half a minute proves the watch even on a busy machine.
const VIA_WATCH: Duration = Duration::from_secs(30);

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
    let life = shown_lifetime(&good).unwrap();
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
    assert_eq!(shown_lifetime(&bad), None, "no token, no lifetime");
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
    wait_ready(&api, "later", "True", "Ready", VIA_WATCH).await;
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
        VIA_WATCH,
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
    wait_ready(&api, "later", "False", "InvalidCredentials", VIA_WATCH).await;

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
    // Bearers are taken in this process below: with the test operators' policy (plain http and
    // loopback, where Keycloak runs).
    {
        use jobrelay::transport::egress::{Policy, Rule, set_policy};
        jobrelay::transport::permit_insecure(true);
        set_policy(Policy {
            deny: vec![],
            allow: vec![Rule::new("127.0.0.0/8".parse().unwrap(), "test")],
            default_deny: Policy::builtin_denies(),
        });
    }
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

/// Keycloak over https with a certificate from a CA of its own: refused without the CA, Ready with it as a
/// ConfigMap bundle, Ready with insecureSkipVerify but with a Warning event saying so.
#[tokio::test(flavor = "multi_thread")]
async fn tls_needs_the_ca_bundle_or_an_explicit_skip() {
    let Some(kc) = keycloak::shared("tls_needs_the_ca_bundle_or_an_explicit_skip") else {
        return;
    };
    let ns = TestNamespace::new("kc-tls");
    let client_id = unique("tls");
    let pw = unique("tls-secret");
    kc.create_client(&client_id, &pw, 300).await;
    let _op = Operator::start(&ns.name).await;
    let api: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    apply(
        &ns.name,
        &secret("ids", &[("client_id", &client_id), ("client_secret", &pw)]),
        None,
    );
    let pem = kc.ca_pem.replace('\n', "\n    ");
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kc-ca\ndata:\n  ca.crt: |\n    {pem}\n"
    );
    apply(&ns.name, &cm, None);
    let url = format!(
        "{}/realms/{}/protocol/openid-connect/token",
        kc.https_url,
        keycloak::REALM
    );
    let token_url = oauth2("tokenUrl", &url);
    // `tls` is a sibling of `auth` in the spec: splice it after the auth block.
    let manifest = |name: &str, tls: Option<&str>| {
        let base = api_client(name, "runai", &token_url, "ids");
        match tls {
            Some(t) => base.replace(
                "  credentialsSecretRef:",
                &format!("  tls:\n{t}\n  credentialsSecretRef:"),
            ),
            None => base,
        }
    };
    apply(&ns.name, &manifest("untrusted", None), None);
    apply(
        &ns.name,
        &manifest(
            "trusted",
            Some("    caBundleRef:\n      kind: ConfigMap\n      name: kc-ca\n      key: ca.crt"),
        ),
        None,
    );
    apply(
        &ns.name,
        &manifest("skip", Some("    insecureSkipVerify: true")),
        None,
    );
    let bad = wait_ready(
        &api,
        "untrusted",
        "False",
        "TlsError",
        Duration::from_secs(15),
    )
    .await;
    eprintln!("untrusted: {}", ready_message(&bad));
    wait_ready(&api, "trusted", "True", "Ready", Duration::from_secs(15)).await;
    wait_ready(&api, "skip", "True", "Ready", Duration::from_secs(15)).await;
    wait_for(
        "a Warning event about insecureSkipVerify",
        Duration::from_secs(10),
        || async {
            let events = kubectl_ok(&["get", "events", "-n", &ns.name, "-o", "yaml"]);
            events
                .split("\n- ")
                .any(|e| {
                    e.contains("insecureSkipVerify") && e.contains("Warning") && e.contains("skip")
                })
                .then_some(())
        },
    )
    .await;
    // Two of the three reached Keycloak's token endpoint; the untrusted one never got past TLS.
    assert_eq!(kc.tokens_issued(&client_id).await, 2);
}
