//! What to look at on the platform before planning, and looking at it.
//!
//! A look-up by name is how a lost create is found again; it is needed only when this process cannot
//! know whether a create of the open intent happened (a crash, a lost answer, another leader, a
//! status wiped). [`Written`] remembers, per RemoteJob, the resourceVersion of the last status this
//! process wrote and whether a create could be in flight then; a reconcile that finds the object at
//! exactly that version with none in flight knows the status is its own and skips the look-up
//! ([`target`]'s `known`). One that finds another version plans on a fresh read: the cache may not
//! have caught up with this process's last write (a plan on the older status would write that old
//! status back with one more step, and look up a job it has just created).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;

use super::model::Observed;
use crate::crd::{RemoteJob, RemoteJobPhase, RemoteJobStatus};
use crate::platform::{RemoteError, Session};

/// The deterministic remote name of attempt `attempt` (1-based) of `job`.
pub fn remote_name(job: &RemoteJob, attempt: i32) -> String {
    crate::platform::remote_name(
        &job.namespace().unwrap_or_default(),
        &job.name_any(),
        &job.uid().unwrap_or_default(),
        attempt,
    )
}

/// Where to look for the remote side of a RemoteJob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Nothing,
    /// We know the id.
    Id(String),
    /// An intent was recorded under this name but no id is known: look it up.
    Name(String),
    /// The status says nothing was ever submitted; it may have been wiped. Look up attempts 1..=n by name
    /// and adopt the latest one found.
    Attempts(i32),
}

/// Pure: the observation target for a status. A finished job is not looked at again unless a
/// cancel is pending (its observation confirms the cancel). `known`: the status is one this process
/// wrote with no create in flight and nothing changed the object since (see [`Written`]), so there
/// is nothing to find by name.
pub fn target(
    status: &RemoteJobStatus,
    lookup_by_name: bool,
    max_attempts: i32,
    known: bool,
) -> Target {
    if status.phase.is_terminal() && !status.cancel_pending {
        return Target::Nothing;
    }
    if let Some(id) = &status.remote_id {
        return Target::Id(id.clone());
    }
    if !lookup_by_name || known {
        return Target::Nothing;
    }
    match (&status.remote_name, status.phase) {
        (Some(name), RemoteJobPhase::Submitting) => Target::Name(name.clone()),
        (_, RemoteJobPhase::Pending) if status.attempts == 0 => {
            Target::Attempts(max_attempts.max(1))
        }
        _ => Target::Nothing,
    }
}

/// Pure: the wait until the next poll, `interval` long but ending on the wall-clock grid of
/// `interval` (`now_ms` since the Unix epoch), so that the jobs polled at one interval come due
/// together and one batched list per ApiClient serves them (spread out, a list served a few jobs).
/// Never longer than `interval`; at least 1 s (a reconcile just before a grid point waits for the next
/// one only if that is more than a second away).
pub fn poll_wait(interval: std::time::Duration, now_ms: u128) -> std::time::Duration {
    let step = interval.as_millis();
    if step < 2_000 {
        return interval;
    }
    let left = step - now_ms % step;
    let left = if left < 1_000 { left + step } else { left };
    std::time::Duration::from_millis(left.min(step) as u64).max(std::time::Duration::from_secs(1))
}

/// Pure: no create of this status's intent can be in flight or have happened unseen: no intent is
/// open, or the last create of the open one was refused with an answer that proves nothing was
/// created (Submitted False, SubmitRetrying). An unknown outcome is not settled.
pub fn settled(status: &RemoteJobStatus) -> bool {
    status.remote_id.is_some()
        || status.phase != RemoteJobPhase::Submitting
        || super::plan::submit_failed_cleanly(status)
}

/// Per RemoteJob uid: the resourceVersion of the last status this process wrote (or read fresh),
/// and whether it was its own and settled. Empty in a new process or leader, which therefore looks
/// up whatever intent it finds. Also the few versions this process stored before that one, so that a
/// watch event of its own earlier write is recognised as superseded rather than read again.
#[derive(Default)]
pub struct Written(Mutex<HashMap<String, Versions>>);

