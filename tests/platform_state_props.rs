//! Property tests for state mapping: no platform word panics, and only the documented words reach
//! a terminal phase.

use jobrelay::crd::{GenericStates, RemoteJobPhase};
use jobrelay::platform::{dai, generic, openpai, runai};
use proptest::prelude::*;

const RUNAI_TERMINAL: &[&str] = &["completed", "failed", "deleting"];
const OPENPAI_TERMINAL: &[&str] = &["succeeded", "failed", "stopped"];
const DAI_TERMINAL: &[&str] = &[
    "passed",
    "succeeded",
    "success",
    "completed",
    "failed",
    "error",
    "errored",
    "incomplete",
    "aborted",
    "cancelled",
    "canceled",
];

proptest! {
    #[test]
    fn runai_words(word in "\\PC{0,40}", desired in proptest::option::of("Running|Stopped|\\PC{0,10}")) {
        let phase = runai::map_phase(&word, desired.as_deref());
        let deleted = desired.as_deref().is_some_and(|d| d.eq_ignore_ascii_case("deleted"));
        if phase.is_terminal() && !deleted {
            prop_assert!(RUNAI_TERMINAL.contains(&word.to_ascii_lowercase().as_str()), "{word} -> {phase:?}");
        }
    }

    #[test]
    fn openpai_words(word in "\\PC{0,40}") {
        let phase = openpai::map_state(&word);
        if phase.is_terminal() {
            prop_assert!(OPENPAI_TERMINAL.contains(&word.to_ascii_lowercase().as_str()), "{word}");
        }
    }

    #[test]
    fn dai_words(word in "\\PC{0,40}") {
        let phase = dai::map_status(&word);
        if phase.is_terminal() {
            prop_assert!(DAI_TERMINAL.contains(&word.to_ascii_lowercase().as_str()), "{word}");
        }
    }

    #[test]
    fn generic_words(word in "\\PC{0,40}") {
        let s = GenericStates::default();
        let phase = generic::map_state(&word, &s);
        if phase.is_terminal() {
            let all: Vec<&String> = s.succeeded.iter().chain(&s.failed).chain(&s.cancelled).collect();
            prop_assert!(all.iter().any(|w| w.eq_ignore_ascii_case(word.trim())), "{word}");
        }
    }

    /// Case variations of a known word never change its phase.
    #[test]
    fn case_insensitive(upper in any::<bool>(), idx in 0usize..6) {
        let words = ["Running", "Completed", "Failed", "Pending", "Stopped", "Creating"];
        let w = if upper { words[idx].to_uppercase() } else { words[idx].to_lowercase() };
        prop_assert_eq!(runai::map_phase(&w, None), runai::map_phase(words[idx], None));
        prop_assert_ne!(runai::map_phase(words[idx], None), RemoteJobPhase::Unknown);
    }
}
