//! Shared helpers for tests that run the simulator in-process.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use jobrelay::crd::{Platform, PlatformApi};
use jobrelay::platform::{Adapter, PlatformConfig};
use jobrelay::simulator::{SimConfig, SimulatorHandle, start};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const CLIENT: (&str, &str) = ("test-client", "test-secret");
pub const USER: (&str, &str) = ("alice", "alice-password");

pub async fn sim() -> SimulatorHandle {
    start(SimConfig::for_tests())
        .await
        .expect("simulator starts")
}

pub async fn sim_with(f: impl FnOnce(&mut SimConfig)) -> SimulatorHandle {
    let mut c = SimConfig::for_tests();
    f(&mut c);
    start(c).await.expect("simulator starts")
}

/// A client like the token service builds: no redirects, bounded time.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn runai_token(sim: &SimulatorHandle) -> SecretString {
    let r = http()
        .post(format!("{}/api/v1/token", sim.base_url("runai")))
        .json(&json!({"grantType": "client_credentials", "clientId": CLIENT.0, "clientSecret": CLIENT.1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    SecretString::from(v["accessToken"].as_str().unwrap().to_string())
}

pub async fn dai_token(sim: &SimulatorHandle) -> SecretString {
    let r = http()
        .post(format!(
            "{}/auth/realms/eggplant/protocol/openid-connect/token",
            sim.base_url("dai")
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT.0),
            ("client_secret", CLIENT.1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    SecretString::from(v["access_token"].as_str().unwrap().to_string())
}

pub async fn openpai_token(sim: &SimulatorHandle) -> SecretString {
    let r = http()
        .post(format!("{}/api/v1/token", sim.base_url("openpai")))
        .form(&[("username", USER.0), ("password", USER.1)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    SecretString::from(v["token"].as_str().unwrap().to_string())
}

pub fn adapter(sim: &SimulatorHandle, platform: Platform, api: Option<PlatformApi>) -> Adapter {
    let mut c = PlatformConfig::new(platform, sim.base_url(platform.as_str()));
    c.api = api;
    if platform == Platform::Openpai {
        c = c.with_username(USER.0);
    }
    Adapter::new(c, http())
}

/// Polls `f` until it yields `Some`, failing the test after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn admin_post(sim: &SimulatorHandle, path: &str, body: Value) {
    let r = http()
        .post(sim.admin_url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "admin {path}: {}", r.status());
}

pub async fn counters(sim: &SimulatorHandle) -> Value {
    http()
        .get(sim.admin_url("counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn add_fault(sim: &SimulatorHandle, rule: Value) {
    admin_post(sim, "faults", rule).await;
}

pub const WAIT: Duration = Duration::from_secs(10);
