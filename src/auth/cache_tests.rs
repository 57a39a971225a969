//! Unit tests of the TokenCache: margins, single flight, refused tokens, the backoff gate.

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

fn token(bearer: &str, life_s: i64) -> Token {
    let now = Timestamp::now();
    Token {
        bearer: bearer.to_string().into(),
        obtained_at: now,
        expires_at: Some(Timestamp::from_second(now.as_second() + life_s).unwrap()),
        note: None,
        username: None,
    }
}

#[test]
fn margins() {
    let s = Duration::from_secs;
    let table = [
        (s(3600), None, s(300)),
        (s(300), None, s(30)),
        (s(30), None, s(10)),
        (s(12), None, s(6)),
        (s(3600), Some(s(60)), s(60)),
    ];
    for (life, cfg, want) in table {
        assert_eq!(refresh_margin(life, cfg), want, "{life:?} {cfg:?}");
    }
}

#[test]
fn retries_back_off_and_stop_growing() {
    let s = Duration::from_secs;
    let table = [
        // (failing for, life left in the token in use, retry after)
        (s(0), None, s(1)),
        (s(3), None, Duration::from_millis(1500)),
        (s(20), None, s(10)),
        (s(600), None, s(30)),
        (s(600), Some(s(4)), s(4)),
        (s(600), Some(Duration::ZERO), s(30)),
        (s(20), Some(Duration::from_millis(200)), s(1)),
    ];
    for (failing, valid, want) in table {
        assert_eq!(retry_after(failing, valid), want, "{failing:?} {valid:?}");
    }
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let cache = Arc::new(TokenCache::default());
    let calls = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (cache, calls) = (cache.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get("uid", "v1", None, None, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(token("t1", 3600))
                })
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().bearer.expose_secret(), "t1");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refused_tokens_refresh_once_and_versions_invalidate() {
    let cache = TokenCache::default();
    let t1 = cache
        .get("u", "v1", None, None, || async { Ok(token("t1", 3600)) })
        .await
        .unwrap();
    let t2 = cache
        .get("u", "v1", None, Some(&t1.bearer), || async {
            Ok(token("t2", 3600))
        })
        .await
        .unwrap();
    assert_eq!(t2.bearer.expose_secret(), "t2");
    // A second report of the same refused token does not fetch again.
    let t = cache
        .get("u", "v1", None, Some(&t1.bearer), || async {
            Ok(token("t3", 3600))
        })
        .await
        .unwrap();
    assert_eq!(t.bearer.expose_secret(), "t2");
    // A new Secret version starts over.
    let t = cache
        .get("u", "v2", None, None, || async { Ok(token("t4", 3600)) })
        .await
        .unwrap();
    assert_eq!(t.bearer.expose_secret(), "t4");
}

#[tokio::test]
async fn a_valid_token_survives_a_transient_refresh_failure() {
    let cache = TokenCache::default();
    // Obtained 100 s ago, 20 s left, refreshBefore 60 s: due now, still valid.
    let mut old = token("old", 20);
    old.obtained_at = Timestamp::from_second(old.obtained_at.as_second() - 100).unwrap();
    cache
        .get("u", "v", None, None, || async { Ok(old) })
        .await
        .unwrap();
    let before = Some(Duration::from_secs(60));
    let t = cache
        .get("u", "v", before, None, || async {
            Err(AuthError::Unreachable("down".into()))
        })
        .await
        .unwrap();
    assert_eq!(t.bearer.expose_secret(), "old");
    // Within the backoff the old token is handed out without asking.
    let t = cache
        .get("u", "v", before, None, || async { panic!("gated") })
        .await
        .unwrap();
    assert_eq!(t.bearer.expose_secret(), "old");
    // Another entry, same old token, but the endpoint refuses the credentials.
    let mut old = token("old", 20);
    old.obtained_at = Timestamp::from_second(old.obtained_at.as_second() - 100).unwrap();
    cache
        .get("w", "v", None, None, || async { Ok(old) })
        .await
        .unwrap();
    let err = cache
        .get("w", "v", before, None, || async {
            Err(AuthError::InvalidCredentials("no".into()))
        })
        .await;
    assert!(
        err.is_err(),
        "refused credentials are not hidden behind the old token"
    );
}

