//! Run:ai's adapter against responses shaped as Run:ai publishes them (tests/fixtures/runai, whose
//! README names the sources).

use super::*;
use crate::platform::http::classify_recorded as class;
use crate::platform::{fixture, fixture_bytes};

fn runai() -> Runai {
    Runai(Endpoint::new(
        reqwest::Client::new(),
        "https://tenant.run.ai",
    ))
}

#[test]
fn a_created_training_is_queued_under_its_workload_id() {
    let v = runai()
        .view(&fixture!("runai/training-create-202.json"))
        .unwrap();
    assert_eq!(v.id, "6f1c2a8e-4b1d-4f0a-9d55-0a7c1e2b3c4d");
    assert_eq!((v.phase, v.state.as_str()), (Phase::Queued, "Creating"));
    let v = runai()
        .view(&fixture!("runai/training-running.json"))
        .unwrap();
    assert_eq!((v.phase, v.state.as_str()), (Phase::Running, "Running"));
}

#[test]
fn an_unrecognized_phase_is_shown_with_its_word() {
    let mut w = fixture!("runai/training-running.json");
    w["actualPhase"] = "Hibernating".into();
    let v = runai().view(&w).unwrap();
    assert_eq!((v.phase, v.state.as_str()), (Phase::Unknown, "Hibernating"));
    assert!(
        v.message
            .as_deref()
            .unwrap()
            .starts_with("unrecognized state 'Hibernating' from the platform"),
        "{v:?}"
    );
    // Documented words that map to Unknown (going away, not gone) say nothing of the kind.
    w["actualPhase"] = "Deleting".into();
    let v = runai().view(&w).unwrap();
    assert!(!v.message.unwrap_or_default().contains("unrecognized"));
}

#[test]
fn listed_workloads_carry_id_phase_message_and_end() {
    let list = fixture!("runai/workloads-list.json");
    let views: Vec<RemoteView> = list["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| runai().view(w).unwrap())
        .collect();
    assert_eq!(views[0].id, "6f1c2a8e-4b1d-4f0a-9d55-0a7c1e2b3c4d");
    assert_eq!(views[0].phase, Phase::Succeeded);
    assert_eq!(
        views[0].message, None,
        "an empty phaseMessage is no message"
    );
    assert_eq!(
        views[0].finished_at.map(|t| t.to_string()).as_deref(),
        Some("2024-03-01T10:42:10Z")
    );
    assert_eq!(views[1].phase, Phase::Failed);
    assert_eq!(
        views[1].message.as_deref(),
        Some("Error: container exited with code 1")
    );
    assert_eq!(list["next"], 2, "the pagination cursor is where we read it");
}

#[test]
fn going_away_is_not_terminal_and_a_stop_is_a_suspension() {
    let v = runai()
        .view(&fixture!("runai/training-deleting.json"))
        .unwrap();
    assert_eq!((v.phase, v.state.as_str()), (Phase::Unknown, "Deleting"));
    assert!(!v.phase.is_terminal());
    let v = runai()
        .view(&fixture!("runai/training-stopped.json"))
        .unwrap();
    assert_eq!((v.phase, v.state.as_str()), (Phase::Suspended, "Stopped"));
}

#[test]
fn documented_errors_classify() {
    assert_eq!(
        class(409, fixture_bytes!("runai/error-409-conflict.json")),
        RemoteError::Conflict {
            message: "Resource with this name already exists".into()
        }
    );
    assert!(matches!(
        class(400, fixture_bytes!("runai/error-400-submission.json")),
        RemoteError::Permanent { message } if message.contains("already exists")
    ));
    assert_eq!(
        class(404, fixture_bytes!("runai/error-404.json")),
        RemoteError::NotFound
    );
}
