//! Leader election against the real apiserver: one holder at a time, and a standby takes over when the
//! holder goes away.

mod support;

use std::time::Duration;

use jobrelay::leader;
use support::TestNamespace;

#[tokio::test]
async fn one_leader_at_a_time_and_fail_over() {
    let ns = TestNamespace::new("leader");
    let mut a = leader::join(
        support::client().await,
        &ns.name,
        "jobrelay",
        "replica-a",
        3,
    )
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), a.acquired())
        .await
        .expect("replica-a becomes leader");

    let mut b = leader::join(
        support::client().await,
        &ns.name,
        "jobrelay",
        "replica-b",
        3,
    )
    .await
    .unwrap();
    // While a holds the lease, b must not become leader (several renewals of a).
    let premature = tokio::time::timeout(Duration::from_secs(5), b.acquired()).await;
    assert!(
        premature.is_err(),
        "replica-b became leader while replica-a held the lease"
    );
    assert!(a.is_leader());

    drop(a); // releases the lease
    tokio::time::timeout(Duration::from_secs(20), b.acquired())
        .await
        .expect("replica-b takes over");
    let holder = support::kubectl_ok(&[
        "get",
        "lease",
        "jobrelay",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(holder, "replica-b");
}