#[derive(Default)]
struct Versions {
    /// The last status written (or read fresh) and whether it was ours and settled.
    last: Option<(String, bool)>,
    /// Versions this process's own writes produced, newest last (at most [`EARLIER`]).
    ours: Vec<String>,
}

/// How many of a job's own earlier versions are remembered: a first reconcile writes three
/// (finalizer, intent, accepted) before the watch shows the first.
const EARLIER: usize = 4;

impl Versions {
    fn remember(&mut self, v: &str) {
        if self.ours.len() == EARLIER {
            self.ours.remove(0);
        }
        self.ours.push(v.to_string());
    }
}

impl Written {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Versions>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This process wrote `status`, which the apiserver stored as `version`.
    pub fn wrote(&self, uid: &str, version: Option<String>, status: &RemoteJobStatus) {
        let mut map = self.map();
        let entry = map.entry(uid.to_string()).or_default();
        match version {
            Some(v) => {
                entry.remember(&v);
                entry.last = Some((v, settled(status)));
            }
            None => entry.last = None,
        }
    }

    /// This process changed the object's metadata (its finalizer), stored as `version`: not a status
    /// to trust, but a version of its own.
    pub fn touched(&self, uid: &str, version: Option<&str>) {
        if let Some(v) = version {
            self.map().entry(uid.to_string()).or_default().remember(v);
        }
    }

    /// Read fresh at `version`: if that is not this process's last write, someone else wrote since
    /// (not ours to trust, but no reason to read it again either).
    pub fn read(&self, uid: &str, version: Option<String>) {
        let mut map = self.map();
        if let (Some(Some(w)), Some(v)) = (map.get_mut(uid).map(|e| e.last.as_mut()), version)
            && w.0 != v
        {
            *w = (v, false);
        }
    }

    /// The status this process last wrote is no longer known to be what is stored (a write whose
    /// answer did not come back, or the job is done with).
    pub fn forget(&self, uid: &str) {
        if let Some(e) = self.map().get_mut(uid) {
            e.last = None;
        }
    }

    /// The job is gone from this process's hands (its finalizer removed): drop everything.
    pub fn drop_job(&self, uid: &str) {
        self.map().remove(uid);
    }

    /// Whether the object at `version` is exactly what this process last wrote (settled).
    pub fn known(&self, uid: &str, version: Option<&str>) -> bool {
        let map = self.map();
        let last = map.get(uid).and_then(|e| e.last.as_ref());
        version.is_some_and(|v| last.is_some_and(|w| w.0 == v && w.1))
    }

    /// Whether this process last wrote (or read) another version than `version`: the cache may be
    /// behind its own write.
    pub fn behind(&self, uid: &str, version: Option<&str>) -> bool {
        let map = self.map();
        let last = map.get(uid).and_then(|e| e.last.as_ref());
        last.is_some_and(|w| version != Some(w.0.as_str()))
    }

    /// Whether `version` is one this process wrote itself before its last, confirmed write: the
    /// watch is showing an older write of ours, and the newer one is on its way (the watch delivers
    /// every version in order). Nothing to decide on it, and nothing to read: wait for the newer.
    pub fn superseded(&self, uid: &str, version: Option<&str>) -> bool {
        let map = self.map();
        let Some(e) = map.get(uid) else { return false };
        match (version, e.last.as_ref()) {
            (Some(v), Some(last)) => last.0 != v && e.ours.iter().any(|o| o == v),
            _ => false,
        }
    }
}

