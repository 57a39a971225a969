//! The token service against a real Keycloak: concurrent callers share one token request, a platform's
//! 401 forces exactly one refresh, and with 30 s tokens the operator refreshes ahead of expiry at close to
//! the ideal rate (counted by Keycloak itself, and by the operator's /metrics).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobrelay::auth::service::TokenService;
use jobrelay::crd::ApiClient;
use kube::Api;
use secrecy::ExposeSecret;
use support::TestNamespace;
use support::apiclient::{api_client, oauth2, secret, token_expiry, unique, wait_ready};
use support::keycloak;
use support::operator::{Operator, apply};

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_callers_cause_one_token_request() {
    let Some(kc) = keycloak::shared("twenty_concurrent_callers_cause_one_token_request") else {
        return;
    };
    let ns = TestNamespace::new("kc-flight");
    let client_id = unique("flight");
    let pw = unique("flight-secret");
    kc.create_client(&client_id, &pw, 300).await;
    // No operator: the token service alone, the way the RemoteJob controller uses it — in this
    // process, so with the test operators' policy (plain http and loopback, where Keycloak runs).
    {
        use jobrelay::transport::egress::{Policy, Rule, set_policy};
        jobrelay::transport::permit_insecure(true);
        set_policy(Policy {
            deny: vec![],
            allow: vec![Rule::new("127.0.0.0/8".parse().unwrap(), "test")],
            default_deny: Policy::builtin_denies(),
        });
    }
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

/// Token lifetime 30 s: refreshed ahead of expiry each time (10 s margin → every 20 s at the
/// earliest), never lapsing, and no more often than the schedule allows. Bounds from the schedule over
/// however long the watch took, not a percentage of an ideal that a busy machine can miss.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_rate_follows_the_schedule() {
    let Some(kc) = keycloak::shared("refresh_rate_follows_the_schedule") else {
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
    wait_ready(&api, "rate", "True", "Ready", Duration::from_secs(10)).await;
    // The first token was obtained its 30 s lifetime before it expires.
    let expiry = || async { token_expiry(&op.metrics().await, &ns.name, "rate").unwrap_or(0) };
    let start = k8s_openapi::jiff::Timestamp::from_second(expiry().await - 30).unwrap();
    let window = Duration::from_secs(90);
    let mut expiry_seen = Vec::new();
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        // The token is never allowed to lapse while we watch.
        let exp = expiry().await;
        assert!(
            exp > k8s_openapi::jiff::Timestamp::now().as_second(),
            "the operator holds an expired token"
        );
        expiry_seen.push(exp);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let elapsed = k8s_openapi::jiff::Timestamp::now().as_second() - start.as_second();
    let issued = kc.tokens_issued(&client_id).await as f64;
    // Never before 20 s of a token's life (the margin), so at most one per 20 s plus the first and
    // one that may be in flight as we stop; a token lasts 30 s and never lapsed (checked above), so at
    // least one per 30 s plus the first.
    let most = 2.0 + (elapsed as f64 / 20.0).floor();
    let least = 1.0 + (elapsed as f64 / 30.0).floor();
    eprintln!("{issued} tokens in {elapsed} s, between {least} and {most}");
    assert!(
        issued <= most,
        "{issued} token requests in {elapsed} s: more often than every 20 s"
    );
    assert!(
        issued >= least,
        "refreshed ahead of expiry: {issued} requests in {elapsed} s"
    );
    expiry_seen.dedup();
    assert!(
        expiry_seen.len() as f64 >= least,
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
