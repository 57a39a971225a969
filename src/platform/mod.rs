//! The platform seam: one [`Platform`] implementation per platform API, one file each, no Kubernetes
//! objects inside (a platform reads its part of the RemoteJob spec and answers in our phases). Each
//! call takes the bearer token; [`Session`] is the shared layer above every platform that obtains
//! tokens (one forced refresh on 401), throttles, batches status reads into list calls and counts
//! calls in the metrics. The controller asks for a [`Session`] per ApiClient and calls it.
//!
//! # Adding a platform
//!
//! 1. `crd/api_client.rs`: a `Platform` (and `PlatformApi`) variant; `crd/remote_job.rs`: the job body
//!    field on `RemoteJobSpec` (typed fields plus a raw passthrough), then `make crds`.
//! 2. `platform/<name>.rs`: a struct holding an [`http::Endpoint`] and `impl Platform` for it: the
//!    requests, the state word → [`RemoteJobPhase`] table (table-tested), [`Capabilities`], and, where
//!    the platform has them, `lookup` by our name, `list_scope` + `list` (batched status) and
//!    `find_start` (platforms without names). Send with [`http::send`], which classifies answers into
//!    [`RemoteError`]; `creates: true` on calls that change state remotely.
//! 3. [`open`] below: map the `PlatformApi` to the new struct (the only match over platforms).
//! 4. `controller/remote_job/client_ref.rs` `platform_mismatch`: the body ↔ platform check.
//! 5. `simulator/<name>.rs` and a case in `tests/platform_contract.rs` (every operation, every error
//!    class); an example in `examples/`.
//!
//! Tokens, throttling, batching and metrics come from [`Session`]; the controller needs no change.

pub mod batch;
pub mod dai;
pub mod dai_legacy;
pub mod generic;
pub mod http;
pub mod openpai;
pub mod runai;
pub mod session;
pub mod throttle;

use std::time::Duration;

use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt, ready};
use k8s_openapi::jiff::Timestamp;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::crd::{PlatformApi, RemoteJobPhase, RemoteJobSpec};
pub use http::Endpoint;
pub use session::Session;

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

/// Pure: how a read `call` went, for [`status_read_unsupported`].
pub fn tried(call: &str, f: &http::Failure) -> String {
    match f.status {
        Some(s) => format!("{call} answered HTTP {}", s.as_u16()),
        None => format!("{call} failed: {}", f.error),
    }
}

/// Pure: the observation of job `id` when no status read answered (see
/// [`http::Failure::read_unsupported`]): phase Unknown, state [`STATUS_READ_UNSUPPORTED`], and a
/// message naming each read tried and its answer (see [`tried`]).
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
/// The RemoteJob spec, of which a platform reads its own body (`spec.runai`, …).
pub type Spec = RemoteJobSpec;

/// One platform API. A platform answers [`RemoteError::Permanent`] when its body is missing from the
/// [`Spec`].
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
    fn create<'a>(&'a self, t: &'a Bearer, spec: &'a Spec, name: &'a str) -> Call<'a, RemoteView>;

    fn get<'a>(&'a self, t: &'a Bearer, spec: &'a Spec, id: &'a str) -> Call<'a, RemoteView>;

    /// By our name; `None` when absent (or when the platform has no names).
    fn lookup<'a>(&'a self, _t: &'a Bearer, _spec: &'a Spec, _name: &'a str) -> Search<'a> {
        ready(Ok(None)).boxed()
    }

    /// Pure: the scope a batched status call covers for this job (Run:ai project, OpenPAI user), if
    /// the platform has such a call.
    fn list_scope(&self, _spec: &RemoteJobSpec) -> Option<String> {
        None
    }

    /// The batched status call: every job in the scope of `spec` (see [`Platform::list_scope`]).
    fn list<'a>(&'a self, _t: &'a Bearer, _spec: &'a Spec) -> Call<'a, Vec<RemoteView>> {
        ready(Ok(Vec::new())).boxed()
    }

    /// Platforms without names: a start made at or after `since` matching the job, whose answer was lost.
    fn find_start<'a>(&'a self, _t: &'a Bearer, _spec: &'a Spec, _since: Timestamp) -> Search<'a> {
        ready(Ok(None)).boxed()
    }

    fn cancel<'a>(&'a self, t: &'a Bearer, spec: &'a Spec, id: &'a str) -> Call<'a, ()>;

    /// Platforms that cannot suspend in place cancel.
    fn suspend<'a>(&'a self, t: &'a Bearer, spec: &'a Spec, id: &'a str) -> Call<'a, ()> {
        self.cancel(t, spec, id)
    }

    fn resume<'a>(&'a self, _t: &'a Bearer, _spec: &'a Spec, _id: &'a str) -> Call<'a, ()> {
        ready(Err(RemoteError::Permanent {
            message: "this platform cannot resume in place".into(),
        }))
        .boxed()
    }
}

