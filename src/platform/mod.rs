//! The platform seam: one [`Platform`] implementation per platform API, one file each, no Kubernetes
//! types inside: a platform reads its body of the job ([`Job`], from `crate::jobspec`) and answers in
//! our phases. Each call takes the bearer token; [`Session`] is the shared layer above every platform
//! that obtains tokens (one forced refresh on 401), throttles, batches status reads into list calls
//! and counts calls in the metrics. The controller asks for a [`Session`] per ApiClient and calls it.
//!
//! Layout: `model.rs` is the leaf (the [`Platform`] trait, [`RemoteView`], [`RemoteError`],
//! [`Capabilities`], time helpers) and imports no sibling; `http.rs` is the shared HTTP layer
//! ([`Endpoint`], [`http::send`]); one file per platform imports those two; this file only maps an
//! API generation to its platform ([`open`]) and re-exports the model.
//!
//! # Adding a platform
//!
//! 1. `jobspec/bodies.rs`: the job body (typed fields plus a raw passthrough; CEL rules as
//!    `x-kubernetes-validations`), and in `jobspec/mod.rs` its field on [`Job`] and a `PlatformApi`
//!    variant. `crd/api_client.rs`: a `Platform` variant; `crd/remote_job.rs`: the body field on
//!    `RemoteJobSpec` and in `RemoteJobSpec::job`. Then `make crds`.
//! 2. `platform/<name>.rs`: a struct holding an [`Endpoint`] and `impl Platform` for it (importing
//!    only `model` and `http`): the requests, the state word → [`RemoteJobPhase`] table
//!    (table-tested), [`Capabilities`], and, where the platform has them, `lookup` by our name,
//!    `list_scope` + `list` (batched status) and `find_start` (platforms without names). Send with
//!    [`http::send`], which classifies answers into [`RemoteError`]; `creates: true` on calls that
//!    change state remotely.
//! 3. [`open`] below: map the `PlatformApi` to the new struct (the only match over platforms).
//! 4. `controller/remote_job/client_ref.rs` `platform_mismatch`: the body ↔ platform check.
//! 5. `simulator/<name>.rs` and a case in `tests/platform_contract.rs` (every operation, every error
//!    class) plus recorded vendor answers in `tests/fixtures/`; an example in `examples/`.
//!
//! Tokens, throttling, batching and metrics come from [`Session`]; the controller needs no change.

pub mod batch;
pub mod dai;
pub mod dai_legacy;
pub mod generic;
pub mod http;
pub mod model;
pub mod openpai;
pub mod runai;
pub mod runai_deleted;
pub mod session;
pub mod throttle;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::jobspec::PlatformApi;
pub use http::Endpoint;
pub use model::*;
pub use session::Session;

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
    use jiff::Timestamp;

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

    use crate::jobspec::GenericStates;

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
