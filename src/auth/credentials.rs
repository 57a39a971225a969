//! Credentials read from the referenced Secret: only the keys the auth method needs.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use secrecy::SecretString;

use super::AuthError;
use crate::crd::ApiClientSpec;

#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub token: Option<SecretString>,
    /// From a DAI credentials CSV.
    pub token_url: Option<String>,
}

impl Credentials {
    /// The secret values (not the ids or user names), for the sanitizer to remove from messages.
    pub fn secret_values(&self) -> Vec<SecretString> {
        [&self.client_secret, &self.password, &self.token]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Pure: the credentials `spec` asks for, from the Secret's data.
pub fn read(spec: &ApiClientSpec, secret: &Secret) -> Result<Credentials, AuthError> {
    let r = &spec.credentials_secret_ref;
    let empty = BTreeMap::new();
    let data: &BTreeMap<String, ByteString> = secret.data.as_ref().unwrap_or(&empty);
    let get = |key: &str| -> Result<String, AuthError> {
        let v = data.get(key).ok_or_else(|| AuthError::SecretKeyMissing {
            secret: r.name.clone(),
            key: key.to_string(),
        })?;
        String::from_utf8(v.0.clone())
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|_| {
                AuthError::InvalidSpec(format!("Secret {} key {key} is not UTF-8", r.name))
            })
    };
    let mut c = Credentials::default();
    let auth = &spec.auth;
    if auth.oauth2.is_some() || auth.runai_token.is_some() {
        if let Some(csv_key) = &r.csv_key {
            let row = parse_csv(&get(csv_key)?).map_err(|m| {
                AuthError::InvalidSpec(format!("Secret {} key {csv_key}: {m}", r.name))
            })?;
            c.client_id = Some(row.client_id);
            c.client_secret = Some(row.client_secret.into());
            c.token_url = row.token_url;
        } else {
            c.client_id = Some(get(&r.client_id_key)?);
            c.client_secret = Some(get(&r.client_secret_key)?.into());
        }
    } else if auth.openpai_login.is_some() {
        c.username = Some(get(&r.username_key)?);
        c.password = Some(get(&r.password_key)?.into());
    } else if auth.bearer_token.is_some() {
        c.token = Some(get(&r.token_key)?.into());
        c.username = data
            .get(&r.username_key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok());
    }
    Ok(c)
}

pub struct CsvRow {
    pub client_id: String,
    pub client_secret: String,
    pub token_url: Option<String>,
}

/// A DAI credentials CSV: a header row naming client id, client secret and (optionally) token URL in any
/// spelling (`client_id`, `Client ID`, `clientId`, `token-url`, …), then one row of values.
pub fn parse_csv(text: &str) -> Result<CsvRow, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let norm = |h: &str| {
        h.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let headers: Vec<String> = reader
        .headers()
        .map_err(|_| "not a CSV with a header row".to_string())?
        .iter()
        .map(norm)
        .collect();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let id = col(&["clientid", "id"]).ok_or("no client_id column")?;
    let secret = col(&["clientsecret", "secret"]).ok_or("no client_secret column")?;
    let url = col(&["tokenurl", "tokenendpoint", "url"]);
    let row = reader
        .records()
        .next()
        .ok_or("no data row")?
        .map_err(|_| "unreadable data row".to_string())?;
    let field = |i: usize| row.get(i).map(str::to_string).filter(|s| !s.is_empty());
    Ok(CsvRow {
        client_id: field(id).ok_or("empty client_id")?,
        client_secret: field(secret).ok_or("empty client_secret")?,
        token_url: url.and_then(field),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn spec(auth: serde_json::Value, secret_ref: serde_json::Value) -> ApiClientSpec {
        serde_json::from_value(serde_json::json!({"platform": "dai", "baseUrl": "https://x", "auth": auth, "credentialsSecretRef": secret_ref})).unwrap()
    }

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn reads_only_what_the_method_needs() {
        let s = spec(
            serde_json::json!({"oauth2": {"tokenUrl": "https://x/t"}}),
            serde_json::json!({"name": "c"}),
        );
        let c = read(
            &s,
            &secret(&[("client_id", "id"), ("client_secret", "sec\n")]),
        )
        .unwrap();
        assert_eq!(c.client_id.as_deref(), Some("id"));
        assert_eq!(c.client_secret.unwrap().expose_secret(), "sec");
        let err = read(&s, &secret(&[("client_id", "id")])).unwrap_err();
        assert_eq!(
            err,
            AuthError::SecretKeyMissing {
                secret: "c".into(),
                key: "client_secret".into()
            }
        );
        let login = spec(
            serde_json::json!({"openpaiLogin": {}}),
            serde_json::json!({"name": "c", "usernameKey": "u"}),
        );
        let c = read(&login, &secret(&[("u", "alice"), ("password", "pw")])).unwrap();
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert!(c.client_id.is_none());
    }

    #[test]
    fn dai_csv_in_several_spellings() {
        for text in [
            "client_id,client_secret,token_url\nid1,sec1,https://dai/auth/realms/eggplant/protocol/openid-connect/token\n",
            "Client ID, Client Secret, Token URL\n id1 , sec1 , https://dai/auth/realms/eggplant/protocol/openid-connect/token",
        ] {
            let row = parse_csv(text).unwrap();
            assert_eq!(
                (row.client_id.as_str(), row.client_secret.as_str()),
                ("id1", "sec1")
            );
            assert!(row.token_url.unwrap().ends_with("/token"));
        }
        assert!(parse_csv("a,b\n1,2").is_err());
        assert!(parse_csv("client_id,client_secret\n").is_err());
        let s = spec(
            serde_json::json!({"oauth2": {}}),
            serde_json::json!({"name": "c", "csvKey": "creds.csv"}),
        );
        let c = read(
            &s,
            &secret(&[(
                "creds.csv",
                "client_id,client_secret,token_url\na,b,https://t/token",
            )]),
        )
        .unwrap();
        assert_eq!(c.token_url.as_deref(), Some("https://t/token"));
        // The secret from a CSV never shows in Debug output.
        assert!(!format!("{c:?}").contains("\"b\""));
    }
}
