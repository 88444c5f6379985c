//! A registry's concurrency, found rather than fixed: how many operations
//! run at once against a registry whose `max_connections` is not set.
//!
//! It starts at [`INITIAL`] for blob streams, [`INITIAL_CHEAP`] for cheap
//! requests, and is judged in windows of at least [`WINDOW`]:
//! while the limit was reached in a window (the work wanted more) and the
//! operations completed per second rose by [`GAIN`] over the best window
//! so far, it grows by a quarter (at least 2), up to the ceiling; a window
//! slower than the best by [`LOSS`] after a growth steps back to the limit
//! before it, and growth waits [`PAUSE`] windows. A 429 or a timeout halves
//! it (never below [`FLOOR`]) and starts the judging afresh. Across regions,
//! where each operation waits tens of milliseconds for its round trips, it
//! grows until the link is full; on a registry that is busy (or loopback on
//! a small machine) it stays near where it started. A registry whose first
//! answer shows it is far ([`FAR`]) starts at [`INITIAL_FAR`] instead.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limit a registry's blob streams start at.
pub const INITIAL: usize = 16;
/// The limit a registry's cheap requests start at (more at once from the
/// start costs a TLS handshake each, which on loopback is dearer than the
/// requests).
pub const INITIAL_CHEAP: usize = 16;
/// The limit a far registry starts at, for either kind of operation (never
/// above its ceiling: streams start at theirs): what the default pool
/// (`jobs` = 48) runs at once. Its round trips, not its CPU, bound the
/// work, and starting at 32 instead left the first 100 manifest reads of
/// a cold run at 4 round trips and the first streams short of the link
/// (cold WAN 40 ms, 400 Mbit/s: 3.28–3.34 s at 32, 3.04–3.10 s at 48).
pub const INITIAL_FAR: usize = 48;
/// A registry whose first answer (TCP and TLS handshakes, then the `/v2/`
/// ping: 3 round trips) took this long is far: its round trips, not its
/// CPU, bound the work, and a handshake more costs less than a round trip.
pub const FAR: Duration = Duration::from_millis(60);
/// The limit is never below this.
pub const FLOOR: usize = 2;
/// The shortest window the rate is measured over.
pub const WINDOW: Duration = Duration::from_millis(100);
/// Operations a window needs before it is judged.
const MIN_COMPLETED: u64 = 8;
/// A rate this much above the best so far counts as a gain.
pub const GAIN: f64 = 1.05;
/// A rate this much below the best so far after a growth is a loss.
pub const LOSS: f64 = 0.9;
/// Windows without growth after a step back.
pub const PAUSE: u32 = 4;

/// One registry's adaptive limit.
#[derive(Debug)]
pub struct Adaptive {
    ceiling: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limit: usize,
    /// The limit before the last growth, to step back to.
    before_growth: Option<usize>,
    window_start: Instant,
    completed: u64,
    /// The limit was reached in this window.
    saturated: bool,
    /// The best rate seen at the current limit or below (operations/s).
    best: f64,
    /// Windows left before growth resumes.
    paused: u32,
}

