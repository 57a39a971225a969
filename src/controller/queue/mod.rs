//! Kueue admission for RemoteJobs (issue 14): a RemoteJob labelled `kueue.x-k8s.io/queue-name` gets a
//! Workload that jobrelay creates and owns; it is not submitted before Kueue admits that Workload, it is
//! stopped when Kueue evicts it, and the Workload's quota is given back only once the remote job is
//! known to be stopped (Kueue never releases an external job's quota by itself).
//!
//! - [`workload`]: the Workload fields jobrelay reads and writes, and its name.
//! - [`plan`]: pure — the gate on the remote job and the next change to the Workload.
//! - [`build`]: pure — the requests, the new Workload, the views and the status changes.
//! - [`report`]: pure — the RemoteJob's `Admitted` condition and its events.
//! - [`sync`]: IO — reads the Workload, applies the plan's step, hands the gate to the RemoteJob
//!   controller (which treats a closed gate as `spec.suspend: true`).

pub mod build;
pub mod plan;
pub mod report;
pub mod sync;
pub mod workload;
