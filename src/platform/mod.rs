//! Platform adapters: one per platform, no Kubernetes types inside (only the job body types and our
//! phase). Each call takes the bearer token; obtaining and refreshing tokens is the caller's business.

pub mod dai;
pub mod dai_legacy;
pub mod generic;
pub mod http;
pub mod openpai;
pub mod runai;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::crd::{PlatformApi, RemoteJobPhase, RemoteJobSpec};

/// What a platform can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Jobs carry our name and can be looked up by it (Run:ai, OpenPAI, generic-by-id: no).
    pub lookup_by_name: bool,
    /// The platform can suspend and resume a job in place (Run:ai).
    pub suspend_resume: bool,
}

/// A normalized remote observation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemoteView {
    /// The platform's id (Run:ai workloadId, OpenPAI `user~name`, DAI execution id).
    pub id: String,
    pub phase: RemoteJobPhase,
    /// The platform's own state word.
    pub state: String,
    /// Short, sanitized.
    pub message: Option<String>,
    pub url: Option<String>,
    /// When the platform says the job started running and finished (where it says).
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// Pure: a platform time: RFC 3339 text, or milliseconds since the epoch (OpenPAI).
pub fn time_of(v: Option<&serde_json::Value>) -> Option<Timestamp> {
    match v? {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => Timestamp::from_millisecond(n.as_i64()?).ok(),
        _ => None,
    }
}

/// Classified failures of a remote call.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// Try again later (5xx, 429, timeouts, resets); `retry_after` from the platform when it said.
    #[error("platform temporarily unavailable: {message}")]
    Retriable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// 401: the caller refreshes the token once and retries.
    #[error("platform refused the credentials: {message}")]
    Auth { message: String },
    /// The name is taken (a create that already happened): look it up and adopt.
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// The platform rejected the request for good (400/422): a spec error.
    #[error("rejected by the platform: {message}")]
    Permanent { message: String },
    #[error("not found")]
    NotFound,
    /// The request may or may not have taken effect (connection dropped after sending).
    #[error("outcome unknown: {message}")]
    OutcomeUnknown { message: String },
}

impl RemoteError {
    /// When to look again after this error.
    pub fn requeue_after(&self) -> Duration {
        match self {
            RemoteError::Retriable {
                retry_after: Some(d),
                ..
            } => *d,
            RemoteError::Retriable { .. } | RemoteError::OutcomeUnknown { .. } => {
                Duration::from_secs(2)
            }
            _ => Duration::from_secs(15),
        }
    }
}

pub type RemoteResult<T> = Result<T, RemoteError>;

/// Where a platform is and which API generation to use.
#[derive(Clone, Debug)]
pub struct PlatformConfig {
    pub base_url: String,
    pub api: PlatformApi,
    /// OpenPAI: the user jobs are submitted as (ids are `user~name`).
    pub username: Option<String>,
}

/// One adapter per platform.
#[derive(Clone, Debug)]
pub enum Adapter {
    Runai(runai::Runai),
    Openpai(openpai::Openpai),
    Dai(dai::Dai),
    Generic(generic::Generic),
}

impl Adapter {
    pub fn new(http: reqwest::Client, config: PlatformConfig) -> Self {
        match config.api {
            PlatformApi::RunaiTrainingsV1 => Adapter::Runai(runai::Runai { http, config }),
            PlatformApi::OpenpaiV2 | PlatformApi::OpenpaiV1 => {
                Adapter::Openpai(openpai::Openpai { http, config })
            }
            PlatformApi::DaiExecutions | PlatformApi::DaiLegacyRun => {
                Adapter::Dai(dai::Dai { http, config })
            }
        }
    }

    /// A generic REST API at `base_url`, described by each RemoteJob's `generic` body.
    pub fn generic(http: reqwest::Client, base_url: &str) -> Self {
        Adapter::Generic(generic::Generic {
            http,
            base_url: base_url.to_string(),
        })
    }

    /// Jobs carry our name (lookup and conflict on create work).
    pub fn has_names(&self) -> bool {
        matches!(self, Adapter::Runai(_) | Adapter::Openpai(_))
    }

    /// In-place suspend/resume.
    pub fn suspends(&self) -> bool {
        matches!(self, Adapter::Runai(_))
    }

    pub async fn create(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
        name: &str,
    ) -> RemoteResult<RemoteView> {
        match self {
            Adapter::Runai(a) => a.create(t, spec, name).await,
            Adapter::Openpai(a) => a.create(t, spec, name).await,
            Adapter::Dai(a) => a.create(t, spec).await,
            Adapter::Generic(a) => a.create(t, spec, name).await,
        }
    }

    pub async fn get(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
        id: &str,
    ) -> RemoteResult<RemoteView> {
        match self {
            Adapter::Runai(a) => a.get(t, id).await,
            Adapter::Openpai(a) => a.get(t, id).await,
            Adapter::Dai(a) => a.get(t, id).await,
            Adapter::Generic(a) => a.get(t, spec, id).await,
        }
    }

    /// By our name; `None` when absent. DAI has no names: always `None`.
    pub async fn lookup(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
        name: &str,
    ) -> RemoteResult<Option<RemoteView>> {
        match self {
            Adapter::Runai(a) => a.lookup(t, spec, name).await,
            Adapter::Openpai(a) => a.lookup(t, name).await,
            Adapter::Dai(_) | Adapter::Generic(_) => Ok(None),
        }
    }

