//! One token source per auth method: OAuth2 client_credentials (token URL, OIDC discovery, DAI login URL
//! or credentials CSV), Run:ai's control-plane token, OpenPAI login, a static token.

use std::time::Duration;

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::credentials::Credentials;
use super::{AuthError, Token, jwt_claims, jwt_expiry};
use crate::crd::{ApiClientSpec, ClientAuthMethod, TokenField};
use crate::transport::{egress, message_of};

/// Assumed lifetime when a token response says nothing about it (and the token is not a JWT with `exp`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Pure: the DAI token URL from its login page URL: `…/protocol/openid-connect/auth?…` → `…/token`.
pub fn token_url_from_login(login: &str) -> Result<String, AuthError> {
    let no_query = login
        .split(['?', '#'])
        .next()
        .unwrap_or(login)
        .trim_end_matches('/');
    match no_query.rfind("/auth") {
        Some(i) if no_query[i..].starts_with("/auth") && !no_query[i + 5..].contains('/') => {
            Ok(format!("{}/token", &no_query[..i]))
        }
        _ => Err(AuthError::InvalidSpec(
            "spec.auth.oauth2.loginUrl does not end in /auth".into(),
        )),
    }
}

/// Obtains a token for `spec` with `creds`.
pub async fn fetch(
    http: &reqwest::Client,
    spec: &ApiClientSpec,
    creds: &Credentials,
) -> Result<Token, AuthError> {
    let auth = &spec.auth;
    if let Some(o) = &auth.oauth2 {
        let url = match (&o.token_url, &o.issuer_url, &o.login_url, &creds.token_url) {
            (Some(u), ..) => u.clone(),
            (_, Some(issuer), ..) => discover(http, issuer).await?,
            (_, _, Some(login), _) => token_url_from_login(login)?,
            (_, _, _, Some(csv)) => csv.clone(),
            _ => return Err(AuthError::InvalidSpec("no token endpoint".into())),
        };
        check_scheme(spec, &url)?;
        // Discovery documents and credentials CSVs name token URLs too.
        super::egress::check_url("token URL", &url)?;
        let (id, secret) = client_pair(creds)?;
        let mut form: Vec<(String, String)> =
            vec![("grant_type".into(), "client_credentials".into())];
        if !o.scopes.is_empty() {
            form.push(("scope".into(), o.scopes.join(" ")));
        }
        if let Some(a) = &o.audience {
            form.push(("audience".into(), a.clone()));
        }
        form.extend(o.extra_params.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut req = http.post(&url);
        match o.client_auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                req = req.basic_auth(id, Some(secret.expose_secret()))
            }
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id".into(), id.to_string()));
                form.push(("client_secret".into(), secret.expose_secret().to_string()));
            }
        }
        let body = post(req.form(&form)).await?;
        let field = match o.token_field {
            TokenField::AccessToken => "access_token",
            TokenField::IdToken => "id_token",
        };
        return token_from(&body, field, "expires_in");
    }
    if auth.runai_token.is_some() {
        let url = format!("{}/api/v1/token", spec.base_url.trim_end_matches('/'));
        let (id, secret) = client_pair(creds)?;
        let body = serde_json::json!({"grantType": "client_credentials", "clientId": id, "clientSecret": secret.expose_secret()});
        let body = post(http.post(url).json(&body)).await?;
        return token_from(&body, "accessToken", "expiresIn");
    }
    if let Some(login) = &auth.openpai_login {
        let url = format!("{}/api/v1/token", spec.base_url.trim_end_matches('/'));
        let (Some(user), Some(password)) = (&creds.username, &creds.password) else {
            return Err(AuthError::InvalidSpec(
                "username and password are required".into(),
            ));
        };
        let mut form = vec![
            ("username", user.clone()),
            ("password", password.expose_secret().to_string()),
        ];
        if let Some(e) = login.expiration_seconds {
            form.push(("expiration", e.to_string()));
        }
        let body = post(http.post(url).form(&form)).await?;
        let mut token = token_from(&body, "token", "expiresIn")?;
        token.username = body
            .get("user")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(Some(user.clone()));
        return Ok(token);
    }
    if auth.bearer_token.is_some() {
        let bearer = creds
            .token
            .clone()
            .ok_or_else(|| AuthError::InvalidSpec("no token".into()))?;
        let username = creds.username.clone().or_else(|| {
            jwt_claims(bearer.expose_secret()).and_then(|c| {
                c.get("username")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        });
        return Ok(Token {
            expires_at: jwt_expiry(bearer.expose_secret()),
            bearer,
            obtained_at: Timestamp::now(),
            note: None,
            username,
        });
    }
    Err(AuthError::InvalidSpec("no auth method set".into()))
}

fn check_scheme(spec: &ApiClientSpec, url: &str) -> Result<(), AuthError> {
    if !spec.allow_insecure_http && !url.starts_with("https://") {
        return Err(AuthError::InvalidSpec(
            "the token URL must use https unless spec.allowInsecureHttp is true".into(),
        ));
    }
    Ok(())
}

fn client_pair(creds: &Credentials) -> Result<(&str, &SecretString), AuthError> {
    match (&creds.client_id, &creds.client_secret) {
        (Some(i), Some(s)) => Ok((i, s)),
        _ => Err(AuthError::InvalidSpec(
            "client id and secret are required".into(),
        )),
    }
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Result<String, AuthError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let resp = http.get(url).send().await.map_err(|e| {
        let m = transport(&e);
        if m.starts_with("TLS") {
            AuthError::Tls(m)
        } else {
            AuthError::Discovery(m)
        }
    })?;
    if !resp.status().is_success() {
        return Err(AuthError::Discovery(format!(
            "HTTP {}",
            resp.status().as_u16()
        )));
    }
    let doc: Value = resp
        .json()
        .await
        .map_err(|_| AuthError::Discovery("not a JSON document".into()))?;
    doc.get("token_endpoint")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| AuthError::Discovery("no token_endpoint".into()))
}

