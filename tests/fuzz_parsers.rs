//! Property tests over arbitrary input for everything that reads what a remote side sends: token
//! responses, the DAI credentials CSV, JWT claims, DAI login URLs, HTTP status classification, every
//! platform's state words, remote times, generic path templates and JSON pointers, the sanitizer and
//! the egress policy's CIDR parser. The property is "never panics" (plus a few invariants). A short
//! run is part of `cargo test`; `make fuzz` runs many more cases (PROPTEST_CASES).

use std::time::Duration;

use jobrelay::auth::{credentials, jwt_claims, jwt_expiry, sources};
use jobrelay::crd::GenericStates;
use jobrelay::platform;
use jobrelay::transport::{self, egress};
use proptest::prelude::*;
use serde_json::Value;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64)
}

/// Arbitrary JSON, up to a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "eyJ[A-Za-z0-9_-]{0,20}\\.[A-Za-z0-9_-]{0,20}\\.[A-Za-z0-9_-]{0,20}"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("access_token".to_string()),
                    Just("id_token".to_string()),
                    Just("expires_in".to_string()),
                    Just("message".to_string()),
                    Just("detail".to_string()),
                    Just("error_description".to_string()),
                    Just("msg".to_string()),
                    ".{0,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn token_responses(body in json(), field in prop_oneof![Just("access_token".to_string()), Just("id_token".to_string()), ".{0,8}"]) {
        let _ = sources::token_from(&body, &field, "expires_in");
        let _ = sources::token_from(&body, &field, "expiresIn");
    }

    #[test]
    fn token_response_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
            let _ = sources::token_from(&body, "access_token", "expires_in");
        }
        let _ = transport::message_of(&bytes);
    }

    #[test]
    fn dai_csv(text in ".{0,300}", lines in prop::collection::vec("[^\\n]{0,60}", 0..5)) {
        let _ = credentials::parse_csv(&text);
        let _ = credentials::parse_csv(&lines.join("\n"));
        let _ = credentials::parse_csv(&format!("client_id,client_secret,token_url\n{}", lines.join("\n")));
    }

    #[test]
    fn jwts_and_login_urls(token in ".{0,200}", a in "[A-Za-z0-9_=-]{0,40}", b in "[A-Za-z0-9_=-]{0,80}") {
        let _ = jwt_claims(&token);
        let _ = jwt_expiry(&token);
        let _ = jwt_expiry(&format!("{a}.{b}.{a}"));
        let _ = sources::token_url_from_login(&token);
    }

    #[test]
    fn status_classes_and_retry_after(code in 100u16..1000, secs in any::<u64>(), message in ".{0,300}") {
        let status = reqwest::StatusCode::from_u16(code).unwrap();
        let e = platform::http::classify(status, Some(Duration::from_secs(secs)), &message);
        let _ = e.requeue_after();
        let _ = e.to_string();
    }

    #[test]
    fn state_words(word in ".{0,40}", queued in prop::collection::vec(".{0,10}", 0..3)) {
        let _ = platform::runai::map_phase(&word);
        let _ = platform::openpai::map_state(&word);
        let _ = platform::dai::map_status(&word);
        let _ = platform::dai_legacy::map_status(&word);
        let states: GenericStates = serde_json::from_value(serde_json::json!({"queued": queued})).unwrap();
        let _ = platform::generic::map_state(&states, &word);
    }

    #[test]
    fn remote_times_and_names(v in json(), s in ".{0,60}", ns in ".{0,80}", name in ".{0,300}", uid in ".{0,40}", attempt in any::<i32>()) {
        let _ = platform::time_of(Some(&v));
        let _ = platform::time_of(Some(&Value::String(s.clone())));
        let _ = platform::generic::fill(&s, &uid, &name);
        let n = platform::remote_name(&ns, &name, &uid, attempt);
        prop_assert!(n.len() <= 253, "{}", n);
    }

    #[test]
    fn json_pointers(v in json(), pointer in "(/[a-z_~01]{0,8}){0,5}|.{0,20}") {
        let _ = v.pointer(&pointer);
    }

    #[test]
    fn the_sanitizer(text in ".{0,2000}", bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        for out in [transport::sanitize(&text), transport::message_of(&bytes)] {
            prop_assert!(out.chars().count() <= transport::sanitize::MESSAGE_MAX);
            prop_assert!(!out.chars().any(char::is_control), "{:?}", out);
        }
    }

    #[test]
    fn cidrs_and_decisions(s in ".{0,50}", ip in any::<std::net::IpAddr>(), prefix in 0u8..=140) {
        let _ = s.parse::<egress::Cidr>();
        let _ = egress::Cidr::new(ip, prefix);
        let _ = egress::decide(ip, &egress::Policy::default());
        let _ = egress::literal_ip(&s);
    }
}
