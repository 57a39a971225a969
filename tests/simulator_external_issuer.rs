//! `--trust-issuer`: RS256 tokens of an external OIDC issuer are accepted besides our own. The
//! issuer here is a tiny in-test server with a discovery document and a JWKS (as Keycloak serves).

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn sign(key: &KeyPair, kid: &str, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT", "kid": kid})
            .to_string()
            .as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", b64(&sig))
}

/// n and e from a PKCS#1 `RSAPublicKey` (DER `SEQUENCE { INTEGER n, INTEGER e }`).
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    // Returns (content, rest) of one DER element.
    fn element(b: &[u8]) -> (&[u8], &[u8]) {
        let (len, hdr) = match b[1] {
            l if l < 0x80 => (l as usize, 2),
            l => {
                let n = (l & 0x7f) as usize;
                (
                    b[2..2 + n].iter().fold(0usize, |a, x| a << 8 | *x as usize),
                    2 + n,
                )
            }
        };
        (&b[hdr..hdr + len], &b[hdr + len..])
    }
    let (seq, _) = element(der);
    let (n, rest) = element(seq);
    let (e, _) = element(rest);
    let strip = |x: &[u8]| {
        x.iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    (strip(n), strip(e))
}

/// Serves discovery + JWKS for `key` under kid `k1`; returns the issuer URL.
async fn issuer(key: &KeyPair) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/realms/test", listener.local_addr().unwrap());
    let (n, e) = rsa_components(key.public_key().as_ref());
    let jwks = json!({"keys": [{"kid": "k1", "kty": "RSA", "alg": "RS256", "use": "sig", "n": b64(&n), "e": b64(&e)}]});
    let discovery =
        json!({"issuer": base, "jwks_uri": format!("{base}/protocol/openid-connect/certs")});
    let app = Router::new()
        .route(
            "/realms/test/.well-known/openid-configuration",
            get(move || async move { Json(discovery) }),
        )
        .route(
            "/realms/test/protocol/openid-connect/certs",
            get(move || async move { Json(jwks) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn accepts_rs256_tokens_of_a_trusted_issuer_only() {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let iss = issuer(&key).await;
    let iss_for_sim = iss.clone();
    let sim = sim_with(move |c| c.trust_issuers = vec![iss_for_sim]).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |iss: &str, exp: u64| json!({"iss": iss, "azp": "jobrelay", "sub": "svc", "exp": exp, "iat": now});
    let status = |token: String| {
        let url = format!("{}/api/v1/workloads", sim.base_url("runai"));
        async move {
            http()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        status(sign(&key, "k1", &claims(&iss, now + 300))).await,
        200
    );
    assert_eq!(
        status(sign(&key, "k1", &claims(&iss, now - 1))).await,
        401,
        "expired"
    );
    assert_eq!(
        status(sign(&other, "k1", &claims(&iss, now + 300))).await,
        401,
        "wrong key"
    );
    assert_eq!(
        status(sign(&key, "k1", &claims("http://elsewhere", now + 300))).await,
        401,
        "untrusted issuer"
    );
    assert_eq!(
        status(sign(&key, "k2", &claims(&iss, now + 300))).await,
        401,
        "unknown kid"
    );
    // Our own tokens keep working next to external ones.
    use secrecy::ExposeSecret;
    assert_eq!(
        status(runai_token(&sim).await.expose_secret().to_string()).await,
        200
    );
    sim.shutdown().await;
}
