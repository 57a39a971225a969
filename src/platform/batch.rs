//! Batched observation: when several RemoteJobs of one ApiClient (and one Run:ai project / OpenPAI user)
//! are active, their status comes from one list call shared for a second, instead of one GET each.
//! With one or two jobs, single GETs are cheaper than listing a whole project.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::model::{RemoteResult, RemoteView};

/// How long a listing answers for.
pub const FRESH: Duration = Duration::from_secs(1);
/// From how many active jobs in a scope on the list call is used.
pub const MIN_JOBS: usize = 3;
/// A job counts as active while it was observed this recently.
pub const ACTIVE_FOR: Duration = Duration::from_secs(60);

type Snapshot = Arc<HashMap<String, RemoteView>>;

#[derive(Default)]
pub struct Scope {
    active: Mutex<HashMap<String, Instant>>,
    snapshot: tokio::sync::Mutex<Option<(Instant, Snapshot)>>,
}

impl Scope {
    /// Records that `job` is observed now; returns how many jobs are active in the scope.
    pub fn note(&self, job: &str) -> usize {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        active.retain(|_, t| now.duration_since(*t) < ACTIVE_FOR);
        active.insert(job.to_string(), now);
        active.len()
    }

    /// Whether no job of this scope was observed within [`ACTIVE_FOR`] before `now`.
    fn idle_at(&self, now: Instant) -> bool {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active
            .values()
            .all(|t| now.saturating_duration_since(*t) >= ACTIVE_FOR)
    }

    /// The current listing, from `list` when the last one is older than [`FRESH`]; concurrent callers
    /// share one list call.
    pub async fn listing<F, Fut>(&self, list: F) -> RemoteResult<Snapshot>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = RemoteResult<Vec<RemoteView>>>,
    {
        let mut slot = self.snapshot.lock().await;
        if let Some((_, snap)) = slot.as_ref().filter(|(at, _)| at.elapsed() < FRESH) {
            return Ok(snap.clone());
        }
        let views = list().await?;
        let snap: Snapshot = Arc::new(views.into_iter().map(|v| (v.id.clone(), v)).collect());
        *slot = Some((Instant::now(), snap.clone()));
        Ok(snap)
    }
}

/// Scopes by key (`<ApiClient uid>/<platform scope>`).
#[derive(Default)]
pub struct Batches {
    scopes: Mutex<HashMap<String, Arc<Scope>>>,
}

impl Batches {
    /// The scope `key`; scopes gone quiet are dropped on the way (see [`prune`]).
    pub fn scope(&self, key: &str) -> Arc<Scope> {
        let mut scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        prune(&mut scopes, Instant::now());
        scopes.entry(key.to_string()).or_default().clone()
    }
}

/// Drops the scopes that no caller holds and none of whose jobs was observed within [`ACTIVE_FOR`]
/// before `now`: an ApiClient, project or user that went away leaves no state behind (and a scope
/// that comes back starts afresh, which costs at most one list call).
fn prune(scopes: &mut HashMap<String, Arc<Scope>>, now: Instant) {
    scopes.retain(|_, s| Arc::strong_count(s) > 1 || !s.idle_at(now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobspec::RemoteJobPhase;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn view(id: &str) -> RemoteView {
        RemoteView {
            id: id.into(),
            phase: RemoteJobPhase::Running,
            state: "Running".into(),
            message: None,
            url: None,
            ..Default::default()
        }
    }

    #[test]
    fn counts_active_jobs_once_each() {
        let s = Scope::default();
        assert_eq!(s.note("a"), 1);
        assert_eq!(s.note("a"), 1);
        assert_eq!(s.note("b"), 2);
    }

    #[test]
    fn quiet_scopes_nobody_holds_are_pruned() {
        let b = Batches::default();
        b.scope("observed").note("j");
        let held = b.scope("held");
        b.scope("never-observed");
        let keys = |b: &Batches| {
            let mut k: Vec<String> = b.scopes.lock().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let now = Instant::now();
        prune(&mut b.scopes.lock().unwrap(), now);
        assert_eq!(keys(&b), ["held", "observed"]);
        prune(&mut b.scopes.lock().unwrap(), now + ACTIVE_FOR);
        assert_eq!(keys(&b), ["held"], "quiet for ACTIVE_FOR");
        drop(held);
        b.scope("other");
        assert_eq!(keys(&b), ["other"], "an idle scope goes once let go");
    }

    #[tokio::test]
    async fn concurrent_observers_share_one_listing() {
        let s = Arc::new(Scope::default());
        let calls = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (s, calls) = (s.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                s.listing(|| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(vec![view("1"), view("2")])
                })
                .await
                .unwrap()
                .len()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 2);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