    /// Pure: the scope a batched status call covers for this job (Run:ai project, OpenPAI user), if the
    /// platform has such a call.
    pub fn list_scope(&self, spec: &RemoteJobSpec) -> Option<String> {
        match self {
            Adapter::Runai(_) => spec
                .runai
                .as_ref()
                .map(|r| format!("project/{}", r.project_id)),
            // One user per ApiClient (the token's).
            Adapter::Openpai(a) if !a.v1() => Some("user".into()),
            _ => None,
        }
    }

    /// The batched status call: every job in the scope of `spec` (see [`Adapter::list_scope`]).
    pub async fn list(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
    ) -> RemoteResult<Vec<RemoteView>> {
        match self {
            Adapter::Runai(a) => a.list(t, spec).await,
            Adapter::Openpai(a) => a.list(t).await,
            _ => Ok(Vec::new()),
        }
    }

    /// DAI: a start made at or after `since` matching the job's model/script, whose answer was lost.
    pub async fn find_start(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
        since: k8s_openapi::jiff::Timestamp,
    ) -> RemoteResult<Option<RemoteView>> {
        match self {
            Adapter::Dai(a) => a.find_start(t, spec, since).await,
            _ => Ok(None),
        }
    }

    pub async fn cancel(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
        id: &str,
    ) -> RemoteResult<()> {
        match self {
            Adapter::Runai(a) => a.delete(t, id).await,
            Adapter::Openpai(a) => a.stop(t, id).await,
            Adapter::Dai(a) => a.abort(t, id).await,
            Adapter::Generic(a) => a.cancel(t, spec, id).await,
        }
    }

    pub async fn suspend(
        &self,
        t: &SecretString,
        spec: &RemoteJobSpec,
        id: &str,
    ) -> RemoteResult<()> {
        match self {
            Adapter::Runai(a) => a.action(t, id, "suspend").await,
            other => other.cancel(t, spec, id).await,
        }
    }

    pub async fn resume(&self, t: &SecretString, id: &str) -> RemoteResult<()> {
        match self {
            Adapter::Runai(a) => a.action(t, id, "resume").await,
            _ => Err(RemoteError::Permanent {
                message: "this platform cannot resume in place".into(),
            }),
        }
    }
}

/// The deterministic remote name of attempt `attempt` of a RemoteJob: `<namespace>-<name>-<uid[..8]>-<attempt>`,
/// lowercase DNS-1123 (fits Run:ai's name rules and OpenPAI's `^[a-zA-Z0-9_-]+$`), at most 63 characters;
/// longer names keep a readable prefix plus a hash of the full name.
pub fn remote_name(namespace: &str, name: &str, uid: &str, attempt: i32) -> String {
    let uid8: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    let raw = format!("{namespace}-{name}-{uid8}-{attempt}").to_ascii_lowercase();
    let mut clean = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && clean.ends_with('-')) {
            clean.push(c);
        }
    }
    let clean = clean.trim_matches('-').to_string();
    if clean.len() <= 63 {
        return clean;
    }
    let hash: String = Sha256::digest(clean.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let suffix = format!("-{hash}-{attempt}");
    let head: String = clean.chars().take(63 - suffix.len()).collect();
    format!("{}{suffix}", head.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names_are_deterministic_and_valid() {
        let uid = "0f9a2d3e-6a5c-4d4b-9a57-1c2b3d4e5f60";
        let cases = [
            (("team-a", "train", 1), "team-a-train-0f9a2d3e-1"),
            (("Team_A", "My.Job", 2), "team-a-my-job-0f9a2d3e-2"),
        ];
        for ((ns, name, attempt), want) in cases {
            assert_eq!(remote_name(ns, name, uid, attempt), want);
        }
        let long = remote_name(&"n".repeat(63), &"j".repeat(200), uid, 3);
        assert!(long.len() <= 63, "{long}");
        assert!(long.ends_with("-3"));
        assert_eq!(long, remote_name(&"n".repeat(63), &"j".repeat(200), uid, 3));
        assert_ne!(remote_name("a", "b", uid, 1), remote_name("a", "b", uid, 2));
        for n in [long.as_str(), "team-a-train-0f9a2d3e-1"] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!n.starts_with('-') && !n.ends_with('-'));
        }
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use crate::crd::GenericStates;

    proptest! {
        /// No platform word panics, and only the documented terminal words map to a terminal phase.
        #[test]
        fn only_known_words_are_terminal(word in "\\PC{0,24}") {
            let lower = word.to_ascii_lowercase();
            if super::openpai::map_state(&word).is_terminal() {
                prop_assert!(["SUCCEEDED", "FAILED", "STOPPED"].contains(&word.as_str()));
            }
            if super::dai::map_status(&word).is_terminal() {
                prop_assert!(["passed", "failed", "incomplete", "error", "aborted", "cancelled"].contains(&lower.as_str()));
            }
            if super::dai_legacy::map_status(&word).is_terminal() {
                prop_assert!(["passed", "failed", "incomplete"].contains(&lower.as_str()));
            }
            let g = GenericStates::default();
            if super::generic::map_state(&g, &word).is_terminal() {
                let known = g.succeeded.iter().chain(&g.failed).chain(&g.cancelled).any(|w| w.eq_ignore_ascii_case(&word));
                prop_assert!(known);
            }
        }
    }
}
