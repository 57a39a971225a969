//! Deterministic remote names. The same RemoteJob attempt always gets the same name, so a crash
//! between "create sent" and "status written" is healed by looking the name up (exactly-once).

use crate::crd::Platform;

/// Longest name we generate: a DNS-1123 label (Run:ai) and comfortably within OpenPAI's 255.
pub const MAX_NAME_LEN: usize = 63;

/// `<namespace>-<name>-<uid[..8]>-<attempt>`, reduced to each platform's alphabet.
///
/// The uid prefix keeps recreated RemoteJobs with the same name apart (OpenPAI never frees a name),
/// the attempt keeps resubmissions apart. When too long, the namespace/name part is cut, never the
/// uid or attempt suffix.
pub fn remote_name(
    namespace: &str,
    name: &str,
    uid: &str,
    attempt: u32,
    platform: Platform,
) -> String {
    let uid_part: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    let suffix = format!("-{uid_part}-{attempt}");
    let prefix = match platform {
        // OpenPAI allows [a-zA-Z0-9_-]; lower-casing anyway keeps names alike across platforms.
        Platform::Openpai => reduce(&format!("{namespace}-{name}"), |c| {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        }),
        Platform::Runai | Platform::Dai | Platform::Generic => {
            reduce(&format!("{namespace}-{name}"), |c| {
                c.is_ascii_alphanumeric() || c == '-'
            })
        }
    };
    let room = MAX_NAME_LEN - suffix.len();
    let mut prefix: String = prefix.chars().take(room).collect();
    // DNS-1123: start with an alphanumeric; the cut may leave a trailing '-' before our '-'.
    while prefix.ends_with('-') || prefix.ends_with('_') {
        prefix.pop();
    }
    if prefix.is_empty() {
        prefix.push('j');
    }
    format!("{prefix}{suffix}")
}

/// Lower-cases, replaces characters outside `keep` by '-', collapses '-' runs, trims '-'.
fn reduce(s: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if keep(c) { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches(|c| c == '-' || c == '_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns1123(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn table() {
        let uid = "3f2a9c1e-0000-4000-8000-000000000000";
        let long = "a".repeat(80);
        let cases: &[(&str, &str, u32, Platform, &str)] = &[
            (
                "default",
                "train",
                0,
                Platform::Runai,
                "default-train-3f2a9c1e-0",
            ),
            (
                "default",
                "Train.Big",
                2,
                Platform::Runai,
                "default-train-big-3f2a9c1e-2",
            ),
            ("ns", "my_job", 1, Platform::Openpai, "ns-my_job-3f2a9c1e-1"),
            ("ns", "my_job", 1, Platform::Runai, "ns-my-job-3f2a9c1e-1"),
            ("ns", "x.y", 0, Platform::Openpai, "ns-x-y-3f2a9c1e-0"),
            (
                "ns",
                &long,
                10,
                Platform::Runai,
                &format!("ns-{}-3f2a9c1e-10", "a".repeat(63 - 3 - 12)),
            ),
            ("", "", 0, Platform::Dai, "j-3f2a9c1e-0"),
        ];
        for (ns, name, attempt, platform, want) in cases {
            let got = remote_name(ns, name, uid, *attempt, *platform);
            assert_eq!(&got, want);
            assert!(got.len() <= MAX_NAME_LEN);
        }
    }

    proptest::proptest! {
        #[test]
        fn always_valid(ns in ".{0,80}", name in ".{0,300}", uid in "[a-f0-9-]{0,40}", attempt in 0u32..1000) {
            let r = remote_name(&ns, &name, &uid, attempt, Platform::Runai);
            proptest::prop_assert!(dns1123(&r), "{r}");
            proptest::prop_assert_eq!(&r, &remote_name(&ns, &name, &uid, attempt, Platform::Runai));
            let o = remote_name(&ns, &name, &uid, attempt, Platform::Openpai);
            proptest::prop_assert!(!o.is_empty() && o.len() <= 63 && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{o}");
        }
    }
}
