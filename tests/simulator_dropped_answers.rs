//! Commit-then-drop on the wire: the simulator stores the create and closes the connection without a
//! single byte of an answer, as a platform that crashed or lost its network after committing would.
//! (A status line followed by a broken body would let a client believe it had been answered.)

use std::time::Duration;

mod support;

use jobrelay::simulator::{Fault, FaultKind};
use serde_json::{Value, json};
use support::operator::{admin_json, sim_token, simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_dropped_create_is_stored_and_answered_with_nothing() {
    let sim = simulator(None).await;
    let t = sim_token(&sim, "runai", "runai").await;
    let http = reqwest::Client::new();
    let token = t["access_token"].as_str().unwrap();
    sim.state
        .lock()
        .faults
        .push(Fault::once("runai", "create", FaultKind::CommitThenDrop));

    let body =
        json!({"name": "dropped", "projectId": "5", "clusterId": "c", "spec": {"image": "i"}})
            .to_string();
    let request = format!(
        "POST /runai/api/v1/workloads/trainings HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        sim.addr,
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(sim.addr).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer))
        .await
        .expect("the connection is closed, not left hanging");
    // Closed (EOF) or reset: either way not one byte of an answer.
    assert!(
        answer.is_empty(),
        "nothing is answered, got {:?} ({read:?})",
        String::from_utf8_lossy(&answer)
    );
    let counters = sim.state.lock().counters.clone();
    assert_eq!(
        counters.creates.get("runai/dropped"),
        Some(&1),
        "the create was committed: {counters:?}"
    );

    // The fault was one-shot and the server is fine: the same create now conflicts, with an answer.
    let again = http
        .post(format!(
            "{}/api/v1/workloads/trainings",
            sim.base_url("runai")
        ))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    // The arrival log on the admin API has both creates, oldest first, with their times.
    let log: Vec<Value> = serde_json::from_value(admin_json(&sim, "requests").await).unwrap();
    let creates: Vec<&Value> = log
        .iter()
        .filter(|r| {
            r["request"]
                .as_str()
                .unwrap()
                .starts_with("POST /runai/api/v1/workloads/trainings")
        })
        .collect();
    assert_eq!(creates.len(), 2, "{log:?}");
    assert!(
        creates[0]["request"]
            .as_str()
            .unwrap()
            .ends_with(" dropped"),
        "{log:?}"
    );
    assert!(
        creates[1]["request"].as_str().unwrap().ends_with(" 409"),
        "{log:?}"
    );
    assert!(
        creates
            .iter()
            .all(|r| r["at"].as_str().is_some_and(|t| t.ends_with('Z'))),
        "{log:?}"
    );
}
