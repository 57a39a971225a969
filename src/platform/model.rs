//! The platform seam's shared model: the [`Platform`] trait and the types every platform answers in.
//! A leaf: it imports no sibling module, so that each platform file imports it and `mod.rs` only
//! wires platforms together (nothing imports in a circle). No Kubernetes types here.

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, ready};
use jiff::Timestamp;
use secrecy::SecretString;

pub use crate::jobspec::{Job, RemoteJobPhase};

/// What a platform can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Jobs carry our name and can be looked up by it (Run:ai, OpenPAI, generic-by-id: no).
    pub lookup_by_name: bool,
    /// The platform can suspend and resume a job in place (Run:ai).
    pub suspend_resume: bool,
}

impl Capabilities {
    /// No names, no suspend in place (DAI, generic REST APIs): the [`Platform`] default.
    pub const UNNAMED: Capabilities = Capabilities {
        lookup_by_name: false,
        suspend_resume: false,
    };
    pub const NAMED: Capabilities = Capabilities {
        lookup_by_name: true,
        suspend_resume: false,
    };
    pub const NAMED_SUSPENDABLE: Capabilities = Capabilities {
        lookup_by_name: true,
        suspend_resume: true,
    };
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

/// What of a view may reach a RemoteJob's status, readable by the namespace's users: nothing a platform
/// (or whatever a tenant pointed the operator at) answered goes there unfiltered.
impl RemoteView {
    /// The state word: sanitized, at most 64 characters.
    pub fn shown_state(&self) -> String {
        crate::transport::sanitize(&self.state)
            .chars()
            .take(64)
            .collect()
    }

    /// The message: sanitized (already so when an adapter built it; sanitizing twice changes nothing).
    pub fn shown_message(&self) -> Option<String> {
        self.message.as_deref().map(crate::transport::sanitize)
    }

    /// A link a person can open: http(s) only (no `javascript:` or `file:` in a UI), tokens in it
    /// masked, and none at all rather than one cut short.
    pub fn shown_url(&self) -> Option<String> {
        let url = self.url.as_deref()?;
        let parsed = reqwest::Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "http" | "https")
            || url.chars().count() > crate::transport::sanitize::MESSAGE_MAX - 3
        {
            return None;
        }
        Some(crate::transport::sanitize(url))
    }
}

/// The remote state word of an observation whose status read the platform does not offer.
pub const STATUS_READ_UNSUPPORTED: &str = "StatusReadUnsupported";

/// Pure: the message of a state word that `known` (the platform's documented words) does not hold,
/// so that an unrecognized word is shown rather than polled silently; `None` for a known word.
pub fn unrecognized(word: &str, known: &[&str]) -> Option<String> {
    if known.iter().any(|k| k.eq_ignore_ascii_case(word)) {
        return None;
    }
    let shown: String = crate::transport::sanitize(word).chars().take(64).collect();
    Some(format!("unrecognized state '{shown}' from the platform"))
}

/// Pure: the observation of job `id` when no status read answered (see
/// [`super::http::Failure::read_unsupported`]): phase Unknown, state [`STATUS_READ_UNSUPPORTED`], and a
/// message naming each read tried and its answer (see [`super::http::Failure::tried`]).
pub fn status_read_unsupported(id: &str, tried: &[String]) -> RemoteView {
    RemoteView {
        id: id.to_string(),
        phase: RemoteJobPhase::Unknown,
        state: STATUS_READ_UNSUPPORTED.into(),
        message: Some(format!(
            "the platform offers no status read for this job ({}); its state cannot be observed",
            tried.join("; ")
        )),
        ..Default::default()
    }
}

/// How far back a start search asks the platform to list, beyond the intent time, so that a platform
/// clock behind ours still lists the start; the answer is then cut at [`on_platform_clock`].
pub const SKEW_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// Pure: our time `ours` on the platform's clock, from the platform's `Date` header `date` on an
/// answer we received at `received` (our clock). Without a `Date` (or one further off than
/// [`SKEW_WINDOW`], which we do not believe), our clock. The header has whole seconds, so the shift
/// may come out up to a second early; never later.
pub fn on_platform_clock(
    ours: Timestamp,
    date: Option<Timestamp>,
    received: Timestamp,
) -> Timestamp {
    let Some(date) = date else { return ours };
    let skew = date.duration_since(received);
    if skew.unsigned_abs() > SKEW_WINDOW {
        return ours;
    }
    ours.checked_add(skew).unwrap_or(ours)
}

