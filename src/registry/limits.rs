//! Politeness towards one registry, shared by every thread that talks to it:
//! a cap on concurrent operations, an optional request rate, a cooldown that
//! a 429 imposes on everyone, and the retry schedule (exponential backoff
//! with jitter).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest single backoff, whatever the attempt number.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured; a registry asking for more waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// Limiters this thread holds a permit of, so a nested operation on the
    /// same registry (a blob read feeding an upload) does not wait for itself.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// How often and how patiently a request is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first backoff; each retry doubles it.
    pub base: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// `retries` retries from the default base; `HOIST_RETRY_BASE_MS` sets the
    /// base (tests that inject faults do not want to wait half a second a retry).
    pub fn new(retries: u32) -> RetryPolicy {
        let base = std::env::var("HOIST_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(RetryPolicy::default().base, Duration::from_millis);
        RetryPolicy { retries, base }
    }

    /// The pause before retry number `attempt` (0 for the first retry):
    /// `base · 2^attempt`, capped, scaled by a random factor in [0.5, 1.5).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_BACKOFF);
        exponential.mul_f64(0.5 + jitter())
    }
}

/// A number in [0, 1), different on every call and every thread.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        ^ u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos(),
        );
    // splitmix64 finaliser
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses `Retry-After`: delay-seconds (an HTTP date is not worth a date
/// parser here; the caller falls back to its own backoff).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// The shared limits of one registry.
#[derive(Debug)]
pub struct Limits {
    id: usize,
    max_connections: Option<usize>,
    in_use: Mutex<usize>,
    freed: Condvar,
    /// Minimum spacing of requests, from `requests_per_second`.
    interval: Option<Duration>,
    /// When the next request may start (rate limit and 429 cooldown together).
    next_slot: Mutex<Instant>,
    /// 429 answers seen.
    throttled: AtomicU64,
}

impl Limits {
    /// Limits allowing `max_connections` concurrent operations (unbounded
    /// when `None`) and at most `requests_per_second`.
    pub fn new(max_connections: Option<usize>, requests_per_second: Option<f64>) -> Limits {
        Limits {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            max_connections: max_connections.map(|m| m.max(1)),
            in_use: Mutex::new(0),
            freed: Condvar::new(),
            interval: requests_per_second
                .filter(|r| *r > 0.0 && r.is_finite())
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next_slot: Mutex::new(Instant::now()),
            throttled: AtomicU64::new(0),
        }
    }

    /// Waits for a free connection slot. A thread already holding one of
    /// this registry's permits gets a free nested one.
    pub fn permit(&self) -> Permit<'_> {
        let nested = HELD.with(|held| held.borrow().contains(&self.id));
        if let (Some(max), false) = (self.max_connections, nested) {
            let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
            while *in_use >= max {
                in_use = self.freed.wait(in_use).unwrap_or_else(|p| p.into_inner());
            }
            *in_use += 1;
        }
        HELD.with(|held| held.borrow_mut().push(self.id));
        Permit {
            limits: self,
            counted: self.max_connections.is_some() && !nested,
            _thread_bound: std::marker::PhantomData,
        }
    }

    /// Waits until a request may be sent: after any cooldown, and spaced by
    /// the rate limit.
    pub fn pace(&self) {
        let wait = {
            let mut next = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + self.interval.unwrap_or_default();
            start - now
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// A 429: nobody sends to this registry for `pause`.
    pub fn cool_down(&self, pause: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut next = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
        let until = Instant::now() + pause;
        if *next < until {
            *next = until;
        }
    }

    /// 429 answers seen so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

/// A held connection slot; released on drop. Drop it on the thread that took it.
#[derive(Debug)]
pub struct Permit<'a> {
    limits: &'a Limits,
    counted: bool,
    /// Not `Send`: the held-slots list is per thread.
    _thread_bound: std::marker::PhantomData<*const ()>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(i) = held.iter().rposition(|id| *id == self.limits.id) {
                held.remove(i);
            }
        });
        if self.counted {
            let mut in_use = self.limits.in_use.lock().unwrap_or_else(|p| p.into_inner());
            *in_use -= 1;
            self.limits.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let policy = RetryPolicy {
            retries: 10,
            base: Duration::from_millis(100),
        };
        for attempt in 0..4 {
            let nominal = 100.0 * f64::from(1u32 << attempt);
            let ms = policy.backoff(attempt).as_secs_f64() * 1000.0;
            assert!(ms >= nominal * 0.5 && ms < nominal * 1.5, "{attempt}: {ms}");
        }
        assert!(policy.backoff(30) < MAX_BACKOFF.mul_f64(1.5));
        let samples: std::collections::BTreeSet<_> = (0..20).map(|_| policy.backoff(2)).collect();
        assert!(samples.len() > 10, "jitter varies");
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("100000"), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn connection_cap_holds_across_threads_and_nests() {
        let limits = Arc::new(Limits::new(Some(2), None));
        let peak = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (limits, peak, now) = (limits.clone(), peak.clone(), now.clone());
                std::thread::spawn(move || {
                    let _outer = limits.permit();
                    // A nested operation on the same registry does not deadlock.
                    let _inner = limits.permit();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn rate_limit_spaces_requests_and_cooldown_pauses_everyone() {
        let limits = Limits::new(None, Some(100.0));
        let started = Instant::now();
        for _ in 0..6 {
            limits.pace();
        }
        assert!(started.elapsed() >= Duration::from_millis(45));
        limits.cool_down(Duration::from_millis(80));
        let paused = Instant::now();
        limits.pace();
        assert!(paused.elapsed() >= Duration::from_millis(70));
        assert_eq!(limits.throttled(), 1);
    }
}
