//! What to look at on the platform before planning, and looking at it.

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
/// cancel is pending (its observation confirms the cancel).
pub fn target(status: &RemoteJobStatus, lookup_by_name: bool, max_attempts: i32) -> Target {
    if status.phase.is_terminal() && !status.cancel_pending {
        return Target::Nothing;
    }
    if let Some(id) = &status.remote_id {
        return Target::Id(id.clone());
    }
    if !lookup_by_name {
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

pub async fn observe(
    remote: &Session,
    job: &RemoteJob,
    status: &RemoteJobStatus,
) -> Result<Observed, RemoteError> {
    let max_attempts = job.spec.backoff_limit + 1;
    let by_name =
        super::plan::recovery(&job.spec, remote.capabilities()) == super::model::Recovery::ByName;
    match target(status, by_name, max_attempts) {
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
        assert_eq!(target(&empty, true, 3), Target::Attempts(3));
        assert_eq!(target(&empty, false, 3), Target::Nothing);
        let intent = RemoteJobStatus {
            phase: RemoteJobPhase::Submitting,
            remote_name: Some("n-1".into()),
            attempts: 1,
            ..Default::default()
        };
        assert_eq!(target(&intent, true, 1), Target::Name("n-1".into()));
        assert_eq!(target(&intent, false, 1), Target::Nothing);
        let known = RemoteJobStatus {
            remote_id: Some("42".into()),
            ..intent.clone()
        };
        assert_eq!(target(&known, false, 1), Target::Id("42".into()));
        let suspended_early = RemoteJobStatus {
            phase: RemoteJobPhase::Suspended,
            ..Default::default()
        };
        assert_eq!(target(&suspended_early, true, 1), Target::Nothing);
        let finished = RemoteJobStatus {
            phase: RemoteJobPhase::Succeeded,
            ..known.clone()
        };
        assert_eq!(target(&finished, true, 1), Target::Nothing, "not polled");
        let cancelling = RemoteJobStatus {
            phase: RemoteJobPhase::Failed,
            cancel_pending: true,
            ..known.clone()
        };
        assert_eq!(target(&cancelling, true, 1), Target::Id("42".into()));
    }
}
