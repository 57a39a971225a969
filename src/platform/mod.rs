//! Platform adapters: one per remote job platform (Run:ai, OpenPAI, Eggplant DAI, generic REST).
//!
//! Adapters speak HTTP only; they hold no Kubernetes types except [`RemoteJobPhase`] and the job
//! bodies from [`crate::crd`]. Every call gets the bearer token from the caller (the token service owns
//! token life cycles) and every answer is normalized into an [`Observation`] or a classified
//! [`PlatformError`], so the controller decides retries, token refreshes and adoption in one place.
//!
//! Dispatch is an enum ([`Adapter`]) rather than a trait object: the set of platforms is closed and
//! async methods stay simple.

pub mod dai;
pub mod error;
pub mod generic;
mod http;
pub mod names;
pub mod openpai;
pub mod runai;
pub mod sanitize;

use std::fmt;

use k8s_openapi::jiff::Timestamp;
use secrecy::SecretString;

use crate::crd::{DaiJob, GenericJob, OpenpaiJob, Platform, PlatformApi, RemoteJobPhase, RunaiJob};

pub use error::{PlatformError, Result};
pub use names::remote_name;

/// Where a platform is and which generation of its API to speak. Holds no secret.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformConfig {
    pub platform: Platform,
    /// Base URL of the platform API without a trailing slash, e.g. `https://tenant.run.ai`.
    pub base_url: String,
    /// The API generation; `None` means the platform's default (see [`PlatformConfig::effective_api`]).
    pub api: Option<PlatformApi>,
    /// OpenPAI: the user the token belongs to (jobs are addressed as `user~name`).
    pub username: Option<String>,
}

impl PlatformConfig {
    pub fn new(platform: Platform, base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_string();
        Self {
            platform,
            base_url,
            api: None,
            username: None,
        }
    }

