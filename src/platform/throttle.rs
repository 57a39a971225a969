//! `spec.requestsPerSecond` of an ApiClient: one limiter per ApiClient, shared by every RemoteJob
//! reconcile that calls its platform (creates, polls, batched lists, cancels, the retry after a 401).
//! GCRA with a burst of one: calls leave at least 1/n s apart, so no second holds more than n of them.
//! A permit covers one adapter call: the pages of a large Run:ai listing (500 workloads a page) or
//! DAI legacy's progress-then-abort follow their first request without waiting again.
//! Token requests are not counted: they go to the identity provider, and the token cache already
//! keeps them rare.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Limiters unused this long are dropped (their ApiClient was deleted or lost its limit).
const IDLE: Duration = Duration::from_secs(600);

struct Slot {
    rate: u32,
    limiter: Arc<DefaultDirectRateLimiter>,
    used: Instant,
}

#[derive(Default)]
pub struct Throttles {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Pure: the limit `spec.requestsPerSecond` asks for (`None`: unlimited).
pub fn rate_of(requests_per_second: Option<i32>) -> Option<NonZeroU32> {
    requests_per_second
        .and_then(|r| u32::try_from(r).ok())
        .and_then(NonZeroU32::new)
}

impl Throttles {
    /// The limiter of the ApiClient `key` (its uid), the same one for every caller while its limit
    /// (`requests_per_second`) stays the same.
    pub fn limiter(
        &self,
        key: &str,
        requests_per_second: Option<i32>,
    ) -> Option<Arc<DefaultDirectRateLimiter>> {
        let rate = rate_of(requests_per_second)?;
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|_, s| now.duration_since(s.used) < IDLE);
        // No burst: at most one request in hand.
        let fresh = || {
            let quota = Quota::per_second(rate).allow_burst(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(quota))
        };
        let slot = slots.entry(key.to_string()).or_insert_with(|| Slot {
            rate: rate.get(),
            limiter: fresh(),
            used: now,
        });
        if slot.rate != rate.get() {
            (slot.rate, slot.limiter) = (rate.get(), fresh());
        }
        slot.used = now;
        Some(slot.limiter.clone())
    }

    /// How many ApiClients have a live limiter (for tests).
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_limiter_per_client_and_limit() {
        let t = Throttles::default();
        assert!(t.limiter("u1", None).is_none(), "no limit, no limiter");
        let a = t.limiter("u1", Some(2)).unwrap();
        let b = t.limiter("u1", Some(2)).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "callers share one limiter");
        let c = t.limiter("u1", Some(5)).unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "a new limit, a new limiter");
        t.limiter("u2", Some(1)).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn requests_leave_one_at_a_time() {
        let t = Throttles::default();
        let l = t.limiter("u", Some(10)).unwrap();
        assert!(l.check().is_ok(), "the first goes at once");
        assert!(l.check().is_err(), "no burst: the second waits 1/n s");
    }

    #[tokio::test]
    async fn waiting_callers_are_spaced_out() {
        let t = Throttles::default();
        let l = t.limiter("u", Some(20)).unwrap();
        let start = Instant::now();
        for _ in 0..5 {
            l.until_ready().await;
        }
        // Five requests at 20/s: the last leaves 4 × 50 ms after the first.
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "{:?}",
            start.elapsed()
        );
    }
}
