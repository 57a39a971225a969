//! jobrelay: a Kubernetes operator that relays jobs to remote platforms (Run:ai, OpenPAI, Eggplant DAI,
//! any OAuth2-protected REST API). See README.md and docs in the repository.

pub mod auth;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod jobspec;
pub mod leader;
pub mod metrics;
pub mod platform;
pub mod server;
pub mod simulator;
pub mod telemetry;
pub mod transport;
