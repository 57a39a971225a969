//! TokenCache: one entry per ApiClient, keyed so a spec or Secret change invalidates it; refresh ahead of
//! expiry; concurrent callers share one in-flight refresh; a token the platform refused (401) is
//! refreshed once, however many callers report it; a token endpoint that keeps failing is asked again
//! only on a backoff schedule, however many reconciles (of either controller) ask for a token meanwhile.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
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
    exp.checked_sub(jiff::SignedDuration::try_from(margin).ok()?)
        .ok()
}

/// Pure: a token may be handed out (until it expires, even when a refresh is due but failing).
pub fn usable(token: &Token, now: Timestamp) -> bool {
    token.expires_at.is_none_or(|e| e > now)
}

/// The shortest and the longest wait before a failing token endpoint is asked again.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);

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

/// Wall-clock form of a monotonic instant (for status and requeues).
fn wall(at: Instant) -> Timestamp {
    let now = Timestamp::now();
    now.checked_add(at.saturating_duration_since(Instant::now()))
        .unwrap_or(now)
}

/// A refresh that failed transiently: until `next_try` callers get `error` (or the still-valid token)
/// without a request. `since` is the first failure of the run, kept across the token's expiry so
/// the backoff does not start over when the old token lapses.
/// Monotonic time, so that a step of the wall clock neither stretches nor skips the backoff.
struct Failure {
    since: Instant,
    next_try: Instant,
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

    /// The entry of `id` whatever its version; one at `version` if there is none.
    fn current_entry(&self, id: &str, version: &str) -> Arc<Entry> {
        let existing = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        existing.unwrap_or_else(|| self.entry(id, version))
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

    /// Whether ApiClient `id` has a token that has not expired, whatever version it was cached at
    /// (an ApiClient being deleted keeps cancelling with it).
    pub async fn holds_usable(&self, id: &str) -> bool {
        let e = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        match e {
            Some(e) => e
                .slot
                .lock()
                .await
                .token
                .as_ref()
                .is_some_and(|t| usable(t, Timestamp::now())),
            None => false,
        }
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
        slot.failure.as_ref().map(|f| wall(f.next_try))
    }

    /// A token for ApiClient `id` at `version` (generation + Secret version): the cached one while it is
    /// not due, otherwise one from `fetch` (called by one caller at a time; the others wait and share).
    /// `refused`: the bearer a platform just answered 401 to — refreshed unless someone already did.
    /// When a refresh fails transiently, a cached token that has not expired is still returned (`Ok`)
    /// and the endpoint is not asked again before the backoff allows ([`TokenCache::retry_at`]).
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
        Self::get_in(&e, refresh_before, refused, fetch).await
    }

    /// Like [`TokenCache::get`], but with whatever version is cached (`version` only when none is):
    /// for platform calls, which know the version the ApiClient controller last recorded and must
    /// not undo a newer entry that controller has just made (or bounce it back and forth).
    pub async fn get_current<F, Fut>(
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
        let e = self.current_entry(id, version);
        Self::get_in(&e, refresh_before, refused, fetch).await
    }

    async fn get_in<F, Fut>(
        e: &Entry,
        refresh_before: Option<Duration>,
        refused: Option<&SecretString>,
        fetch: F,
    ) -> Result<Token, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, AuthError>>,
    {
        let mut slot = e.slot.lock().await;
        let now = Timestamp::now();
        let old = slot.token.clone().filter(|t| usable(t, now));
        let was_refused = old.as_ref().is_some_and(|t| {
            refused.is_some_and(|r| r.expose_secret() == t.bearer.expose_secret())
        });
        if let Some(t) = &old {
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
        let tick = Instant::now();
        if let Some(f) = slot.failure.as_ref().filter(|f| tick < f.next_try) {
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
                let since = slot.failure.as_ref().map_or(tick, |f| f.since);
                // A bearer the platform refused is no longer handed out, even while it has not
                // expired: the callers would only spend requests on more 401s.
                let old = old.filter(|_| !was_refused);
                if was_refused {
                    slot.token = None;
                }
                let valid_for = old
                    .as_ref()
                    .and_then(|t| t.expires_at)
                    .map(|exp| between(now, exp));
                slot.failure = Some(Failure {
                    since,
                    next_try: tick + retry_after(tick.duration_since(since), valid_for),
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
#[path = "cache_tests.rs"]
mod tests;
