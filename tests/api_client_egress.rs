//! ApiClients cannot point the operator at link-local or cloud metadata addresses (where a node's
//! credentials live) unless whoever runs the operator allows it with `--allow-link-local` (the rest of
//! the egress policy: tests/security.rs).

mod support;

use std::time::Duration;

use jobrelay::crd::ApiClient;
use kube::Api;
use support::apiclient::{secret, wait_ready};
use support::operator::{Operator, apply};
use support::{TestNamespace, wait_for};

fn metadata_client(name: &str) -> String {
    format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: {name}\nspec:\n  platform: runai\n  baseUrl: https://runai.example\n  auth:\n    oauth2:\n      tokenUrl: http://169.254.169.254/latest/api/token\n  allowInsecureHttp: true\n  credentialsSecretRef:\n    name: ids\n"
    )
}

const LINK_LOCAL_BASE: &str = "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: fe80\nspec:\n  platform: runai\n  baseUrl: http://[fe80::1]:8080/runai\n  allowInsecureHttp: true\n  auth:\n    runaiToken: {}\n  credentialsSecretRef:\n    name: ids\n";

#[tokio::test(flavor = "multi_thread")]
async fn metadata_addresses_are_refused_unless_the_operator_allows_them() {
    let ns = TestNamespace::new("apic-egress");
    // The ApiClients use plain http: permitted, so that the egress policy is what refuses them.
    let op = Operator::start_bare(&ns.name, &["--permit-insecure"]).await;
    apply(
        &ns.name,
        &secret("ids", &[("client_id", "x"), ("client_secret", "y")]),
        None,
    );
    apply(&ns.name, &metadata_client("imds"), None);
    apply(&ns.name, LINK_LOCAL_BASE, None);
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    for (name, field) in [
        ("imds", "spec.auth.oauth2.tokenUrl"),
        ("fe80", "spec.baseUrl"),
    ] {
        let c = wait_ready(
            &clients,
            name,
            "False",
            "EgressDenied",
            Duration::from_secs(30),
        )
        .await;
        let msg = &c.status.unwrap().conditions[0].message;
        assert!(
            msg.contains(field)
                && msg.contains("(link-local)")
                && msg.contains("denied by the operator's egress policy"),
            "{name}: {msg}"
        );
    }
    drop(op);

    // The same ApiClient under an operator that allows it: the request is made. What answers depends on
    // the machine (no metadata service: cannot connect; a sandbox's egress filter: HTTP 403), but it
    // is no longer the operator's refusal.
    let allowing = TestNamespace::new("apic-egress-allowed");
    let _op =
        Operator::start_bare(&allowing.name, &["--permit-insecure", "--allow-link-local"]).await;
    apply(
        &allowing.name,
        &secret("ids", &[("client_id", "x"), ("client_secret", "y")]),
        None,
    );
    apply(&allowing.name, &metadata_client("imds"), None);
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &allowing.name);
    let tried = wait_for("imds to have tried", Duration::from_secs(30), || async {
        let c = clients.get("imds").await.ok()?;
        let ready = c
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "False").then_some(ready)
    })
    .await;
    assert_ne!(tried.reason, "EgressDenied", "{}", tried.message);
    assert!(
        !tried.message.contains("egress policy"),
        "{}",
        tried.message
    );
}
