//! Leader election against the real apiserver: one holder at a time, a graceful release hands over
//! within one retry period, and a leader that cannot renew gives up before its Lease expires.

mod support;

use std::time::{Duration, Instant};

use jobrelay::leader::{self, Config};
use kube::config::{KubeConfigOptions, Kubeconfig};
use support::TestNamespace;

/// Short timings so the test runs in seconds: lease 6 s, renew deadline 4 s, retry 1 s.
fn config(ns: &str, identity: &str) -> Config {
    Config {
        lease_duration: Duration::from_secs(6),
        renew_deadline: Duration::from_secs(4),
        retry_period: Duration::from_secs(1),
        ..Config::new(ns, "jobrelay", identity)
    }
}

fn holder(ns: &str) -> String {
    support::kubectl_ok(&[
        "get",
        "lease",
        "jobrelay",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_graceful_hand_over() {
    let ns = TestNamespace::new("leader");
    let mut a = leader::join(support::client().await, config(&ns.name, "replica-a"));
    tokio::time::timeout(Duration::from_secs(20), a.acquired())
        .await
        .expect("replica-a becomes leader");

    let mut b = leader::join(support::client().await, config(&ns.name, "replica-b"));
    // While a renews, b must not lead, even past a whole lease duration (b's clock sees renewals).
    let premature = tokio::time::timeout(Duration::from_secs(8), b.acquired()).await;
    assert!(
        premature.is_err(),
        "replica-b became leader while replica-a held the lease"
    );
    assert!(a.is_leader());
    assert_eq!(holder(&ns.name), "replica-a");

    let released = Instant::now();
    a.release().await;
    tokio::time::timeout(Duration::from_secs(20), b.acquired())
        .await
        .expect("replica-b takes over");
    // A released Lease is taken at b's next try (1 s here), not after the 6 s lease duration. The bound
    // leaves room for a loaded machine but stays below what an expiry-based take-over would need.
    let took = released.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "take-over after a release took {took:?}"
    );
    assert_eq!(holder(&ns.name), "replica-b");
    b.release().await;
    assert_eq!(holder(&ns.name), "", "a released Lease has no holder");
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_before_the_lease_expires() {
    let ns = TestNamespace::new("leader-cut");
    // The candidate runs as a plain user whose right to write Leases we can take away.
    let user = format!("leader-{}", ns.name);
    support::kubectl_ok(&[
        "create",
        "role",
        "lease-writer",
        "-n",
        &ns.name,
        "--verb=get,create,update",
        "--resource=leases.coordination.k8s.io",
    ]);
    support::kubectl_ok(&[
        "create",
        "rolebinding",
        "lease-writer",
        "-n",
        &ns.name,
        "--role=lease-writer",
        &format!("--user={user}"),
    ]);
    let kc = Kubeconfig::read_from(&support::control_plane().kubeconfig).unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    cfg.auth_info.impersonate = Some(user);
    let client = kube::Client::try_from(cfg).unwrap();

    let mut a = leader::join(client, config(&ns.name, "replica-a"));
    tokio::time::timeout(Duration::from_secs(20), a.acquired())
        .await
        .expect("replica-a becomes leader");
    support::kubectl_ok(&["delete", "rolebinding", "lease-writer", "-n", &ns.name]);
    let cut = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), a.lost())
        .await
        .expect("a leader that cannot renew gives up");
    // It must stop leading before the Lease it last wrote could expire for anyone else: 6 s after its
    // last renewal, which came before the cut (it gives up at the 4 s renew deadline).
    let after = cut.elapsed();
    assert!(
        after < Duration::from_secs(6),
        "gave up leadership {after:?} after renewals began to fail"
    );
    assert_eq!(
        holder(&ns.name),
        "replica-a",
        "the Lease was never released"
    );
}
