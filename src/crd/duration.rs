//! Durations in spec fields are strings in the Kubernetes/Go style (`30s`, `5m`, `1h30m`, `500ms`),
//! validated by the schema pattern [`PATTERN`] at apply time and parsed here.

use std::time::Duration;

/// Schema pattern for duration fields. Positive units only; `0s` is refused by [`parse`] callers that
/// need a positive value (the CRD adds a CEL rule where zero makes no sense).
pub const PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";

/// Parses `1h30m`, `45s`, `250ms`. Returns `None` for anything the schema pattern would refuse.
pub fn parse(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else {
            return None;
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[len..];
    }
    Some(total)
}

/// Formats a duration the way [`parse`] reads it (used for defaults shown in docs and status).
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("30s", Some(30_000)),
            ("5m", Some(300_000)),
            ("1h30m", Some(5_400_000)),
            ("250ms", Some(250)),
            ("1m500ms", Some(60_500)),
            ("0s", Some(0)),
            ("", None),
            ("s", None),
            ("10", None),
            ("10d", None),
            ("-5s", None),
            ("1.5s", None),
            ("99999999999999999999s", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse(input).map(|d| d.as_millis() as u64),
                *want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn format_round_trips() {
        for ms in [250u64, 1_000, 59_000, 60_000, 3_723_000, 5_400_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Some(d), "{ms}");
        }
    }
}
