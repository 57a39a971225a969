//! Each platform's error shapes (/work/shared/platforms.md): Run:ai `{code:int,message}`,
//! OpenPAI `{code:"XxxError",message}` (429 as plain text), DAI execution service FastAPI
//! `{detail}`, DAI legacy `{message,description}`, Keycloak `{error,error_description}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The API family answering, which decides the error shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Runai,
    Openpai,
    DaiExecution,
    DaiLegacy,
    Keycloak,
}

/// OpenPAI's error code word for a status.
fn openpai_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "InvalidParametersError",
        401 => "UnauthorizedUserError",
        403 => "ForbiddenUserError",
        404 => "NoJobError",
        409 => "ConflictJobError",
        _ => "UnknownError",
    }
}

/// An error answer in `shape`. OpenPAI callers that need a specific code use [`openpai_error`].
pub fn error(shape: Shape, status: StatusCode, message: &str) -> Response {
    match shape {
        Shape::Runai => (
            status,
            Json(json!({"code": status.as_u16(), "message": message})),
        )
            .into_response(),
        Shape::Openpai if status == StatusCode::TOO_MANY_REQUESTS => {
            (status, "Too many requests, please try again later.").into_response()
        }
        Shape::Openpai => openpai_error(status, openpai_code(status), message),
        Shape::DaiExecution => (status, Json(json!({"detail": message}))).into_response(),
        Shape::DaiLegacy => {
            let m = if status == StatusCode::UNAUTHORIZED {
                "Not Authorized"
            } else {
                status.canonical_reason().unwrap_or("Error")
            };
            (status, Json(json!({"message": m, "description": message}))).into_response()
        }
        Shape::Keycloak => {
            let e = match status.as_u16() {
                401 => "invalid_client",
                400 => "invalid_request",
                _ => "server_error",
            };
            (
                status,
                Json(json!({"error": e, "error_description": message})),
            )
                .into_response()
        }
    }
}

pub fn openpai_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

/// 429 with `Retry-After` in the platform's shape.
pub fn rate_limited(shape: Shape, retry_after: u64) -> Response {
    let mut r = error(
        shape,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests, please try again later.",
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// 401 for a missing, bad or expired token (or an injected one).
pub fn unauthorized(shape: Shape, missing: bool) -> Response {
    let message = match (shape, missing) {
        (Shape::Runai, _) => "Issuer is not familiar.",
        (Shape::Openpai, true) => "Guest is not allowed to do this operation.",
        (Shape::Openpai, false) => "Your token is invalid.",
        (Shape::DaiExecution, _) => "Not authenticated",
        (Shape::DaiLegacy, _) => "The token is invalid or expired.",
        (Shape::Keycloak, _) => "Invalid bearer token",
    };
    error(shape, StatusCode::UNAUTHORIZED, message)
}