impl Adaptive {
    /// A limit starting at `initial` (or `ceiling`, when lower), at most `ceiling`.
    pub fn new(initial: usize, ceiling: usize) -> Adaptive {
        let ceiling = ceiling.max(FLOOR);
        Adaptive {
            ceiling,
            state: Mutex::new(State {
                limit: initial.clamp(FLOOR, ceiling),
                before_growth: None,
                window_start: Instant::now(),
                completed: 0,
                saturated: false,
                best: 0.0,
                paused: 0,
            }),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// The registry is far ([`FAR`]): a limit not judged yet starts at
    /// [`INITIAL_FAR`] (or its ceiling). Whether it grew.
    pub fn far(&self) -> bool {
        let mut state = self.lock();
        let far = INITIAL_FAR.min(self.ceiling);
        if state.best > 0.0 || state.paused > 0 || state.limit >= far {
            return false;
        }
        state.limit = far;
        true
    }

    /// An operation starts with `in_use` running (itself included).
    pub fn started(&self, in_use: usize) {
        let mut state = self.lock();
        if in_use >= state.limit {
            state.saturated = true;
        }
    }

    /// An operation completed; the window is judged once it is long
    /// enough. Whether the limit grew (so more may start).
    pub fn completed(&self) -> bool {
        let before = self.limit();
        self.completed_at(Instant::now());
        self.limit() > before
    }

    fn completed_at(&self, now: Instant) {
        let mut state = self.lock();
        state.completed += 1;
        let elapsed = now.saturating_duration_since(state.window_start);
        if elapsed < WINDOW || state.completed < MIN_COMPLETED {
            return;
        }
        let rate = state.completed as f64 / elapsed.as_secs_f64();
        let saturated = state.saturated;
        state.window_start = now;
        state.completed = 0;
        state.saturated = false;
        if let Some(before) = state.before_growth
            && rate < state.best * LOSS
        {
            // The last growth made things slower: back, and wait.
            state.limit = before;
            state.before_growth = None;
            state.paused = PAUSE;
            return;
        }
        if rate > state.best * GAIN {
            state.best = rate;
            if state.paused == 0 && saturated && state.limit < self.ceiling {
                state.before_growth = Some(state.limit);
                state.limit = (state.limit + (state.limit / 4).max(2)).min(self.ceiling);
                return;
            }
        }
        state.paused = state.paused.saturating_sub(1);
        state.best = state.best.max(rate);
        // Steady at this limit: a later loss is not this growth's.
        state.before_growth = None;
    }

    /// A 429 or a timeout: half as many at once, judged afresh.
    pub fn congested(&self) {
        let mut state = self.lock();
        state.limit = (state.limit / 2).max(FLOOR);
        state.before_growth = None;
        state.best = 0.0;
        state.completed = 0;
        state.saturated = false;
        state.window_start = Instant::now();
        state.paused = PAUSE;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds one window of `n` completions over `window` to `adaptive`.
    fn window(adaptive: &Adaptive, clock: &mut Instant, n: u64, saturated: bool) {
        if saturated {
            adaptive.started(adaptive.limit());
        }
        // The last completion closes the window.
        let step = WINDOW / n as u32 + Duration::from_nanos(1);
        for _ in 0..n {
            *clock += step;
            adaptive.completed_at(*clock);
        }
    }

    fn adaptive_at(ceiling: usize) -> (Adaptive, Instant) {
        let adaptive = Adaptive::new(INITIAL, ceiling);
        let clock = adaptive.lock().window_start;
        (adaptive, clock)
    }

    #[test]
    fn grows_while_the_rate_grows_and_the_limit_is_reached() {
        let (adaptive, mut clock) = adaptive_at(64);
        assert_eq!(adaptive.limit(), INITIAL);
        // The rate follows the limit (round trips, not the registry, bound it).
        for _ in 0..10 {
            let n = adaptive.limit() as u64 * 4;
            window(&adaptive, &mut clock, n, true);
        }
        assert_eq!(adaptive.limit(), 64, "up to the ceiling");
    }

    #[test]
    fn a_far_registry_starts_higher_unless_already_judged_or_congested() {
        let (adaptive, _) = adaptive_at(64);
        assert!(adaptive.far());
        assert_eq!(adaptive.limit(), INITIAL_FAR);
        assert!(!adaptive.far(), "once");

        let (low_ceiling, _) = adaptive_at(20);
        low_ceiling.far();
        assert_eq!(low_ceiling.limit(), 20, "never above the ceiling");

        let (judged, mut clock) = adaptive_at(64);
        window(&judged, &mut clock, 20, false);
        assert!(!judged.far(), "a limit judged on its own rates keeps them");
        assert_eq!(judged.limit(), INITIAL);

        let (congested, _) = adaptive_at(64);
        congested.congested();
        assert!(!congested.far(), "a 429 or timeout outranks the distance");
        assert_eq!(congested.limit(), INITIAL / 2);
    }

    #[test]
    fn does_not_grow_when_the_work_does_not_fill_the_limit() {
        let (adaptive, mut clock) = adaptive_at(64);
        for i in 0..10 {
            window(&adaptive, &mut clock, 20 + i * 10, false);
        }
        assert_eq!(adaptive.limit(), INITIAL);
    }

    #[test]
    fn steps_back_when_a_growth_makes_things_slower() {
        let (adaptive, mut clock) = adaptive_at(64);
        window(&adaptive, &mut clock, 100, true);
        assert_eq!(adaptive.limit(), 20, "grew from 16");
        // The registry is saturated: more at once is slower.
        window(&adaptive, &mut clock, 80, true);
        assert_eq!(adaptive.limit(), 16, "back where it was faster");
        // And it waits before trying again.
        window(&adaptive, &mut clock, 100, true);
        assert_eq!(adaptive.limit(), 16);
    }

    #[test]
    fn congestion_halves_the_limit_down_to_the_floor() {
        let (adaptive, _) = adaptive_at(64);
        adaptive.congested();
        assert_eq!(adaptive.limit(), 8);
        for _ in 0..5 {
            adaptive.congested();
        }
        assert_eq!(adaptive.limit(), FLOOR);
    }

    #[test]
    fn a_low_ceiling_caps_the_start() {
        let (adaptive, _) = adaptive_at(4);
        assert_eq!(adaptive.limit(), 4);
    }
}
