//! jobrelay: a Kubernetes operator that relays jobs to remote platforms (Run:ai, OpenPAI, Eggplant DAI,
//! any OAuth2-protected REST API). See README.md and docs in the repository.

pub mod cli;
pub mod crd;
pub mod platform;
pub mod simulator;
