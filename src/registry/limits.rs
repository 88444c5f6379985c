//! Politeness towards one registry, shared by every thread that talks to it:
//! a cap on concurrent operations (`max_connections`, else found by
//! [`Adaptive`]), an optional request rate, and a cooldown that a 429
//! imposes on everyone. How often to retry is `retry`'s business.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::adaptive::Adaptive;

/// The most cheap requests at once an adaptive limit grows to.
pub const ADAPTIVE_CEILING: usize = 64;
/// The most blob streams at once an adaptive limit grows to: each holds
/// buffers of two connections, so this bounds memory too.
pub const STREAMS_CEILING: usize = 40;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// Limiters this thread holds a permit of, so a nested operation on the
    /// same registry (a blob read feeding an upload) does not wait for itself.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The shared limits of one registry.
#[derive(Debug)]
pub struct Limits {
    id: usize,
    max_connections: Option<usize>,
    /// The limit when `max_connections` is not set.
    adaptive: Adaptive,
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
    /// Limits allowing `max_connections` concurrent operations (found by
    /// [`Adaptive`] when `None`) and at most `requests_per_second`.
    pub fn new(max_connections: Option<usize>, requests_per_second: Option<f64>) -> Limits {
        Limits::adapting(
            max_connections,
            requests_per_second,
            Adaptive::new(super::adaptive::INITIAL_CHEAP, ADAPTIVE_CEILING),
        )
    }

    /// Limits for blob streams: [`Limits::new`] without a rate, adapting
    /// from fewer at once, to fewer.
    pub fn for_streams(max_connections: Option<usize>) -> Limits {
        let adaptive = Adaptive::new(super::adaptive::INITIAL, STREAMS_CEILING);
        Limits::adapting(max_connections, None, adaptive)
    }

    fn adapting(
        max_connections: Option<usize>,
        requests_per_second: Option<f64>,
        adaptive: Adaptive,
    ) -> Limits {
        Limits {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            max_connections: max_connections.map(|m| m.max(1)),
            adaptive,
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
        if !nested {
            let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
            while *in_use >= self.limit() {
                in_use = self.freed.wait(in_use).unwrap_or_else(|p| p.into_inner());
            }
            *in_use += 1;
            if self.max_connections.is_none() {
                self.adaptive.started(*in_use);
            }
        }
        HELD.with(|held| held.borrow_mut().push(self.id));
        Permit {
            limits: self,
            counted: !nested,
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

    /// How many operations may run at once now.
    pub fn limit(&self) -> usize {
        self.max_connections
            .unwrap_or_else(|| self.adaptive.limit())
    }

    /// The registry is far ([`super::adaptive::FAR`]): an adaptive limit
    /// not judged yet starts higher, and waiters may go.
    pub fn far(&self) {
        if self.max_connections.is_none() && self.adaptive.far() {
            let _in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
            self.freed.notify_all();
        }
    }

    /// A request got no answer in time (or its connection broke): an
    /// adaptive limit backs off.
    pub fn congested(&self) {
        self.adaptive.congested();
    }

    /// A 429: nobody sends to this registry for `pause`, and an adaptive
    /// limit backs off.
    pub fn cool_down(&self, pause: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.adaptive.congested();
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
            let grew = self.limits.max_connections.is_none() && self.limits.adaptive.completed();
            // One slot is free; after a growth, more are: everyone looks again.
            if grew {
                self.limits.freed.notify_all();
            } else {
                self.limits.freed.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn connection_cap_holds_across_threads_and_nests() {
        use std::sync::mpsc::channel;
        let limits = Arc::new(Limits::new(Some(2), None));
        let (got, permits) = channel();
        // Each holder takes a permit, then one nested in it (which must not
        // deadlock), and holds both until told to let go.
        let holder = |name: &'static str| {
            let (limits, got) = (limits.clone(), got.clone());
            let (release, released) = channel::<()>();
            let thread = std::thread::spawn(move || {
                let _outer = limits.permit();
                let _inner = limits.permit();
                got.send(name).expect("sent");
                let _ = released.recv();
            });
            (release, thread)
        };
        let (first, first_thread) = holder("first");
        let (second, second_thread) = holder("second");
        let mut holding = [permits.recv().unwrap(), permits.recv().unwrap()];
        holding.sort();
        assert_eq!(holding, ["first", "second"]);
        let (third, third_thread) = holder("third");
        assert!(
            permits.recv_timeout(Duration::from_millis(200)).is_err(),
            "a third connection while two are held"
        );
        drop(first);
        assert_eq!(permits.recv_timeout(Duration::from_secs(5)), Ok("third"));
        drop((second, third));
        for thread in [first_thread, second_thread, third_thread] {
            thread.join().unwrap();
        }
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
