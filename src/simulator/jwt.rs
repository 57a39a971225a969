//! HS256 JWTs for the simulator's tokens: real clients decode `exp`, so tokens are real JWTs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs `claims` with `key`.
pub fn sign(key: &[u8], claims: &serde_json::Value) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", B64.encode(mac.finalize().into_bytes()))
}

/// Verifies signature and `exp` (seconds) against `now_s`; returns the claims.
pub fn verify(key: &[u8], token: &str, now_s: i64) -> Result<serde_json::Value, &'static str> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed token");
    };
    let sig = B64.decode(s).map_err(|_| "malformed token")?;
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(format!("{h}.{p}").as_bytes());
    mac.verify_slice(&sig).map_err(|_| "bad signature")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(p).map_err(|_| "malformed token")?)
            .map_err(|_| "malformed token")?;
    match claims.get("exp").and_then(|e| e.as_i64()) {
        Some(exp) if exp > now_s => Ok(claims),
        Some(_) => Err("token expired"),
        None => Err("token has no exp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_expiry_and_tampering() {
        let t = sign(b"k", &json!({"sub": "c", "exp": 100}));
        assert_eq!(verify(b"k", &t, 99).unwrap()["sub"], "c");
        assert_eq!(verify(b"k", &t, 100), Err("token expired"));
        assert_eq!(verify(b"other", &t, 1), Err("bad signature"));
        let mut tampered = t.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(verify(b"k", &tampered, 1).is_err());
        assert_eq!(verify(b"k", "a.b", 1), Err("malformed token"));
    }
}