    pub fn with_api(mut self, api: PlatformApi) -> Self {
        self.api = Some(api);
        self
    }

    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The API generation in use: the configured one, or the platform's default. `None` for generic.
    pub fn effective_api(&self) -> Option<PlatformApi> {
        self.api.or(match self.platform {
            Platform::Runai => Some(PlatformApi::RunaiTrainingsV1),
            Platform::Openpai => Some(PlatformApi::OpenpaiV2),
            Platform::Dai => Some(PlatformApi::DaiExecutions),
            Platform::Generic => None,
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

/// The job body a call is about. Adapters that address jobs by id only ignore it on get/cancel,
/// but the generic adapter needs its paths and pointers on every call.
#[derive(Clone, Copy, Debug)]
pub enum JobBody<'a> {
    Runai(&'a RunaiJob),
    Openpai(&'a OpenpaiJob),
    Dai(&'a DaiJob),
    Generic(&'a GenericJob),
}

impl JobBody<'_> {
    pub fn platform(&self) -> Platform {
        match self {
            JobBody::Runai(_) => Platform::Runai,
            JobBody::Openpai(_) => Platform::Openpai,
            JobBody::Dai(_) => Platform::Dai,
            JobBody::Generic(_) => Platform::Generic,
        }
    }
}

/// A normalized reading of one remote job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// Our phase.
    pub phase: RemoteJobPhase,
    /// The platform's own state word, as reported (sanitized).
    pub remote_state: String,
    /// The platform's id (Run:ai workloadId, OpenPAI `user~name`, DAI execution/run id).
    pub remote_id: String,
    /// The name the job carries remotely, when the platform has names.
    pub remote_name: Option<String>,
    pub created_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    /// A short sanitized message (never a whole response body, never anything token-like).
    pub message: Option<String>,
    /// A link to the job, when one can be built.
    pub url: Option<String>,
}

/// The adapter for one ApiClient. Cheap to clone (reqwest clients share their pool).
#[derive(Clone)]
pub enum Adapter {
    Runai(runai::RunaiAdapter),
    Openpai(openpai::OpenpaiAdapter),
    Dai(dai::DaiAdapter),
    Generic(generic::GenericAdapter),
}

impl fmt::Debug for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = match self {
            Adapter::Runai(a) => &a.config,
            Adapter::Openpai(a) => &a.config,
            Adapter::Dai(a) => &a.config,
            Adapter::Generic(a) => &a.config,
        };
        f.debug_struct("Adapter")
            .field("config", config)
            .finish_non_exhaustive()
    }
}

impl Adapter {
    /// Builds the adapter for `config.platform`. `http` comes from the token service (TLS settings,
    /// no redirects, timeouts).
    pub fn new(config: PlatformConfig, http: reqwest::Client) -> Self {
        match config.platform {
            Platform::Runai => Adapter::Runai(runai::RunaiAdapter::new(config, http)),
            Platform::Openpai => Adapter::Openpai(openpai::OpenpaiAdapter::new(config, http)),
            Platform::Dai => Adapter::Dai(dai::DaiAdapter::new(config, http)),
            Platform::Generic => Adapter::Generic(generic::GenericAdapter::new(config, http)),
        }
    }

    /// Submits a job under `remote_name`. On [`PlatformError::Conflict`] or
    /// [`PlatformError::OutcomeUnknown`] call [`Adapter::lookup`] (named platforms) or
    /// [`dai::DaiAdapter::reconcile_unknown_start`] (DAI) instead of submitting again.
    pub async fn submit(
        &self,
        token: &SecretString,
        remote_name: &str,
        body: JobBody<'_>,
    ) -> Result<Observation> {
        match (self, body) {
            (Adapter::Runai(a), JobBody::Runai(j)) => a.submit(token, remote_name, j).await,
            (Adapter::Openpai(a), JobBody::Openpai(j)) => a.submit(token, remote_name, j).await,
            (Adapter::Dai(a), JobBody::Dai(j)) => a.submit(token, j).await,
            (Adapter::Generic(a), JobBody::Generic(j)) => a.submit(token, remote_name, j).await,
            _ => Err(mismatch(body)),
        }
    }

    /// Reads one job by its remote id.
    pub async fn get(
        &self,
        token: &SecretString,
        remote_id: &str,
        body: JobBody<'_>,
    ) -> Result<Observation> {
        match (self, body) {
            (Adapter::Runai(a), JobBody::Runai(_)) => a.get(token, remote_id).await,
            (Adapter::Openpai(a), JobBody::Openpai(_)) => a.get(token, remote_id).await,
            (Adapter::Dai(a), JobBody::Dai(_)) => a.get(token, remote_id).await,
            (Adapter::Generic(a), JobBody::Generic(j)) => a.get(token, remote_id, j).await,
            _ => Err(mismatch(body)),
        }
    }

    /// Finds a job by the name we gave it (adoption after a crash or a 409). `Ok(None)`: not there.
    /// DAI and generic jobs have no client-chosen name: always `Ok(None)`.
    pub async fn lookup(
        &self,
        token: &SecretString,
        remote_name: &str,
        body: JobBody<'_>,
    ) -> Result<Option<Observation>> {
        match (self, body) {
            (Adapter::Runai(a), JobBody::Runai(j)) => {
                a.lookup(token, remote_name, &j.project_id).await
            }
            (Adapter::Openpai(a), JobBody::Openpai(_)) => a.lookup(token, remote_name).await,
            (Adapter::Dai(_), JobBody::Dai(_)) | (Adapter::Generic(_), JobBody::Generic(_)) => {
                Ok(None)
            }
            _ => Err(mismatch(body)),
        }
    }

    /// Batched status of many jobs of this ApiClient, where the platform has a list call
    /// (Run:ai per project, OpenPAI per user). Returns `Ok(None)` where there is none; callers then
    /// fall back to [`Adapter::get`] per job.
    pub async fn list(
        &self,
        token: &SecretString,
        scope: Option<&str>,
    ) -> Result<Option<Vec<Observation>>> {
        match self {
            Adapter::Runai(a) => a.list(token, scope).await.map(Some),
            Adapter::Openpai(a) => a.list(token).await.map(Some),
            Adapter::Dai(_) | Adapter::Generic(_) => Ok(None),
        }
    }

    /// Cancels (Run:ai: deletes; OpenPAI: stops; DAI: aborts). NotFound means it is already gone.
    pub async fn cancel(
        &self,
        token: &SecretString,
        remote_id: &str,
        body: JobBody<'_>,
    ) -> Result<()> {
        match (self, body) {
            (Adapter::Runai(a), JobBody::Runai(_)) => a.cancel(token, remote_id).await,
            (Adapter::Openpai(a), JobBody::Openpai(_)) => a.cancel(token, remote_id).await,
            (Adapter::Dai(a), JobBody::Dai(_)) => a.cancel(token, remote_id).await,
            (Adapter::Generic(a), JobBody::Generic(j)) => a.cancel(token, remote_id, j).await,
            _ => Err(mismatch(body)),
        }
    }

    /// Whether suspend/resume exist on this platform (only Run:ai).
    pub fn can_suspend(&self) -> bool {
        matches!(self, Adapter::Runai(_))
    }

    pub async fn suspend(&self, token: &SecretString, remote_id: &str) -> Result<()> {
        match self {
            Adapter::Runai(a) => a.suspend(token, remote_id).await,
            _ => Err(PlatformError::Unsupported("suspend")),
        }
    }

    pub async fn resume(&self, token: &SecretString, remote_id: &str) -> Result<()> {
        match self {
            Adapter::Runai(a) => a.resume(token, remote_id).await,
            _ => Err(PlatformError::Unsupported("resume")),
        }
    }
}

fn mismatch(body: JobBody<'_>) -> PlatformError {
    PlatformError::Permanent {
        message: format!(
            "a {} job body cannot go to this ApiClient's platform",
            body.platform().as_str()
        ),
    }
}

/// Milliseconds since the epoch (OpenPAI, DAI numbers) to a timestamp; 0 and junk give `None`.
pub(crate) fn ts_from_millis(ms: Option<i64>) -> Option<Timestamp> {
    ms.filter(|m| *m > 0)
        .and_then(|m| Timestamp::from_millisecond(m).ok())
}

/// RFC 3339 text to a timestamp; junk gives `None` (times are informative, never fatal).
pub(crate) fn ts_from_str(s: Option<&str>) -> Option<Timestamp> {
    s.and_then(|s| s.parse::<Timestamp>().ok())
}
