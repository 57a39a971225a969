//! Token endpoints: the Keycloak-shaped realm endpoint (Run:ai 2022 docs, DAI), Run:ai's control-plane
//! `POST /api/v1/token` (JSON), and OpenPAI's `POST /api/v1/token` login (form or JSON).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::common::{Shared, count_token, error, fault, mint};

/// Reads a form or JSON body into string fields.
pub fn fields(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if is_json {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        v.as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                Some((
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| Some(v.to_string()))?,
                ))
            })
            .collect()
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    }
}

fn platform_default_ttl(platform: &str) -> Duration {
    match platform {
        "dai" => Duration::from_secs(300),
        "openpai" => Duration::from_secs(7 * 24 * 3600),
        _ => Duration::from_secs(3600),
    }
}

fn keycloak_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /{runai|dai}/auth/realms/{realm}/protocol/openid-connect/token`
pub async fn realm_token(
    State(state): State<Shared>,
    Path((platform, _realm)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = fault(&state, &platform, "token").await {
        return r;
    }
    let f = fields(&headers, &body);
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return keycloak_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant_type",
        );
    }
    // client_secret_basic or client_secret_post
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => match (f.get("client_id"), f.get("client_secret")) {
            (Some(i), Some(s)) => (i.clone(), s.clone()),
            _ => {
                return keycloak_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing client credentials",
                );
            }
        },
    };
    if state.config.clients.get(&id) != Some(&secret) {
        return keycloak_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Invalid client or Invalid client credentials",
        );
    }
    let (access, ttl) = mint(
        &state,
        &platform,
        &id,
        "Bearer",
        platform_default_ttl(&platform),
    );
    let (id_token, _) = mint(
        &state,
        &platform,
        &id,
        "ID",
        platform_default_ttl(&platform),
    );
    count_token(&state, &id);
    let mut out = json!({
        "access_token": access, "expires_in": ttl.as_secs(), "refresh_expires_in": 0,
        "token_type": "Bearer", "not-before-policy": 0, "scope": f.get("scope").cloned().unwrap_or_default(),
    });
    if f.get("scope")
        .is_some_and(|s| s.split(' ').any(|x| x == "openid"))
    {
        out["id_token"] = Value::String(id_token);
    }
    axum::Json(out).into_response()
}

/// `POST /runai/api/v1/token` — `{grantType, clientId|clientID, clientSecret}` (or the deprecated app_token form).
pub async fn runai_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = fault(&state, "runai", "token").await {
        return r;
    }
    let f = fields(&headers, &body);
    let pick = |keys: &[&str]| keys.iter().find_map(|k| f.get(*k).cloned());
    let id = pick(&["clientId", "clientID", "AppId", "appID", "appId"]);
    let secret = pick(&["clientSecret", "AppSecret", "appSecret"]);
    let (Some(id), Some(secret)) = (id, secret) else {
        return error(
            "runai",
            StatusCode::BAD_REQUEST,
            "",
            "clientId and clientSecret are required",
        );
    };
    if state.config.clients.get(&id) != Some(&secret) {
        return error(
            "runai",
            StatusCode::UNAUTHORIZED,
            "",
            "Invalid client credentials",
        );
    }
    let (access, ttl) = mint(
        &state,
        "runai",
        &id,
        "Bearer",
        platform_default_ttl("runai"),
    );
    let (id_token, _) = mint(&state, "runai", &id, "ID", platform_default_ttl("runai"));
    count_token(&state, &id);
    axum::Json(json!({"accessToken": access, "idToken": id_token, "refreshToken": "", "expiresIn": ttl.as_secs()})).into_response()
}

/// `POST /openpai/api/v1/token` — `{username, password, expiration?}`.
pub async fn openpai_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = fault(&state, "openpai", "token").await {
        return r;
    }
    let f = fields(&headers, &body);
    let (Some(user), Some(password)) = (f.get("username"), f.get("password")) else {
        return error(
            "openpai",
            StatusCode::BAD_REQUEST,
            "InvalidParametersError",
            "username and password are required",
        );
    };
    match state.config.users.get(user) {
        None => error(
            "openpai",
            StatusCode::BAD_REQUEST,
            "NoUserError",
            &format!("User {user} is not found."),
        ),
        Some(p) if p != password => error(
            "openpai",
            StatusCode::BAD_REQUEST,
            "IncorrectPasswordError",
            "Password is incorrect.",
        ),
        Some(_) => {
            let (token, _) = mint(
                &state,
                "openpai",
                user,
                "Bearer",
                platform_default_ttl("openpai"),
            );
            count_token(&state, user);
            axum::Json(json!({"user": user, "token": token, "admin": false, "hasGitHubPAT": false}))
                .into_response()
        }
    }
}
