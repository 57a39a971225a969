//! What the RemoteJob controller's reconcile and its helpers share: the [`Context`] (clients, platform
//! sessions, backoffs) and the [`Error`]. Its own file so that `mod.rs` and the files it uses
//! (`client_ref.rs`, `runner.rs`) import it without importing each other.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::Recorder;

use super::{decide, platform_remote};
use crate::platform::RemoteError;

pub struct Context {
    pub client: kube::Client,
    /// The platform session of an ApiClient.
    pub remotes: Arc<platform_remote::Factory>,
    pub recorder: Recorder,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Per RemoteJob uid: no remote call before this instant (a platform's Retry-After, or our backoff).
    /// Our own status write would otherwise re-trigger a reconcile at once and ignore the wait.
    pub not_before: Backoffs,
    /// The statuses this process wrote: no look-up by name for those (see [`super::observe::Written`]).
    pub written: super::observe::Written,
    /// ApiClients from the ApiClient controller's caches, and in-use protection.
    pub shared: Arc<crate::controller::in_use::Shared>,
    /// The cluster serves Kueue's Workload API (found at start-up): queued RemoteJobs are admitted
    /// by Kueue (see `controller::queue`). Off, the queue label is ignored.
    pub kueue: bool,
}

/// Per RemoteJob uid: the failures in a row of its remote calls and when it may call again.
#[derive(Default)]
pub struct Backoffs(std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u32)>>);

impl Backoffs {
    pub(super) fn wait_left(&self, uid: &str) -> Option<Duration> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let left = map
            .get(uid)?
            .0
            .checked_duration_since(std::time::Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// One more failure of `uid`'s calls: how long it now waits.
    pub(super) fn failed(&self, uid: &str, err: &RemoteError) -> Duration {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        // Forget jobs that have not failed for a while (deleted ones included).
        map.retain(|_, (t, _)| *t + decide::BACKOFF_MAX > now);
        let failures = map.get(uid).map_or(0, |(_, n)| *n) + 1;
        let wait = decide::retry_delay(err, failures);
        map.insert(uid.to_string(), (now + wait, failures));
        wait
    }

    pub(super) fn succeeded(&self, uid: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

impl Context {
    pub(super) fn wait_left(&self, uid: &str) -> Option<Duration> {
        self.not_before.wait_left(uid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("RemoteJob has no namespace")]
    NoNamespace,
}
