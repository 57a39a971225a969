//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one replica reconciles (two
//! replicas submitting the same RemoteJob would break exactly-once). Built on kube-lease-manager.

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;

/// A running election. Dropping it releases the lease (if held) so a standby takes over at once.
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

/// Joins the election for `lease_name` in `namespace` as `identity`. `lease_seconds` is how long a lease
/// outlives its holder's last renewal (the fail-over time after a crash).
pub async fn join(
    client: kube::Client,
    namespace: &str,
    lease_name: &str,
    identity: &str,
    lease_seconds: u64,
) -> Result<Leadership, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, lease_name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(lease_seconds)
        .with_grace(lease_seconds.div_ceil(3).max(1))
        .build()
        .await?;
    let (rx, _task) = manager.watch().await;
    Ok(Leadership { rx })
}

impl Leadership {
    /// Waits until this replica holds the lease.
    pub async fn acquired(&mut self) {
        let _ = self.rx.wait_for(|leader| *leader).await;
    }

    /// Waits until the lease is lost (or the election task ends): the caller must stop reconciling.
    pub async fn lost(&mut self) {
        let _ = self.rx.wait_for(|leader| !*leader).await;
    }

    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }
}
