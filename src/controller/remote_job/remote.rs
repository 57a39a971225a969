//! The controller's view of a platform: what it can observe and do for one RemoteJob, with the token
//! already handled (a 401 is retried once after a forced refresh before it surfaces as [`RemoteError::Auth`]).

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;

use crate::crd::RemoteJob;
use crate::platform::{Capabilities, RemoteView};

pub use crate::platform::{RemoteError, RemoteResult};

/// Operations on one platform (one ApiClient), for RemoteJobs.
pub trait Remote: Send + Sync {
    fn capabilities(&self) -> Capabilities;
    /// The deterministic remote name of attempt `attempt` (1-based) of `job`.
    fn remote_name(&self, job: &RemoteJob, attempt: i32) -> String;
    fn get<'a>(
        &'a self,
        job: &'a RemoteJob,
        id: &'a str,
    ) -> BoxFuture<'a, RemoteResult<RemoteView>>;
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
    fn cancel<'a>(&'a self, job: &'a RemoteJob, id: &'a str) -> BoxFuture<'a, RemoteResult<()>>;
    fn suspend<'a>(&'a self, job: &'a RemoteJob, id: &'a str) -> BoxFuture<'a, RemoteResult<()>>;
    fn resume<'a>(&'a self, job: &'a RemoteJob, id: &'a str) -> BoxFuture<'a, RemoteResult<()>>;
}
