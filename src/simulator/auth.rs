//! Tokens: HS256 JWTs signed with the simulator's key (hand-rolled with hmac + sha2 + base64), the
//! platforms' token endpoints, and bearer checks.
//!
//! Token lifetime is `--token-ttl` for every platform, or the platform's usual one: Run:ai 3600 s,
//! DAI 300 s (Keycloak default for DAI API clients), OpenPAI 7 days.

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::shapes::{Shape, error, unauthorized};
use super::state::{Sim, wall_now};

type HmacSha256 = Hmac<Sha256>;

pub const ISSUER: &str = "jobrelay-simulator";

/// Signs `claims` as an HS256 JWT.
pub fn sign(key: &[u8], claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Verifies signature, expiry and audience; returns the claims.
pub fn verify(key: &[u8], token: &str, audience: &str, now: f64) -> Option<Value> {
    let (input, sig) = token.rsplit_once('.')?;
    let (header, payload) = input.split_once('.')?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(input.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(sig).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    (exp > now && claims.get("aud")?.as_str()? == audience).then_some(claims)
}

/// Default token lifetime per platform when `--token-ttl` is not given.
fn ttl(sim: &Sim, platform: &str) -> u64 {
    sim.config.token_ttl.unwrap_or(match platform {
        "dai" => 300,
        "openpai" => 7 * 24 * 3600,
        _ => 3600,
    })
}

/// Issues an access token (and an id token) for `subject` on `platform`.
pub fn issue(sim: &Sim, platform: &str, subject: &str, kind: &str) -> (String, u64) {
    let now = wall_now();
    let ttl = ttl(sim, platform);
    // exp rounds up: a token never lives shorter than the lifetime announced in expires_in.
    let claims = json!({
        "iss": ISSUER, "sub": subject, "aud": platform, "typ": kind,
        "iat": now.floor() as u64, "exp": (now + ttl as f64).ceil() as u64,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let key = sim.lock().signing_key.clone();
    (sign(&key, &claims), ttl)
}

/// The bearer's subject, or the platform's 401. Our own HS256 tokens first, then tokens of the
/// issuers trusted with `--trust-issuer`.
pub async fn check_bearer(
    sim: &Sim,
    headers: &HeaderMap,
    platform: &str,
    shape: Shape,
) -> Result<String, Response> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthorized(shape, true));
    };
    let token = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => return Err(unauthorized(shape, false)),
    };
    let key = sim.lock().signing_key.clone();
    let own = verify(&key, token, platform, wall_now())
        .and_then(|c| c.get("sub").and_then(Value::as_str).map(str::to_string));
    if let Some(subject) = own {
        return Ok(subject);
    }
    match &sim.trusted {
        Some(t) => t
            .verify(token, wall_now())
            .await
            .ok_or_else(|| unauthorized(shape, false)),
        None => Err(unauthorized(shape, false)),
    }
}

fn client_ok(sim: &Sim, id: &str, secret: &str) -> bool {
    sim.config
        .clients
        .iter()
        .any(|(i, s)| i == id && s == secret)
}

/// Body fields from a form or JSON body.
pub fn fields(headers: &HeaderMap, body: &[u8]) -> Value {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if json_body {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let map: serde_json::Map<String, Value> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Value::Object(map)
}

fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| v.get(*n).and_then(Value::as_str))
}

