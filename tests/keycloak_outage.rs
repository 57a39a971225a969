//! Keycloak goes away and comes back: the operator keeps running, keeps a still-valid token Ready while
//! refreshes fail, reports TokenEndpointUnreachable once it has expired, and recovers by itself.
//! Its own Keycloak (stopped and started on the same port), so no other test loses its token endpoint.

mod support;

use std::time::{Duration, Instant};

use jobrelay::auth::cache::retry_after;
use jobrelay::crd::ApiClient;
use kube::Api;
use support::operator::{Operator, apply};
use support::{TestNamespace, wait_for};

/// The client and secret of hack/testenv/keycloak-realm.json: they survive a restart (re-imported).
const CLIENT: &str = "jobrelay-operator";
const SECRET: &str = "jobrelay-test-secret";

/// Token requests of ApiClient `kc` that found the endpoint unreachable, from the operator's /metrics.
async fn failed_attempts(op: &Operator) -> u64 {
    let metrics = op.metrics().await;
    metrics
        .lines()
        .find(|l| {
            l.starts_with("jobrelay_token_requests_total")
                && l.contains("apiclient=\"kc\"")
                && l.contains("TokenEndpointUnreachable")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

async fn ready(api: &Api<ApiClient>, name: &str) -> Option<(String, String, String)> {
    let c = api.get(name).await.ok()?;
    let r = c
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")?;
    Some((r.status, r.reason, r.message))
}

#[tokio::test(flavor = "multi_thread")]
async fn keycloak_outage_is_survived_and_recovered_from() {
    let Some(kc) = support::keycloak::private("keycloak_outage_is_survived_and_recovered_from")
    else {
        return;
    };
    kc.set_lifespan(CLIENT, 30).await;
    let ns = TestNamespace::new("kc-outage");
    let op = Operator::start(&ns.name).await;
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ids\nstringData:\n  client_id: {CLIENT}\n  client_secret: {SECRET}\n"
    );
    apply(&ns.name, &secret, None);
    let apic = format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: kc\nspec:\n  platform: runai\n  baseUrl: http://127.0.0.1:1/runai\n  allowInsecureHttp: true\n  auth:\n    oauth2:\n      tokenUrl: {}\n  credentialsSecretRef:\n    name: ids\n",
        kc.token_url()
    );
    apply(&ns.name, &apic, None);
    let api: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    wait_for("Ready True", Duration::from_secs(15), || async {
        ready(&api, "kc").await.filter(|r| r.0 == "True")
    })
    .await;

    kc.stop();
    let stopped = Instant::now();
    // The token (30 s, refreshed 10 s ahead) is still valid for a while: Ready stays True, saying so.
    let degraded = wait_for(
        "a failing refresh shown while Ready",
        Duration::from_secs(30),
        || async {
            ready(&api, "kc").await.filter(|r| {
                r.0 == "True" && r.1 == "RefreshFailing" && r.2.contains("refreshing it failed")
            })
        },
    )
    .await;
    eprintln!("degraded after {:?}: {}", stopped.elapsed(), degraded.2);
    // Retries go on, and as they change nothing they write no status.
    let before = api.get("kc").await.unwrap();
    let attempts = failed_attempts(&op).await;
    wait_for(
        "two more refresh attempts",
        Duration::from_secs(8),
        || async { (failed_attempts(&op).await >= attempts + 2).then_some(()) },
    )
    .await;
    let after = api.get("kc").await.unwrap();
    if ready(&api, "kc").await.is_some_and(|r| r.0 == "True") {
        assert_eq!(
            before.metadata.resource_version, after.metadata.resource_version,
            "a retry that changes nothing must not write status"
        );
    }
    let down = wait_for(
        "TokenEndpointUnreachable once expired",
        Duration::from_secs(45),
        || async { ready(&api, "kc").await.filter(|r| r.0 == "False") },
    )
    .await;
    assert_eq!(down.1, "TokenEndpointUnreachable", "{}", down.2);
    assert!(
        stopped.elapsed() > Duration::from_secs(5),
        "a valid token was not dropped at once"
    );
    // Still serving: no crash, no restart.
    assert!(
        op.metrics().await.contains("jobrelay_reconcile"),
        "operator answers /metrics"
    );

    kc.restart();
    let back = Instant::now();
    wait_for(
        "Ready True again after Keycloak returns",
        Duration::from_secs(60),
        || async { ready(&api, "kc").await.filter(|r| r.0 == "True") },
    )
    .await;
    eprintln!("recovered {:?} after Keycloak was back", back.elapsed());
    // Backed off, not hammering: however often the controllers reconcile, the token cache asks the
    // endpoint only on its schedule (1 s growing 1.5× to 30 s), which did not restart when the old
    // token lapsed. At most what that schedule allows over the outage, plus one try forced before
    // the old token lapsed and one for the reconcile racing the restart.
    let outage = stopped.elapsed();
    let failed = failed_attempts(&op).await;
    let mut allowed = 0;
    let mut t = Duration::ZERO;
    while t <= outage {
        allowed += 1;
        t += retry_after(t, None);
    }
    eprintln!("{failed} failed attempts in a {outage:?} outage; the schedule allows {allowed}");
    assert!(
        failed >= 3 && failed <= allowed + 2,
        "{failed} attempts in {outage:?}, schedule {allowed}"
    );
    assert!(
        op.logs().contains("TokenEndpointUnreachable"),
        "the outage was logged"
    );
}
