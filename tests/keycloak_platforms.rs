//! A token issued by the real Keycloak, taken through each platform adapter to the simulator (which
//! trusts the Keycloak realm as an external issuer): the token path is not simulated end to end.

mod support;

use std::time::Duration;

use jobrelay::crd::{PlatformApi, RemoteJobPhase as Phase};
use jobrelay::platform::{self, Endpoint, RemoteError};
use jobrelay::simulator::{self, Config};
use secrecy::SecretString;
use serde_json::json;
use support::fixtures::spec;
use support::keycloak;
use support::wait_for;

#[tokio::test(flavor = "multi_thread")]
async fn keycloak_tokens_reach_every_platform_through_the_adapters() {
    let Some(kc) = keycloak::shared("keycloak_tokens_reach_every_platform_through_the_adapters")
    else {
        return;
    };
    let client_id = format!("platforms-{}", std::process::id());
    kc.create_client(&client_id, "platforms-secret", 300).await;
    let answer = support::client_credentials(&kc.token_url(), &client_id, "platforms-secret").await;
    let http = reqwest::Client::new();
    let token = SecretString::from(
        answer["access_token"]
            .as_str()
            .expect("a Keycloak access token")
            .to_string(),
    );

    // Without trusting Keycloak the simulator refuses the token; trusting it, every platform accepts it.
    let untrusting = simulator::start(Config::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let a = platform::open(
        Some(PlatformApi::RunaiTrainingsV1),
        Endpoint::new(http.clone(), untrusting.base_url("runai")),
    );
    let runai = spec(
        json!({"runai": {"projectId": "5", "clusterId": "c", "image": "busybox", "environment": [{"name": "SIM_RUN_SECONDS", "value": "0.5"}]}}),
    );
    assert!(matches!(
        a.create(&token, runai.job(), "kc-1").await,
        Err(RemoteError::Auth { .. })
    ));

    let config = Config {
        trust_issuers: vec![kc.realm_url()],
        ..Default::default()
    };
    let sim = simulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let cases = [
        (PlatformApi::RunaiTrainingsV1, "runai", runai.clone(), None),
        (
            PlatformApi::OpenpaiV2,
            "openpai",
            spec(
                json!({"openpai": {"image": "u", "commands": ["x"], "parameters": {"SIM_RUN_SECONDS": "0.5"}}}),
            ),
            Some(client_id.clone()),
        ),
        (
            PlatformApi::DaiExecutions,
            "dai",
            spec(json!({"dai": {"modelId": "m", "extra": {"SIM_RUN_SECONDS": 0.5}}})),
            None,
        ),
    ];
    for (api, prefix, job, username) in cases {
        let a = platform::open(Some(api), Endpoint::new(http.clone(), sim.base_url(prefix)));
        let a = username.as_deref().and_then(|u| a.for_user(u)).unwrap_or(a);
        let v = a
            .create(&token, job.job(), "kc-job")
            .await
            .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        wait_for(
            &format!("{prefix} job to succeed"),
            Duration::from_secs(20),
            || async {
                a.get(&token, job.job(), &v.id)
                    .await
                    .ok()
                    .filter(|v| v.phase == Phase::Succeeded)
            },
        )
        .await;
    }
    let forged = SecretString::from(format!("{}x", secrecy::ExposeSecret::expose_secret(&token)));
    let a = platform::open(
        Some(PlatformApi::DaiExecutions),
        Endpoint::new(http, sim.base_url("dai")),
    );
    assert!(
        matches!(
            a.get(&forged, runai.job(), "any").await,
            Err(RemoteError::Auth { .. })
        ),
        "a tampered signature is refused"
    );
}