/// HTTP Basic client credentials (client_secret_basic).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Keycloak realm token endpoint (Run:ai 2022, DAI): form client_credentials, post or basic.
pub fn keycloak_token(sim: &Sim, platform: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let f = fields(headers, body);
    let grant = field(&f, &["grant_type"]);
    let creds = basic(headers).or_else(|| {
        Some((
            field(&f, &["client_id"])?.to_string(),
            field(&f, &["client_secret"])?.to_string(),
        ))
    });
    let Some((id, secret)) = creds else {
        return error(
            Shape::Keycloak,
            StatusCode::BAD_REQUEST,
            "Missing parameter: client_id or client_secret",
        );
    };
    if grant != Some("client_credentials") {
        let r = (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}),
            ),
        );
        return r.into_response();
    }
    if !client_ok(sim, &id, &secret) {
        return error(
            Shape::Keycloak,
            StatusCode::UNAUTHORIZED,
            "Invalid client or Invalid client credentials",
        );
    }
    let (access, ttl) = issue(sim, platform, &id, "Bearer");
    let (id_token, _) = issue(sim, platform, &id, "ID");
    sim.lock()
        .counters
        .tokens
        .entry(format!("{platform}/{id}"))
        .and_modify(|n| *n += 1)
        .or_insert(1);
    let body = json!({
        "access_token": access, "id_token": id_token, "expires_in": ttl, "refresh_expires_in": 0,
        "token_type": "Bearer", "not-before-policy": 0, "scope": "openid email profile",
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// Run:ai control-plane `POST /api/v1/token` (JSON; both casings; deprecated app_token too).
pub fn runai_token(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Response {
    let f = fields(headers, body);
    let id = field(&f, &["clientId", "clientID", "AppId", "appID", "appId"]);
    let secret = field(&f, &["clientSecret", "AppSecret", "appSecret"]);
    let (Some(id), Some(secret)) = (id, secret) else {
        return error(
            Shape::Runai,
            StatusCode::BAD_REQUEST,
            "clientId and clientSecret are required",
        );
    };
    if !client_ok(sim, id, secret) {
        return error(
            Shape::Runai,
            StatusCode::BAD_REQUEST,
            "Invalid client credentials",
        );
    }
    let (access, ttl) = issue(sim, "runai", id, "Bearer");
    let (id_token, _) = issue(sim, "runai", id, "ID");
    sim.lock()
        .counters
        .tokens
        .entry(format!("runai/{id}"))
        .and_modify(|n| *n += 1)
        .or_insert(1);
    (StatusCode::OK, Json(json!({"accessToken": access, "idToken": id_token, "refreshToken": "", "expiresIn": ttl}))).into_response()
}

/// OpenPAI `POST /api/v1/token` login (form or JSON).
pub fn openpai_token(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Response {
    let f = fields(headers, body);
    let (Some(user), Some(password)) = (field(&f, &["username"]), field(&f, &["password"])) else {
        return super::shapes::openpai_error(
            StatusCode::BAD_REQUEST,
            "InvalidParametersError",
            "username and password are required",
        );
    };
    let Some((_, want)) = sim.config.users.iter().find(|(u, _)| u == user) else {
        return super::shapes::openpai_error(
            StatusCode::BAD_REQUEST,
            "NoUserError",
            &format!("User {user} is not found."),
        );
    };
    if want != password {
        return super::shapes::openpai_error(
            StatusCode::BAD_REQUEST,
            "IncorrectPasswordError",
            "Password is incorrect.",
        );
    }
    let (token, _) = issue(sim, "openpai", user, "Bearer");
    sim.lock()
        .counters
        .tokens
        .entry(format!("openpai/{user}"))
        .and_modify(|n| *n += 1)
        .or_insert(1);
    (
        StatusCode::OK,
        Json(json!({"user": user, "token": token, "admin": false, "hasGitHubPAT": false})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_roundtrip() {
        let key = b"k".repeat(32);
        let t = sign(&key, &json!({"sub": "a", "aud": "runai", "exp": 100.0}));
        assert_eq!(verify(&key, &t, "runai", 50.0).unwrap()["sub"], "a");
        assert!(verify(&key, &t, "runai", 150.0).is_none(), "expired");
        assert!(verify(&key, &t, "dai", 50.0).is_none(), "audience");
        assert!(verify(b"other", &t, "runai", 50.0).is_none(), "signature");
        let mut tampered = t.clone();
        tampered.replace_range(t.len() - 2.., "AA");
        assert!(verify(&key, &tampered, "runai", 50.0).is_none());
        assert!(verify(&key, "garbage", "runai", 50.0).is_none());
    }
}
