//! What every simulated API call goes through: injected faults, bearer check, and helpers shared by
//! the platform modules.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use k8s_openapi::jiff::Timestamp;

use super::auth::check_bearer;
use super::faults::FaultKind;
use super::shapes::{Shape, error, rate_limited, unauthorized};
use super::state::{Sim, wall_now};

/// Marks a response whose connection was cut (for the request counters).
#[derive(Clone, Copy, Debug)]
pub struct Dropped;

/// A request that passed the gate.
pub struct Passed {
    /// The token's subject (client id or OpenPAI user).
    pub subject: String,
    /// Commit-then-drop was injected: do the work, then cut the connection.
    pub drop_after: bool,
}

/// Applies faults for `platform`/`op` and checks the bearer. Latency first (it delays everything),
/// then the token (an injected 401 is one "on a valid token"), then the other faults.
pub async fn gate(
    sim: &Arc<Sim>,
    headers: &HeaderMap,
    platform: &str,
    op: &str,
    shape: Shape,
) -> Result<Passed, Response> {
    let decision = sim.lock().decide(platform, op);
    if decision.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
    }
    let subject = check_bearer(sim, headers, platform, shape).await?;
    fault_response(decision.fault.as_ref(), shape)?;
    Ok(Passed {
        subject,
        drop_after: decision.fault == Some(FaultKind::CommitThenDrop),
    })
}

/// The same for token endpoints (no bearer).
pub async fn gate_token(sim: &Arc<Sim>, platform: &str, shape: Shape) -> Result<(), Response> {
    let decision = sim.lock().decide(platform, "token");
    if decision.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
    }
    fault_response(decision.fault.as_ref(), shape)
}

fn fault_response(fault: Option<&FaultKind>, shape: Shape) -> Result<(), Response> {
    match fault {
        Some(FaultKind::Unauthorized) => Err(unauthorized(shape, false)),
        Some(FaultKind::RateLimit { retry_after }) => Err(rate_limited(shape, *retry_after)),
        Some(FaultKind::Status { status }) => {
            let s = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = if s == StatusCode::SERVICE_UNAVAILABLE {
                "Please try again in few minutes."
            } else {
                "Injected failure."
            };
            Err(error(shape, s, message))
        }
        _ => Ok(()),
    }
}

/// Cuts the connection when the gate asked for commit-then-drop, marking the response.
pub fn finish(passed: &Passed, conn: &super::faults::ConnCut, mut response: Response) -> Response {
    if passed.drop_after {
        conn.cut();
        response.extensions_mut().insert(Dropped);
    }
    response
}

/// Simulated time → wall-clock RFC 3339 (exact while not paused).
pub fn sim_to_rfc3339(sim_t: f64, sim_now: f64) -> String {
    wall_to_rfc3339(sim_t + (wall_now() - sim_now))
}

pub fn wall_to_rfc3339(wall: f64) -> String {
    Timestamp::from_millisecond((wall * 1000.0) as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Queue and run durations for a new job: `SIM_*` controls, else the configured defaults.
pub fn durations(sim: &Sim, c: &super::lifecycle::Controls) -> (f64, f64) {
    (
        c.queue_seconds.unwrap_or(sim.config.queue_seconds),
        c.run_seconds.unwrap_or(sim.config.run_seconds),
    )
}
