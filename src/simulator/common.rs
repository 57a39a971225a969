//! What the three simulated platforms share: error shapes, bearer checks, token minting and faults.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::jwt;
use super::state::{FaultKind, State, now_ms};

pub type Shared = Arc<State>;

/// An error in the platform's own shape (platforms.md: Run:ai `{code,message}`, OpenPAI
/// `{code:"XxxError",message}`, DAI FastAPI `{detail}`).
pub fn error(platform: &str, status: StatusCode, code: &str, message: &str) -> Response {
    let body = match platform {
        "runai" => json!({"code": status.as_u16(), "message": message}),
        "openpai" => json!({"code": code, "message": message}),
        _ => json!({"detail": message}),
    };
    (status, axum::Json(body)).into_response()
}

pub fn unauthorized(platform: &str, message: &str) -> Response {
    match platform {
        "openpai" => error(
            platform,
            StatusCode::UNAUTHORIZED,
            "UnauthorizedUserError",
            message,
        ),
        "dai" => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Not Authorized", "description": message})),
        )
            .into_response(),
        _ => error(platform, StatusCode::UNAUTHORIZED, "Unauthorized", message),
    }
}

#[allow(clippy::result_large_err)] // the error is the finished HTTP response, returned as is
/// Checks `Authorization: Bearer <jwt>` (case-insensitive scheme); returns the claims.
pub fn bearer(
    state: &State,
    platform: &str,
    headers: &HeaderMap,
) -> Result<serde_json::Value, Response> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => {
            return Err(unauthorized(
                platform,
                "Guest is not allowed to do this operation.",
            ));
        }
    };
    let claims = jwt::verify(&state.key, token, now_ms() / 1000).map_err(|why| {
        unauthorized(
            platform,
            if platform == "openpai" {
                "Your token is invalid."
            } else {
                why
            },
        )
    })?;
    if claims.get("plt").and_then(|p| p.as_str()) != Some(platform) {
        return Err(unauthorized(platform, "Issuer is not familiar."));
    }
    Ok(claims)
}

/// The preamble of every platform call: the bearer check, then any injected fault for `op`.
#[allow(clippy::result_large_err)] // the error is the finished HTTP response, returned as is
pub async fn admit(
    state: &Shared,
    platform: &str,
    op: &str,
    headers: &HeaderMap,
) -> Result<serde_json::Value, Response> {
    let claims = match bearer(state, platform, headers) {
        Ok(c) => c,
        Err(refused) => external(state, platform, headers).await.ok_or(refused)?,
    };
    match fault(state, platform, op).await {
        Some(r) => Err(r),
        None => Ok(claims),
    }
}

/// A token of a trusted external issuer (`--trust-issuer`), as claims naming its client as subject.
async fn external(
    state: &Shared,
    platform: &str,
    headers: &HeaderMap,
) -> Option<serde_json::Value> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = raw.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let subject = state
        .trusted
        .verify(token.trim(), (now_ms() / 1000) as f64)
        .await?;
    Some(json!({"sub": subject, "plt": platform, "external": true}))
}

/// Mints a token for `subject` on `platform`; returns (token, lifetime).
pub fn mint(
    state: &State,
    platform: &str,
    subject: &str,
    kind: &str,
    default_ttl: Duration,
) -> (String, Duration) {
    let ttl = state.token_ttl(default_ttl);
    let now = now_ms() / 1000;
    let claims = json!({
        "sub": subject, "plt": platform, "typ": kind, "iat": now,
        "exp": now + ttl.as_secs() as i64,
        "username": subject,
        "jti": rand::random::<u64>(),
    });
    (jwt::sign(&state.key, &claims), ttl)
}

pub fn count_token(state: &State, who: &str) {
    let mut inner = state.lock();
    *inner
        .counters
        .token_requests
        .entry(who.to_string())
        .or_default() += 1;
    state.persist(&inner);
}

