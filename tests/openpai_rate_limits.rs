//! OpenPAI's rate limiters as the simulator plays them (platforms.md §2.7): submit per user and hour,
//! list per user and minute, and all of the API per client address and minute, each answering a
//! plain-text 429 with `X-RateLimit-*` and a `Retry-After` of its window; and the adapter turning them
//! into retriable errors that carry that wait.

use std::time::Duration;

use jobrelay::crd::RemoteJobSpec;
use jobrelay::platform::openpai::Openpai;
use jobrelay::platform::{Endpoint, Platform, RemoteError};
use jobrelay::simulator::{self, Config};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

async fn sim(config: Config) -> simulator::Handle {
    let config = Config {
        users: [("demo".to_string(), "demo-password".to_string())].into(),
        ..config
    };
    simulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn login(sim: &simulator::Handle) -> reqwest::Response {
    http()
        .post(format!("{}/api/v1/token", sim.base_url("openpai")))
        .json(&json!({"username": "demo", "password": "demo-password"}))
        .send()
        .await
        .unwrap()
}

async fn token(sim: &simulator::Handle) -> SecretString {
    let body: Value = login(sim).await.json().await.unwrap();
    SecretString::from(body["token"].as_str().unwrap().to_string())
}

fn adapter(sim: &simulator::Handle) -> Openpai {
    Openpai::new(Endpoint::new(http(), sim.base_url("openpai")), false).as_user("demo")
}

fn job() -> RemoteJobSpec {
    serde_json::from_value(json!({
        "clientRef": {"name": "c"},
        "openpai": {"image": "ubuntu", "commands": ["true"], "parameters": {"SIM_RUN_SECONDS": "30"}}
    }))
    .unwrap()
}

/// The limiter's answer: 429, plain text, its window as Retry-After and its limit.
async fn assert_limited(r: reqwest::Response, window: &str, limit: &str) {
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], window);
    assert_eq!(r.headers()["x-ratelimit-limit"], limit);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(
        r.text().await.unwrap(),
        "Too many requests, please try again later."
    );
}

fn retriable_after(e: RemoteError) -> Option<Duration> {
    match e {
        RemoteError::Retriable { retry_after, .. } => retry_after,
        other => panic!("not retriable: {other:?}"),
    }
}

#[tokio::test]
async fn submit_and_list_limits_are_per_user_and_say_when_to_come_back() {
    let sim = sim(Config {
        openpai_submits_per_hour: 2,
        openpai_lists_per_min: 3,
        ..Default::default()
    })
    .await;
    let t = token(&sim).await;
    let a = adapter(&sim);
    a.create(&t, job().job(), "one").await.unwrap();
    a.create(&t, job().job(), "two").await.unwrap();
    // The third submit within the hour: refused before the protocol is even looked at.
    // The platform says come back in an hour (Retry-After: 3600, checked raw below); the operator
    // waits at most RETRY_AFTER_MAX before it asks again.
    let wait = retriable_after(a.create(&t, job().job(), "three").await.unwrap_err());
    assert_eq!(wait, Some(jobrelay::platform::http::RETRY_AFTER_MAX));
    let raw = http()
        .post(format!("{}/api/v2/jobs", sim.base_url("openpai")))
        .bearer_auth(t.expose_secret())
        .header("content-type", "text/yaml")
        .body("not: a job")
        .send()
        .await
        .unwrap();
    assert_limited(raw, "3600", "2").await;
    let jobs = sim.state.lock().counters.creates.clone();
    assert_eq!(jobs.len(), 2, "refused submits store nothing: {jobs:?}");

    // Lists: three a minute, then the adapter is told to wait the window out.
    for _ in 0..3 {
        assert_eq!(a.list(&t, job().job()).await.unwrap().len(), 2);
    }
    let wait = retriable_after(a.list(&t, job().job()).await.unwrap_err());
    assert_eq!(wait, Some(Duration::from_secs(60)));
    let raw = http()
        .get(format!(
            "{}/api/v2/jobs?username=demo",
            sim.base_url("openpai")
        ))
        .bearer_auth(t.expose_secret())
        .send()
        .await
        .unwrap();
    assert_limited(raw, "60", "3").await;
    // Status GETs are limited only by the global limiter, which is off here.
    let v = a.get(&t, job().job(), "demo~one").await.unwrap();
    assert_eq!(v.id, "demo~one");
}

#[tokio::test]
async fn the_global_limit_counts_every_call_before_the_token_check() {
    let sim = sim(Config {
        openpai_requests_per_min: 3,
        ..Default::default()
    })
    .await;
    let t = token(&sim).await;
    // An unauthenticated call still spends the budget (the limiter sits in front of the token check).
    let anon = http()
        .get(format!("{}/api/v2/jobs/demo~x", sim.base_url("openpai")))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let missing = adapter(&sim)
        .get(&t, job().job(), "demo~x")
        .await
        .unwrap_err();
    assert!(matches!(missing, RemoteError::NotFound), "{missing:?}");
    // The fourth call of the minute, whatever it is, is refused: even a login.
    assert_limited(login(&sim).await, "60", "3").await;
    let wait = retriable_after(
        adapter(&sim)
            .get(&t, job().job(), "demo~x")
            .await
            .unwrap_err(),
    );
    assert_eq!(wait, Some(Duration::from_secs(60)));
    // Other platforms on the same simulator are not OpenPAI's business.
    let runai = http()
        .get(format!("{}/api/v1/workloads", sim.base_url("runai")))
        .send()
        .await
        .unwrap();
    assert_eq!(runai.status(), 401);
}
