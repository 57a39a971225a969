//! Kueue admission for RemoteJobs (issue 14): a RemoteJob labelled `kueue.x-k8s.io/queue-name` gets a
//! Workload that jobrelay creates and owns; it is not submitted before Kueue admits that Workload, it is
//! stopped when Kueue evicts it, and the Workload's quota is given back only once the remote job is
//! known to be stopped (Kueue never releases an external job's quota by itself).
//!
//! - [`workload`]: the Workload fields jobrelay reads and writes, and its name.
//! - [`plan`]: pure — the gate on the remote job and the next change to the Workload.

pub mod plan;
pub mod workload;