fn transport(e: &reqwest::Error) -> String {
    // The causes only: the URL (in reqwest's own message) must not decide the diagnosis.
    let mut chain = String::new();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        chain.push_str(&format!("{c} {c:?}").to_ascii_lowercase());
        chain.push('\n');
        cause = c.source();
    }
    if let Some(denial) = egress::denial(e) {
        return denial;
    }
    if chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake") {
        return "TLS handshake failed (certificate not trusted?)".into();
    }
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_redirect() {
        "redirects are not followed".into()
    } else {
        "request failed".into()
    }
}

/// POSTs and classifies the answer; returns the JSON body of a 2xx.
async fn post(req: reqwest::RequestBuilder) -> Result<Value, AuthError> {
    let resp = req.send().await.map_err(|e| {
        let m = transport(&e);
        if egress::refused(&e) {
            AuthError::EgressDenied(m)
        } else if m.starts_with("TLS") {
            AuthError::Tls(m)
        } else {
            AuthError::Unreachable(m)
        }
    })?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| AuthError::Unreachable(transport(&e)))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|_| AuthError::InvalidResponse("not JSON".into()));
    }
    let msg = format!("HTTP {}: {}", status.as_u16(), message_of(&bytes));
    Err(match status.as_u16() {
        // DAI answers 403 when its concurrent licences are used up: transient.
        403 if msg.to_ascii_lowercase().contains("licen") => AuthError::Unreachable(msg),
        400 | 401 | 403 => AuthError::InvalidCredentials(msg),
        300..=399 => AuthError::Unreachable(format!(
            "HTTP {}: redirects are not followed",
            status.as_u16()
        )),
        _ => AuthError::Unreachable(msg),
    })
}

/// Pure but for the clock: the token in a token response `body` (`field`, lifetime from
/// `expires_field` or the JWT's `exp`). Public for the property tests.
pub fn token_from(body: &Value, field: &str, expires_field: &str) -> Result<Token, AuthError> {
    let bearer = body
        .get(field)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::InvalidResponse(format!("no {field} in the response")))?;
    let now = Timestamp::now();
    let given = body
        .get(expires_field)
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|s| *s > 0);
    let (expires_at, note) = match (given, jwt_expiry(bearer)) {
        (Some(s), _) => (
            now.checked_add(jiff::SignedDuration::from_secs(s)).ok(),
            None,
        ),
        (None, Some(exp)) => (Some(exp), None),
        (None, None) => (
            now.checked_add(jiff::SignedDuration::try_from(DEFAULT_LIFETIME).unwrap_or_default())
                .ok(),
            Some(format!(
                "the token response gave no lifetime; assuming {}s",
                DEFAULT_LIFETIME.as_secs()
            )),
        ),
    };
    Ok(Token {
        bearer: SecretString::from(bearer.to_string()),
        obtained_at: now,
        expires_at,
        note,
        username: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_url_derivation() {
        let base = "https://dai.example.com:8000/auth/realms/eggplant/protocol/openid-connect";
        assert_eq!(
            token_url_from_login(&format!("{base}/auth?client_id=x&response_type=code")).unwrap(),
            format!("{base}/token")
        );
        assert_eq!(
            token_url_from_login(&format!("{base}/auth")).unwrap(),
            format!("{base}/token")
        );
        assert!(token_url_from_login("https://dai.example.com/login").is_err());
    }

    #[test]
    fn token_lifetimes() {
        let t = token_from(
            &serde_json::json!({"access_token": "abc", "expires_in": 300}),
            "access_token",
            "expires_in",
        )
        .unwrap();
        let life = t.expires_at.unwrap().as_second() - t.obtained_at.as_second();
        assert!((299..=301).contains(&life));
        let t = token_from(
            &serde_json::json!({"access_token": "abc"}),
            "access_token",
            "expires_in",
        )
        .unwrap();
        assert!(t.note.is_some() && t.expires_at.is_some());
        assert!(matches!(
            token_from(
                &serde_json::json!({"id_token": "x"}),
                "access_token",
                "expires_in"
            ),
            Err(AuthError::InvalidResponse(_))
        ));
    }
}
