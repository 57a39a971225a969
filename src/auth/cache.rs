//! TokenCache: one entry per ApiClient, keyed so a spec or Secret change invalidates it; refresh ahead of
//! expiry; concurrent callers share one in-flight refresh; a token the platform refused (401) is
//! refreshed once, however many callers report it; a token endpoint that keeps failing is asked again
//! only on a backoff schedule, however many reconciles (of either controller) ask for a token meanwhile.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};

use super::{AuthError, Token};

/// Pure: how long before expiry to refresh. `configured` (spec.refreshBefore) wins; otherwise 10% of
/// the lifetime, at least 10 s and at most 5 min. Never more than half the lifetime.
pub fn refresh_margin(lifetime: Duration, configured: Option<Duration>) -> Duration {
    let m = configured.unwrap_or_else(|| {
        (lifetime / 10).clamp(Duration::from_secs(10), Duration::from_secs(300))
    });
    m.min(lifetime / 2)
}

/// Pure: when `token` should be refreshed (`None`: never, it does not expire).
pub fn refresh_at(token: &Token, configured: Option<Duration>) -> Option<Timestamp> {
    let exp = token.expires_at?;
    let lifetime =
        Duration::from_secs((exp.as_second() - token.obtained_at.as_second()).max(0) as u64);
    let margin = refresh_margin(lifetime, configured);
    exp.checked_sub(k8s_openapi::jiff::SignedDuration::try_from(margin).ok()?)
        .ok()
}

/// Pure: a token may be handed out (until it expires, even when a refresh is due but failing).
pub fn usable(token: &Token, now: Timestamp) -> bool {
    token.expires_at.is_none_or(|e| e > now)
}

const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Pure: when to retry a refresh that has been failing for `failing_for`. Half of that, so the gaps grow
/// about 1.5× per try (1 s, 1.5 s, 2.25 s, …) without keeping a counter, capped at 30 s so a returning
/// endpoint is noticed soon; and never later than `valid_for`, the life left in the token still in
/// use, so one more try happens before it lapses.
pub fn retry_after(failing_for: Duration, valid_for: Option<Duration>) -> Duration {
    let d = (failing_for / 2).clamp(RETRY_MIN, RETRY_MAX);
    match valid_for {
        Some(v) if v > Duration::ZERO => d.min(v).max(RETRY_MIN),
        _ => d,
    }
}

fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// A refresh that failed transiently: until `next_try` callers get `error` (or the still-valid token)
/// without a request. `since` is the first failure of the run, kept across the token's expiry so
/// the backoff does not start over when the old token lapses.
struct Failure {
    since: Timestamp,
    next_try: Timestamp,
    error: AuthError,
}

#[derive(Default)]
struct Slot {
    token: Option<Token>,
    failure: Option<Failure>,
}

struct Entry {
    version: String,
    slot: tokio::sync::Mutex<Slot>,
}

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl TokenCache {
    fn entry(&self, id: &str, version: &str) -> Arc<Entry> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id) {
            Some(e) if e.version == version => e.clone(),
            _ => {
                let e = Arc::new(Entry {
                    version: version.to_string(),
                    slot: tokio::sync::Mutex::new(Slot::default()),
                });
                map.insert(id.to_string(), e.clone());
                e
            }
        }
    }

    /// Keeps only the entries of ApiClients `alive(uid)` says still exist.
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|uid, _| alive(uid));
    }

    /// Forgets an ApiClient (deleted).
    pub fn remove(&self, id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// The cached token, if any and still usable, without refreshing.
    pub async fn peek(&self, id: &str, version: &str) -> Option<Token> {
        let e = self.entry(id, version);
        let slot = e.slot.lock().await;
        slot.token.clone().filter(|t| usable(t, Timestamp::now()))
    }

    /// When the next refresh of `id` may go out, while its token endpoint is failing.
    pub async fn retry_at(&self, id: &str) -> Option<Timestamp> {
        let e = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()?;
        let slot = e.slot.lock().await;
        slot.failure.as_ref().map(|f| f.next_try)
    }

    /// A token for ApiClient `id` at `version` (generation + Secret version): the cached one while it is
    /// not due, otherwise one from `fetch` (called by one caller at a time; the others wait and share).
    /// `refused`: the bearer a platform just answered 401 to — refreshed unless someone already did.
    /// When a refresh fails, a cached token that has not expired is still returned (`Ok`), and the
    /// error is handed to `on_refresh_error`.
    pub async fn get<F, Fut>(
        &self,
        id: &str,
        version: &str,
        refresh_before: Option<Duration>,
        refused: Option<&SecretString>,
        fetch: F,
    ) -> Result<Token, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, AuthError>>,
    {
        let e = self.entry(id, version);
        let mut slot = e.slot.lock().await;
        let now = Timestamp::now();
        let old = slot.token.clone().filter(|t| usable(t, now));
        if let Some(t) = &old {
            let was_refused =
                refused.is_some_and(|r| r.expose_secret() == t.bearer.expose_secret());
            let due = refresh_at(t, refresh_before).is_some_and(|at| at <= now);
            if !was_refused && !due {
                return Ok(t.clone());
            }
            if refused.is_some() && !was_refused {
                // Someone refreshed since the caller got its token: hand out the new one.
                return Ok(t.clone());
            }
        }
        // The endpoint failed a moment ago: do not ask again before the backoff says so, not even
        // for a bearer a platform refused (a storm of 401s must not become a storm at a failing
        // identity provider); such a caller gets the failure, not the refused token.
        if let Some(f) = slot.failure.as_ref().filter(|f| now < f.next_try) {
            return match old {
                Some(t) if refused.is_none() => Ok(t),
                _ => Err(f.error.clone()),
            };
        }
        match fetch().await {
            Ok(t) => {
                *slot = Slot {
                    token: Some(t.clone()),
                    failure: None,
                };
                Ok(t)
            }
            Err(err) if err.is_transient() => {
                let since = slot.failure.as_ref().map_or(now, |f| f.since);
                let valid_for = old
                    .as_ref()
                    .and_then(|t| t.expires_at)
                    .map(|exp| between(now, exp));
                slot.failure = Some(Failure {
                    since,
                    next_try: now + retry_after(between(since, now), valid_for),
                    error: err.clone(),
                });
                match old {
                    Some(old) if refused.is_none() => Ok(old),
                    _ => Err(err),
                }
            }
            Err(err) => {
                slot.failure = None;
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
}