/// Applies an injected fault for (platform, op): `Some(response)` short-circuits the request; latency
/// faults delay and let it through. Commit-then-drop is the create handlers' business ([`drop_connection`]).
pub async fn fault(state: &Shared, platform: &str, op: &str) -> Option<Response> {
    let f = state.take_fault(platform, op)?;
    let retry_after = || HeaderValue::from_str(&f.retry_after.to_string()).unwrap();
    match f.kind {
        FaultKind::Latency => {
            tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
            None
        }
        FaultKind::Unauthorized => Some(unauthorized(platform, "Your token is invalid.")),
        FaultKind::TooManyRequests => {
            let mut r = if platform == "openpai" {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests, please try again later.",
                )
                    .into_response()
            } else {
                error(
                    platform,
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "Too many requests",
                )
            };
            r.headers_mut().insert(header::RETRY_AFTER, retry_after());
            Some(r)
        }
        FaultKind::ServerError => Some(error(
            platform,
            StatusCode::INTERNAL_SERVER_ERROR,
            "UnknownError",
            "Internal error",
        )),
        FaultKind::Unavailable => {
            let mut r = error(
                platform,
                StatusCode::SERVICE_UNAVAILABLE,
                "UnknownError",
                "Please try again in few minutes.",
            );
            r.headers_mut().insert(header::RETRY_AFTER, retry_after());
            Some(r)
        }
        FaultKind::RouteNotFound => Some(error(
            platform,
            StatusCode::NOT_FOUND,
            "NoApiError",
            "Not Found",
        )),
        FaultKind::MethodNotAllowed => Some(error(
            platform,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Method Not Allowed",
        )),
        FaultKind::NotImplemented => Some(error(
            platform,
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "Not Implemented",
        )),
        FaultKind::CommitThenDrop
        | FaultKind::CommitThenBadGateway
        | FaultKind::DuplicateAsBadRequest => {
            // Only creates commit (or meet a duplicate); put the fault back for the create it is for.
            state.lock().faults.insert(0, f);
            None
        }
    }
}

/// How the next create of `platform` loses its answer after it is stored, if a fault says so:
/// `Some(answer)` is sent instead of the platform's own ([`drop_connection`] or a 502).
pub fn take_commit_then_drop(state: &State, platform: &str) -> Option<fn() -> Response> {
    if take_create_fault(state, platform, FaultKind::CommitThenDrop) {
        return Some(drop_connection);
    }
    take_create_fault(state, platform, FaultKind::CommitThenBadGateway).then_some(bad_gateway)
}

/// A proxy's 502 in front of a platform that did store the job.
fn bad_gateway() -> Response {
    (StatusCode::BAD_GATEWAY, "Bad Gateway").into_response()
}

/// True (and the fault used once) when a create-time fault of `kind` is set for `platform`.
pub fn take_create_fault(state: &State, platform: &str, kind: FaultKind) -> bool {
    let mut inner = state.lock();
    let Some(idx) = inner.faults.iter().position(|f| {
        f.kind == kind
            && (f.platform == "*" || f.platform == platform)
            && (f.op == "*" || f.op == "create")
    }) else {
        return false;
    };
    if inner.faults[idx].count == 1 {
        inner.faults.remove(idx);
    } else if inner.faults[idx].count > 1 {
        inner.faults[idx].count -= 1;
    }
    true
}

/// No answer at all: a body that fails at once makes hyper abort the connection before it writes the
/// status line (it sends the head together with the first body bytes), so the client sees a closed
/// socket and not one byte — tests/simulator_dropped_answers.rs holds hyper to that.
pub fn drop_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .extension(Dropped)
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Marks an answer that never reached the client (counted as `dropped`, not by its status).
#[derive(Clone, Copy)]
pub struct Dropped;

pub fn iso(ms: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A time as DAI's legacy run API documents it (dai-post-check-run.htm): `2018-05-31 17:00:01.366412+01`
/// — a space, microseconds, an offset in hours only. The simulator answers in UTC+01.
pub fn dai_legacy_time(ms: i64) -> String {
    use k8s_openapi::jiff::{Timestamp, tz};
    let Ok(t) = Timestamp::from_millisecond(ms) else {
        return String::new();
    };
    let offset = tz::Offset::constant(1);
    let local = offset.to_datetime(t);
    format!("{}+01", local.strftime("%Y-%m-%d %H:%M:%S%.6f"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dai_legacy_times_are_in_the_documented_form() {
        let text = super::dai_legacy_time(1527782401366);
        assert_eq!(text, "2018-05-31 17:00:01.366000+01");
        assert_eq!(
            crate::platform::parse_time(&text).map(|t| t.as_millisecond()),
            Some(1527782401366)
        );
    }
}