/// Pure: a platform time: RFC 3339 text, DAI legacy's `yyyy-MM-dd HH:mm:ss.ffffff+HH` (a space, an
/// offset in hours only), or milliseconds since the epoch (OpenPAI).
pub fn time_of(v: Option<&serde_json::Value>) -> Option<Timestamp> {
    match v? {
        serde_json::Value::String(s) => parse_time(s),
        serde_json::Value::Number(n) => Timestamp::from_millisecond(n.as_i64()?).ok(),
        _ => None,
    }
}

/// Pure: [`time_of`] for text.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse() {
        return Some(t);
    }
    // `2018-05-31 17:00:01.366412+01`: a `T` for the space, `+01:00` for an hours-only offset.
    let mut text = s.replacen(' ', "T", 1);
    let tail = text.rfind(['+', '-']).filter(|i| *i > 10)?;
    let offset = &text[tail + 1..];
    if offset.len() == 2 && offset.bytes().all(|b| b.is_ascii_digit()) {
        text.push_str(":00");
    }
    text.parse().ok()
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

/// A platform call in flight.
pub type Call<'a, T> = BoxFuture<'a, RemoteResult<T>>;
/// A search for one job that may find none.
pub type Search<'a> = Call<'a, Option<RemoteView>>;
/// The bearer token a call carries.
pub type Bearer = SecretString;

/// One platform API. A platform answers [`RemoteError::Permanent`] when its body is missing from the
/// [`Job`].
pub trait Platform: Send + Sync {
    fn capabilities(&self) -> Capabilities {
        Capabilities::UNNAMED
    }

    /// The same platform acting for `user`, when the platform's ids name the token's user (OpenPAI's
    /// `user~name`); `None`: the user does not matter.
    fn for_user(&self, _user: &str) -> Option<Arc<dyn Platform>> {
        None
    }

    /// Creates the job under our `name` (platforms without names ignore it).
    fn create<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, name: &'a str) -> Call<'a, RemoteView>;

    fn get<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, id: &'a str) -> Call<'a, RemoteView>;

    /// By our name; `None` when absent (or when the platform has no names).
    fn lookup<'a>(&'a self, _t: &'a Bearer, _spec: Job<'a>, _name: &'a str) -> Search<'a> {
        ready(Ok(None)).boxed()
    }

    /// Pure: the scope a batched status call covers for this job (Run:ai project, OpenPAI user), if
    /// the platform has such a call.
    fn list_scope(&self, _spec: Job<'_>) -> Option<String> {
        None
    }

    /// The batched status call: every job in the scope of `spec` (see [`Platform::list_scope`]).
    fn list<'a>(&'a self, _t: &'a Bearer, _spec: Job<'a>) -> Call<'a, Vec<RemoteView>> {
        ready(Ok(Vec::new())).boxed()
    }

    /// Platforms without names: a start made at or after `since` matching the job, whose answer was lost.
    fn find_start<'a>(&'a self, _t: &'a Bearer, _spec: Job<'a>, _since: Timestamp) -> Search<'a> {
        ready(Ok(None)).boxed()
    }

    fn cancel<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, id: &'a str) -> Call<'a, ()>;

    /// Platforms that cannot suspend in place cancel.
    fn suspend<'a>(&'a self, t: &'a Bearer, spec: Job<'a>, id: &'a str) -> Call<'a, ()> {
        self.cancel(t, spec, id)
    }

    fn resume<'a>(&'a self, _t: &'a Bearer, _spec: Job<'a>, _id: &'a str) -> Call<'a, ()> {
        ready(Err(RemoteError::Permanent {
            message: "this platform cannot resume in place".into(),
        }))
        .boxed()
    }
}

/// Pure: the array at `key` of an answer, or the answer itself when it is the array.
pub fn items<'v>(answer: &'v serde_json::Value, key: &str) -> &'v [serde_json::Value] {
    answer
        .get(key)
        .unwrap_or(answer)
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Pure: the earliest of `items` by the time text at `key` (RFC 3339 sorts as text).
pub fn earliest<'v>(
    items: impl Iterator<Item = &'v serde_json::Value>,
    key: &str,
) -> Option<&'v serde_json::Value> {
    items.min_by_key(|v| v.get(key).and_then(serde_json::Value::as_str).unwrap_or(""))
}

/// The body a platform needs, or the Permanent error naming the missing spec field.
pub fn body<'a, T>(body: Option<&'a T>, field: &str) -> RemoteResult<&'a T> {
    body.ok_or_else(|| RemoteError::Permanent {
        message: format!("spec.{field} is not set"),
    })
}
