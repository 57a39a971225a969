//! The simulator's token endpoints against /work/shared/platforms.md: Keycloak realm endpoints,
//! Run:ai and OpenPAI token calls, their error shapes, 401 shapes and token expiry.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

async fn post_form(url: String, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http().post(url).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn keycloak_token_endpoints() {
    let sim = sim().await;
    for p in ["runai", "dai"] {
        let url = format!(
            "{}/auth/realms/any-realm/protocol/openid-connect/token",
            sim.base_url(p)
        );
        let (s, v) = post_form(
            url.clone(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT.0),
                ("client_secret", CLIENT.1),
                ("scope", "openid"),
                ("response_type", "id_token"),
            ],
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], if p == "dai" { 300 } else { 3600 });
        for t in [&v["access_token"], &v["id_token"]] {
            let claims = t.as_str().unwrap().split('.').nth(1).unwrap();
            let claims: Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(claims)
                    .unwrap(),
            )
            .unwrap();
            assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
        }
        // client_secret_basic.
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1));
        let r = http()
            .post(url.clone())
            .header("authorization", format!("Basic {basic}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (s, v) = post_form(
            url.clone(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT.0),
                ("client_secret", "wrong"),
            ],
        )
        .await;
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
        assert!(v["error_description"].is_string());
        let (s, v) = post_form(
            url,
            &[
                ("grant_type", "password"),
                ("client_id", CLIENT.0),
                ("client_secret", CLIENT.1),
            ],
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("unsupported_grant_type"))
        );
    }
    assert_eq!(
        counters(&sim).await["tokens"],
        json!({"dai/test-client": 2, "runai/test-client": 2})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn runai_and_openpai_token_endpoints() {
    let sim = sim().await;
    let url = format!("{}/api/v1/token", sim.base_url("runai"));
    for body in [
        json!({"grantType": "client_credentials", "clientId": CLIENT.0, "clientSecret": CLIENT.1}),
        json!({"grantType": "client_credentials", "clientID": CLIENT.0, "clientSecret": CLIENT.1}),
        json!({"grantType": "app_token", "AppId": CLIENT.0, "AppSecret": CLIENT.1}),
    ] {
        let v: Value = http()
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            v["accessToken"].is_string() && v["idToken"].is_string() && v["expiresIn"] == 3600,
            "{v}"
        );
    }
    let r = http()
        .post(&url)
        .json(&json!({"clientId": CLIENT.0, "clientSecret": "no"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 400);

    let url = format!("{}/api/v1/token", sim.base_url("openpai"));
    let v: Value = http()
        .post(&url)
        .json(&json!({"username": USER.0, "password": USER.1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["user"].as_str(), v["admin"].as_bool()),
        (Some("alice"), Some(false))
    );
    let (s, v) = post_form(
        url.clone(),
        &[("username", "bob"), ("password", "whatever")],
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("NoUserError")));
    let (s, v) = post_form(url, &[("username", USER.0), ("password", "wrong-password")]).await;
    assert_eq!(
        (s, v["code"].as_str(), v["message"].as_str()),
        (
            400,
            Some("IncorrectPasswordError"),
            Some("Password is incorrect.")
        )
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unauthorized_shapes_and_expiry() {
    let sim = sim_with(|c| c.token_ttl = Some(2)).await;
    let runai = runai_token(&sim).await;
    let get = |url: String, token: Option<String>| async move {
        let mut r = http().get(url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let (s, v) = get(
        format!("{}/api/v2/jobs/alice~x", sim.base_url("openpai")),
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str(), v["message"].as_str()),
        (
            401,
            Some("UnauthorizedUserError"),
            Some("Guest is not allowed to do this operation.")
        )
    );
    let (s, v) = get(
        format!("{}/api/v2/jobs/alice~x", sim.base_url("openpai")),
        Some("bad".into()),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (401, Some("Your token is invalid."))
    );
    let (s, v) = get(
        format!(
            "{}/execution_service/api/v1/executions/x",
            sim.base_url("dai")
        ),
        Some("bad".into()),
    )
    .await;
    assert_eq!((s, v["detail"].is_string()), (401, true));
    // A Run:ai token is not a DAI token (audience).
    use secrecy::ExposeSecret;
    let (s, _) = get(
        format!(
            "{}/execution_service/api/v1/executions/x",
            sim.base_url("dai")
        ),
        Some(runai.expose_secret().to_string()),
    )
    .await;
    assert_eq!(s, 401);
    let url = format!("{}/api/v1/workloads", sim.base_url("runai"));
    assert_eq!(
        get(url.clone(), Some(runai.expose_secret().to_string()))
            .await
            .0,
        200
    );
    // After expiry: 401 in Run:ai's shape.
    let (s, v) = wait_for("token expiry", Duration::from_secs(8), || {
        let (url, t) = (url.clone(), runai.expose_secret().to_string());
        async move { Some(get(url, Some(t)).await).filter(|(s, _)| *s == 401) }
    })
    .await;
    assert_eq!((s, v["code"].as_u64()), (401, Some(401)));
    sim.shutdown().await;
}

#[tokio::test]
async fn debug_output_and_errors_hold_no_secrets() {
    let config = jobrelay::simulator::SimConfig::for_tests();
    let dbg = format!("{config:?}");
    assert!(
        dbg.contains("test-client") && !dbg.contains(CLIENT.1) && !dbg.contains(USER.1),
        "{dbg}"
    );
    let sim = sim().await;
    let token = runai_token(&sim).await;
    assert!(
        !format!("{token:?}").contains("eyJ"),
        "SecretString redacts"
    );
    let a = adapter(&sim, jobrelay::crd::Platform::Runai, None);
    assert!(!format!("{a:?}").contains("eyJ"));
    // A refused token never comes back in the error message.
    use secrecy::ExposeSecret;
    let wrong = secrecy::SecretString::from(format!("{}x", token.expose_secret()));
    let j: jobrelay::crd::RunaiJob =
        serde_json::from_value(json!({"projectId": "p", "clusterId": "c", "image": "i"})).unwrap();
    let err = a
        .get(&wrong, "id", jobrelay::platform::JobBody::Runai(&j))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        jobrelay::platform::PlatformError::Auth { .. }
    ));
    assert!(!err.to_string().contains(token.expose_secret()), "{err}");
    sim.shutdown().await;
}
