//! jobrelay: a Kubernetes operator that relays jobs to remote platforms (Run:ai, OpenPAI, Eggplant DAI,
//! any OAuth2-protected REST API). See README.md and docs in the repository.

pub mod cli;
// kube's derive takes repeated `printcolumn(...)` arguments, which this lint mistakes for duplicates
// (set here because src/crd is owned elsewhere; main fixes it inside src/crd).
#[allow(clippy::duplicated_attributes)]
pub mod crd;
pub mod platform;
pub mod simulator;
