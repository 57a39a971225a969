//! Controllers: fetch → pure plan → apply → status, one module per kind.

pub mod api_client;
pub mod in_use;
pub mod queue;
pub mod remote_job;
pub mod scope;