pub async fn observe(
    remote: &Session,
    job: &RemoteJob,
    status: &RemoteJobStatus,
    known: bool,
) -> Result<Observed, RemoteError> {
    let max_attempts = job.spec.backoff_limit + 1;
    let by_name =
        super::plan::recovery(&job.spec, remote.capabilities()) == super::model::Recovery::ByName;
    match target(status, by_name, max_attempts, known) {
        Target::Nothing => Ok(Observed::Nothing),
        Target::Id(id) => match remote
            .get(job.spec.job(), &job.uid().unwrap_or_default(), &id)
            .await
        {
            Ok(view) => Ok(Observed::Found {
                view,
                attempt: status.attempts.max(1),
            }),
            Err(RemoteError::NotFound) => Ok(Observed::Absent),
            Err(e) => Err(e),
        },
        Target::Name(name) => match remote.lookup(job.spec.job(), &name).await? {
            Some(view) => Ok(Observed::Found {
                view,
                attempt: status.attempts.max(1),
            }),
            None => Ok(Observed::Absent),
        },
        Target::Attempts(n) => {
            // Latest first: the newest attempt is the one that matters.
            for attempt in (1..=n).rev() {
                let name = remote_name(job, attempt);
                if let Some(view) = remote.lookup(job.spec.job(), &name).await? {
                    return Ok(Observed::Found { view, attempt });
                }
            }
            Ok(Observed::Absent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let empty = RemoteJobStatus::default();
        assert_eq!(target(&empty, true, 3, false), Target::Attempts(3));
        assert_eq!(target(&empty, false, 3, false), Target::Nothing);
        let intent = RemoteJobStatus {
            phase: RemoteJobPhase::Submitting,
            remote_name: Some("n-1".into()),
            attempts: 1,
            ..Default::default()
        };
        assert_eq!(target(&intent, true, 1, false), Target::Name("n-1".into()));
        assert_eq!(target(&intent, false, 1, false), Target::Nothing);
        let known = RemoteJobStatus {
            remote_id: Some("42".into()),
            ..intent.clone()
        };
        assert_eq!(target(&known, false, 1, false), Target::Id("42".into()));
        let suspended_early = RemoteJobStatus {
            phase: RemoteJobPhase::Suspended,
            ..Default::default()
        };
        assert_eq!(target(&suspended_early, true, 1, false), Target::Nothing);
        let finished = RemoteJobStatus {
            phase: RemoteJobPhase::Succeeded,
            ..known.clone()
        };
        assert_eq!(
            target(&finished, true, 1, false),
            Target::Nothing,
            "not polled"
        );
        let cancelling = RemoteJobStatus {
            phase: RemoteJobPhase::Failed,
            cancel_pending: true,
            ..known.clone()
        };
        assert_eq!(target(&cancelling, true, 1, false), Target::Id("42".into()));
    }

    #[test]
    fn a_status_this_process_wrote_is_not_looked_up() {
        let empty = RemoteJobStatus::default();
        let intent = RemoteJobStatus {
            phase: RemoteJobPhase::Submitting,
            remote_name: Some("n-1".into()),
            attempts: 1,
            ..Default::default()
        };
        assert_eq!(target(&empty, true, 3, true), Target::Nothing);
        assert_eq!(target(&intent, true, 1, true), Target::Nothing);
        let known = RemoteJobStatus {
            remote_id: Some("42".into()),
            ..intent.clone()
        };
        assert_eq!(target(&known, true, 1, true), Target::Id("42".into()));
    }

    #[test]
    fn an_older_write_of_ours_is_superseded_only_by_a_confirmed_newer_one() {
        let w = Written::default();
        let s = RemoteJobStatus::default();
        let v = |x: &str| Some(x.to_string());
        // Nothing written: nothing superseded (a new process reads what it finds).
        assert!(!w.superseded("u", Some("1")));
        w.touched("u", Some("1")); // finalizer
        w.wrote("u", v("2"), &s); // intent
        w.wrote("u", v("3"), &s); // accepted
        assert!(w.superseded("u", Some("1")));
        assert!(w.superseded("u", Some("2")));
        assert!(!w.superseded("u", Some("3")), "the last write is current");
        assert!(!w.superseded("u", Some("9")), "someone else's version");
        assert!(!w.superseded("u", None));
        assert!(!w.superseded("other", Some("1")));
        // A write whose answer is lost: no newer version of ours is known, so read again.
        w.forget("u");
        assert!(!w.superseded("u", Some("2")));
        w.wrote("u", v("5"), &s);
        assert!(w.superseded("u", Some("2")));
        // Only the last few are remembered; after the finalizer is gone, nothing.
        for i in 6..12 {
            w.wrote("u", Some(i.to_string()), &s);
        }
        assert!(!w.superseded("u", Some("2")));
        assert!(w.superseded("u", Some("10")));
        w.drop_job("u");
        assert!(!w.superseded("u", Some("10")));
    }

    fn submitted(status: &str, reason: &str) -> RemoteJobStatus {
        let mut s = RemoteJobStatus {
            phase: RemoteJobPhase::Submitting,
            remote_name: Some("n-1".into()),
            attempts: 1,
            ..Default::default()
        };
        let at = crate::crd::conditions::Stamp {
            generation: Some(1),
            now: k8s_openapi::jiff::Timestamp::now(),
        };
        at.on(&mut s.conditions).set(
            crate::crd::conditions::types::SUBMITTED,
            status,
            reason,
            "m",
        );
        s
    }

    #[test]
    fn polls_come_due_on_the_interval_grid() {
        use std::time::Duration;
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let table = [
            // (interval, now ms, wait)
            (s(10), 100_000, s(10)),
            (s(10), 103_500, ms(6_500)),
            (s(10), 109_999, s(10)), // a moment before a grid point: the one after, at most interval
            (s(10), 109_200, s(10)), // 0.8 s to the grid: capped at one interval
            (s(1), 123_456, s(1)),   // short intervals are not aligned
            (s(3), 7_000, s(2)),
        ];
        for (interval, now, want) in table {
            assert_eq!(poll_wait(interval, now), want, "{interval:?} at {now}");
        }
    }

    #[test]
    fn settled_statuses() {
        use crate::crd::conditions::{FALSE, UNKNOWN, reasons};
        let table = [
            (RemoteJobStatus::default(), true),
            (submitted(FALSE, reasons::SUBMITTING), false),
            (submitted(FALSE, reasons::SUBMIT_RETRYING), true),
            (submitted(UNKNOWN, reasons::OUTCOME_UNKNOWN), false),
            (
                RemoteJobStatus {
                    remote_id: Some("42".into()),
                    ..submitted(FALSE, reasons::SUBMITTING)
                },
                true,
            ),
        ];
        for (status, want) in table {
            assert_eq!(settled(&status), want, "{status:?}");
        }
    }

    #[test]
    fn written_versions() {
        use crate::crd::conditions::{FALSE, reasons};
        let w = Written::default();
        assert!(!w.known("u", Some("1")), "a new process knows nothing");
        w.wrote("u", Some("5".into()), &RemoteJobStatus::default());
        assert!(w.known("u", Some("5")));
        assert!(!w.known("u", Some("6")), "changed since");
        assert!(!w.known("v", Some("5")));
        assert!(!w.known("u", None));
        assert!(
            !w.behind("v", Some("5")),
            "nothing written, nothing to catch up with"
        );
        assert!(!w.behind("u", Some("5")));
        // The intent is written before the create: from then on its outcome is not ours to assume.
        w.wrote(
            "u",
            Some("6".into()),
            &submitted(FALSE, reasons::SUBMITTING),
        );
        assert!(!w.known("u", Some("6")));
        assert!(
            w.behind("u", Some("5")),
            "the cache has not seen the intent yet"
        );
        assert!(!w.behind("u", Some("6")));
        w.wrote(
            "u",
            Some("7".into()),
            &submitted(FALSE, reasons::SUBMIT_RETRYING),
        );
        assert!(w.known("u", Some("7")));
        // Someone else wrote since: read fresh once, then neither known nor behind.
        assert!(w.behind("u", Some("8")));
        w.read("u", Some("8".into()));
        assert!(!w.known("u", Some("8")) && !w.behind("u", Some("8")));
        w.forget("u");
        assert!(!w.known("u", Some("7")));
    }
}