#[tokio::test]
async fn a_failing_endpoint_is_asked_again_only_after_the_backoff() {
    let cache = TokenCache::default();
    let calls = AtomicU32::new(0);
    let down = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(AuthError::Unreachable("down".into()))
    };
    for _ in 0..5 {
        let err = cache.get("u", "v", None, None, down).await.unwrap_err();
        assert_eq!(err, AuthError::Unreachable("down".into()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one request, four gated");
    let next = cache.retry_at("u").await.expect("a next try is known");
    assert!(next > Timestamp::now(), "{next}");
    // A new Secret version is a new entry: asked at once, and it works.
    let t = cache
        .get("u", "v2", None, None, || async { Ok(token("t", 3600)) })
        .await
        .unwrap();
    assert_eq!(t.bearer.expose_secret(), "t");
    assert!(
        cache.retry_at("u").await.is_none(),
        "success clears the failure"
    );
    // The endpoint fails again; a platform then refuses the token in hand: within the backoff the
    // caller hears of the failure, and the endpoint is not asked.
    let mut due = token("t", 20);
    due.obtained_at = Timestamp::from_second(due.obtained_at.as_second() - 100).unwrap();
    let before = Some(Duration::from_secs(60));
    let _ = cache
        .get("u", "v2b", None, None, || async { Ok(due) })
        .await;
    let kept = cache.get("u", "v2b", before, None, down).await.unwrap();
    let n = calls.load(Ordering::SeqCst);
    let err = cache
        .get("u", "v2b", before, Some(&kept.bearer), down)
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::Unreachable("down".into()));
    assert_eq!(calls.load(Ordering::SeqCst), n, "gated");
    // Permanent errors are not gated: a fixed IdP is noticed on the next look.
    let refused = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(AuthError::InvalidCredentials("no".into()))
    };
    let before = calls.load(Ordering::SeqCst);
    let _ = cache.get("u", "v3", None, None, refused).await;
    let _ = cache.get("u", "v3", None, None, refused).await;
    assert_eq!(calls.load(Ordering::SeqCst), before + 2);
}

#[tokio::test]
async fn platform_calls_follow_the_entry_the_controller_made() {
    let cache = TokenCache::default();
    // The ApiClient controller has read a rotated Secret (v2) before recording it in status.
    cache
        .get("u", "v2", None, None, || async { Ok(token("new", 3600)) })
        .await
        .unwrap();
    // A platform call still knows v1: it gets the v2 token and does not undo the entry.
    let t = cache
        .get_current("u", "v1", None, None, || async { panic!("no fetch") })
        .await
        .unwrap();
    assert_eq!(t.bearer.expose_secret(), "new");
    let t = cache
        .get("u", "v2", None, None, || async { panic!("still cached") })
        .await
        .unwrap();
    assert_eq!(t.bearer.expose_secret(), "new");
    // With nothing cached, the version it knows makes the entry.
    let t = cache
        .get_current("w", "v1", None, None, || async { Ok(token("w1", 3600)) })
        .await
        .unwrap();
    assert_eq!(t.bearer.expose_secret(), "w1");
}

#[tokio::test]
async fn a_refused_token_is_not_handed_out_while_its_refresh_fails() {
    let cache = TokenCache::default();
    let t = cache
        .get("u", "v", None, None, || async { Ok(token("t", 3600)) })
        .await
        .unwrap();
    let err = cache
        .get("u", "v", None, Some(&t.bearer), || async {
            Err(AuthError::Unreachable("down".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::Unreachable("down".into()));
    // Others now hear of the failure instead of getting a bearer the platform refuses.
    let err = cache
        .get("u", "v", None, None, || async { panic!("gated") })
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::Unreachable("down".into()));
}
