//! Controllers: fetch → pure plan → apply → status, one module per kind.

pub mod remote_job;
