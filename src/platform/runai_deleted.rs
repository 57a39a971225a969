//! Run:ai workloads the platform deleted (platforms.md §1.2): after Deleting, `GET …/{id}` answers 404
//! and the workload is listed only under `GET /api/v1/workloads?deleted=true`, with `deletedAt` and
//! the phase it had. A person, or `autoDeletionTimeAfterCompletionSeconds`, may delete a finished
//! workload between two of our polls: its outcome must survive the deletion, or a job that completed
//! would be reported as gone.

use serde_json::Value;

use super::model::{RemoteError, RemoteView, time_of};
use crate::jobspec::RemoteJobPhase as Phase;
use crate::transport::sanitize;

/// Pure: is `w` (a generic `Workload` of a listing) the workload `id`?
pub fn is_workload(w: &Value, id: &str) -> bool {
    w.get("id")
        .or_else(|| w.get("workloadId"))
        .and_then(Value::as_str)
        == Some(id)
}

/// Pure: our view of a deleted workload, from the view of the listed object (`view`) and its
/// `deletedAt`. A workload that ended (Completed/Failed) keeps that outcome; one deleted before it
/// ended was cancelled on the platform. Either way the message says it was deleted, when, and in
/// what phase.
pub fn after_deletion(mut view: RemoteView, deleted_at: Option<&Value>) -> RemoteView {
    let when = match (time_of(deleted_at), deleted_at.and_then(Value::as_str)) {
        (Some(t), _) => format!("at {t}"),
        (None, Some(raw)) if !raw.is_empty() => format!("at {}", sanitize(raw)),
        _ => "at a time it did not say".to_string(),
    };
    let note = format!("deleted on the platform {when}, in phase {}", view.state);
    view.message = Some(match view.message.take() {
        Some(m) => format!("{note}: {m}"),
        None => note,
    });
    if !view.phase.is_terminal() {
        view.phase = Phase::Cancelled;
    }
    view
}

/// Pure: how a failed look-up among deleted workloads ends a 404 by id. A refusal of the deleted
/// listing itself (an older control plane without `deleted=true`) leaves the 404 as it was; an
/// outage is retried.
pub fn lookup_failed(e: RemoteError) -> RemoteError {
    match e {
        RemoteError::Retriable { .. } | RemoteError::Auth { .. } => e,
        _ => RemoteError::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(phase: Phase, state: &str, message: Option<&str>) -> RemoteView {
        RemoteView {
            id: "w1".into(),
            phase,
            state: state.into(),
            message: message.map(Into::into),
            url: None,
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn a_deleted_workload_keeps_its_outcome_or_counts_as_cancelled() {
        let at = json!("2024-03-01T10:50:00.000Z");
        // (listed phase, our phase before, its message) → (our phase after, message)
        let table = [
            (
                (Phase::Succeeded, "Completed", None),
                Phase::Succeeded,
                "deleted on the platform at 2024-03-01T10:50:00Z, in phase Completed",
            ),
            (
                (Phase::Failed, "Failed", Some("exit 1")),
                Phase::Failed,
                "deleted on the platform at 2024-03-01T10:50:00Z, in phase Failed: exit 1",
            ),
            (
                (Phase::Running, "Running", None),
                Phase::Cancelled,
                "deleted on the platform at 2024-03-01T10:50:00Z, in phase Running",
            ),
            (
                (Phase::Unknown, "Deleting", None),
                Phase::Cancelled,
                "deleted on the platform at 2024-03-01T10:50:00Z, in phase Deleting",
            ),
            (
                (Phase::Suspended, "Stopped", None),
                Phase::Cancelled,
                "deleted on the platform at 2024-03-01T10:50:00Z, in phase Stopped",
            ),
        ];
        for ((phase, state, msg), want_phase, want_msg) in table {
            let v = after_deletion(view(phase, state, msg), Some(&at));
            assert_eq!(v.phase, want_phase, "{state}");
            assert_eq!(v.message.as_deref(), Some(want_msg), "{state}");
        }
        let v = after_deletion(view(Phase::Succeeded, "Completed", None), None);
        assert!(v.message.unwrap().contains("at a time it did not say"));
    }

    #[test]
    fn only_an_outage_of_the_deleted_listing_is_retried() {
        let retriable = RemoteError::Retriable {
            message: "503".into(),
            retry_after: None,
        };
        assert_eq!(lookup_failed(retriable.clone()), retriable);
        let refused = RemoteError::Permanent {
            message: "unknown parameter deleted".into(),
        };
        assert_eq!(lookup_failed(refused), RemoteError::NotFound);
        assert_eq!(lookup_failed(RemoteError::NotFound), RemoteError::NotFound);
    }

    #[test]
    fn workloads_match_by_id_in_either_spelling() {
        assert!(is_workload(&json!({"id": "a"}), "a"));
        assert!(is_workload(&json!({"workloadId": "a"}), "a"));
        assert!(!is_workload(&json!({"id": "b", "name": "a"}), "a"));
    }
}

/// Against the deleted listing shaped as Run:ai publishes it (tests/fixtures/runai/workloads-deleted.json).
#[cfg(test)]
mod recorded {
    use super::*;
    use crate::platform::fixture;
    use crate::platform::http::Endpoint;
    use crate::platform::runai::Runai;

    fn found(id: &str) -> RemoteView {
        let runai = Runai(Endpoint::new(
            reqwest::Client::new(),
            "https://tenant.run.ai",
        ));
        let list = fixture!("runai/workloads-deleted.json");
        let w = list["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| is_workload(w, id))
            .unwrap();
        after_deletion(runai.view(w).unwrap(), w.get("deletedAt"))
    }

    #[test]
    fn a_completed_workload_deleted_later_still_succeeded() {
        let v = found("6f1c2a8e-4b1d-4f0a-9d55-0a7c1e2b3c4d");
        assert_eq!((v.phase, v.state.as_str()), (Phase::Succeeded, "Completed"));
        assert_eq!(
            v.finished_at.map(|t| t.to_string()).as_deref(),
            Some("2024-03-01T10:42:10Z")
        );
        assert_eq!(
            v.message.as_deref(),
            Some("deleted on the platform at 2024-03-01T10:52:10Z, in phase Completed")
        );
    }

    #[test]
    fn a_workload_deleted_while_running_was_cancelled_there() {
        let v = found("9a3d1c55-2e7f-4b8a-b0c1-5e4f3a2b1c0d");
        assert_eq!((v.phase, v.state.as_str()), (Phase::Cancelled, "Deleting"));
        assert_eq!(v.finished_at, None, "completedAt null is no end");
        assert!(
            v.message
                .as_deref()
                .unwrap()
                .contains("at 2024-03-01T12:20:00Z, in phase Deleting"),
            "{v:?}"
        );
    }
}