/// The platform for an ApiClient's API generation (`None`: a generic REST API described by each job).
pub fn open(api: Option<PlatformApi>, at: Endpoint) -> Arc<dyn Platform> {
    match api {
        Some(PlatformApi::RunaiTrainingsV1) => Arc::new(runai::Runai(at)),
        Some(PlatformApi::OpenpaiV2) => Arc::new(openpai::Openpai::new(at, false)),
        Some(PlatformApi::OpenpaiV1) => Arc::new(openpai::Openpai::new(at, true)),
        Some(PlatformApi::DaiExecutions) => Arc::new(dai::Dai(at)),
        Some(PlatformApi::DaiLegacyRun) => Arc::new(dai_legacy::DaiLegacy(at)),
        None => Arc::new(generic::Generic(at)),
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

/// A recorded response from `tests/fixtures/` (see its README for the source of each), as JSON.
#[cfg(test)]
macro_rules! fixture {
    ($path:literal) => {
        serde_json::from_str::<serde_json::Value>(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        )))
        .expect($path)
    };
}
#[cfg(test)]
pub(crate) use fixture;

/// The raw bytes of a recorded response (error bodies).
#[cfg(test)]
macro_rules! fixture_bytes {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        ))
        .as_slice()
    };
}
#[cfg(test)]
pub(crate) use fixture_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_filtered_remote_text_is_shown() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZW5hbnQifQ.c2lnbmF0dXJlc2lnbmF0dXJlc2ln";
        let view = |state: &str, url: Option<&str>, message: Option<&str>| RemoteView {
            id: "id".into(),
            phase: RemoteJobPhase::Running,
            state: state.into(),
            message: message.map(str::to_string),
            url: url.map(str::to_string),
            started_at: None,
            finished_at: None,
        };
        let v = view(
            &format!("Running\u{1b}[31m{jwt}"),
            Some(&format!("https://ui.example/job/1?access_token={jwt}")),
            Some(&format!("{{\"detail\": \"{jwt}\"}}")),
        );
        for shown in [
            v.shown_state(),
            v.shown_url().unwrap(),
            v.shown_message().unwrap(),
        ] {
            assert!(
                !shown.contains("eyJ") && !shown.contains('\u{1b}'),
                "{shown}"
            );
        }
        assert!(
            v.shown_url()
                .unwrap()
                .starts_with("https://ui.example/job/1?")
        );
        assert_eq!(view(&"x".repeat(500), None, None).shown_state().len(), 64);
        for bad in ["javascript:alert(1)", "file:///etc/passwd", "not a url"] {
            assert_eq!(view("s", Some(bad), None).shown_url(), None, "{bad}");
        }
        let long = format!("https://ui.example/{}", "a/".repeat(200));
        assert_eq!(
            view("s", Some(&long), None).shown_url(),
            None,
            "no link cut short"
        );
        assert_eq!(
            view(
                "Running",
                Some("http://pai/job-detail.html?username=u&jobName=j"),
                None
            )
            .shown_url()
            .as_deref(),
            Some("http://pai/job-detail.html?username=u&jobName=j")
        );
    }

    #[test]
    fn platform_times_parse_in_every_documented_form() {
        let t = |s: &str| parse_time(s).map(|t| t.to_string());
        assert_eq!(
            t("2024-03-01T10:00:00.000Z").as_deref(),
            Some("2024-03-01T10:00:00Z")
        );
        // DAI legacy run progress (dai-post-check-run.htm).
        assert_eq!(
            t("2018-05-31 17:00:01.366412+01").as_deref(),
            Some("2018-05-31T16:00:01.366412Z")
        );
        assert_eq!(
            t("2018-05-31 17:00:01-05").as_deref(),
            Some("2018-05-31T22:00:01Z")
        );
        assert_eq!(
            t("2018-05-31 17:00:01+05:30").as_deref(),
            Some("2018-05-31T11:30:01Z")
        );
        for bad in ["", "yesterday", "2018-05-31", "2018-05-31 17:00:01"] {
            assert_eq!(t(bad), None, "{bad}");
        }
        assert_eq!(
            time_of(Some(&serde_json::json!(1709287200000i64)))
                .map(|t| t.to_string())
                .as_deref(),
            Some("2024-03-01T10:00:00Z")
        );
    }

    #[test]
    fn intent_times_move_onto_the_platforms_clock() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let ours = t("2024-03-01T10:00:00Z");
        let received = t("2024-03-01T10:05:00.700Z");
        // Platform 5 minutes behind (Date has whole seconds).
        assert_eq!(
            on_platform_clock(ours, Some(t("2024-03-01T10:00:00Z")), received),
            t("2024-03-01T09:54:59.300Z")
        );
        assert_eq!(
            on_platform_clock(ours, Some(t("2024-03-01T10:10:00Z")), received),
            t("2024-03-01T10:04:59.300Z"),
            "ahead"
        );
        assert_eq!(on_platform_clock(ours, None, received), ours);
        assert_eq!(
            on_platform_clock(ours, Some(t("2030-01-01T00:00:00Z")), received),
            ours,
            "an absurd Date is not believed"
        );
    }

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
