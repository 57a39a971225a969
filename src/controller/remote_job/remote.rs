//! The controller's view of a platform: what it can observe and do for one RemoteJob, with the token
//! already handled (a 401 is retried once after a forced refresh before it surfaces as [`RemoteError::Auth`]).

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;

use super::plan::{Capabilities, RemoteView};
use crate::crd::RemoteJob;

/// Classified failures of a remote call.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// Try again later (5xx, 429, timeouts, resets); `retry_after` from the platform when it said.
    #[error("platform temporarily unavailable: {message}")]
    Retriable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The platform refused our token even after a refresh.
    #[error("platform refused the credentials: {message}")]
    Auth { message: String },
    /// The name is taken (a create that already happened): look it up and adopt.
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// The platform rejected the request for good (400/422): a spec error.
    #[error("rejected by the platform: {message}")]
    Permanent { message: String },
    #[error("not found")]
    NotFound,
    /// The request may or may not have taken effect (connection dropped after sending).
    #[error("outcome unknown: {message}")]
    OutcomeUnknown { message: String },
}

impl RemoteError {
    /// When to look again after this error.
    pub fn requeue_after(&self) -> Duration {
        match self {
            RemoteError::Retriable {
                retry_after: Some(d),
                ..
            } => *d,
            RemoteError::Retriable { .. } | RemoteError::OutcomeUnknown { .. } => {
                Duration::from_secs(2)
            }
            _ => Duration::from_secs(15),
        }
    }
}

pub type RemoteResult<T> = Result<T, RemoteError>;

/// Operations on one platform (one ApiClient), for RemoteJobs.
pub trait Remote: Send + Sync {
    fn capabilities(&self) -> Capabilities;
    /// The deterministic remote name of attempt `attempt` (1-based) of `job`.
    fn remote_name(&self, job: &RemoteJob, attempt: i32) -> String;
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RemoteResult<RemoteView>>;
    /// Finds a job by our name; `None` when the platform has none.
    fn lookup<'a>(
        &'a self,
        job: &'a RemoteJob,
        name: &'a str,
    ) -> BoxFuture<'a, RemoteResult<Option<RemoteView>>>;
    /// Creates the job under `name`; returns what the platform said about it.
    fn create<'a>(
        &'a self,
        job: &'a RemoteJob,
        name: &'a str,
    ) -> BoxFuture<'a, RemoteResult<RemoteView>>;
    /// For platforms without names: finds a start made at or after `since` whose answer we never saw.
    fn find_unknown_start<'a>(
        &'a self,
        job: &'a RemoteJob,
        since: Timestamp,
    ) -> BoxFuture<'a, RemoteResult<Option<RemoteView>>>;
    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RemoteResult<()>>;
    fn suspend<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RemoteResult<()>>;
    fn resume<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RemoteResult<()>>;
}
