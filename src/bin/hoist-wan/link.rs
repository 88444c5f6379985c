//! The shared link of one direction, the time-weighted gauges, and the
//! counters hoist-wan reports.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One direction's link: bytes leave it one after another at `rate`.
pub struct Link {
    /// Bytes per second; 0 is unlimited.
    rate: f64,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    /// When the last booked byte has left; the link is free from then on.
    free_at: Option<Instant>,
    /// Bytes carried.
    bytes: u64,
    /// Chunks carried.
    chunks: u64,
    /// Time the link spent carrying bytes.
    busy: Duration,
    /// The first chunk's booking, and the last's end.
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Link {
    pub fn new(rate: f64) -> Link {
        Link {
            rate,
            state: Mutex::new(LinkState::default()),
        }
    }

    /// Books `len` bytes ready at `ready`: returns when their last byte has
    /// left the link (the token bucket without burst, kept as a time).
    pub fn book(&self, ready: Instant, len: usize) -> Instant {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let start = s.free_at.map_or(ready, |free| free.max(ready));
        let takes = if self.rate > 0.0 {
            Duration::from_secs_f64(len as f64 / self.rate)
        } else {
            Duration::ZERO
        };
        let end = start + takes;
        s.free_at = Some(end);
        s.bytes += len as u64;
        s.chunks += 1;
        s.busy += takes;
        s.first.get_or_insert(start);
        s.last = Some(end);
        end
    }

    fn json(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let span = match (s.first, s.last) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        let busy = s.busy.as_secs_f64();
        format!(
            "{{\"bytes\": {}, \"chunks\": {}, \"busy_s\": {:.4}, \"span_s\": {:.4}, \
             \"idle_s\": {:.4}, \"utilisation\": {:.4}}}",
            s.bytes,
            s.chunks,
            busy,
            span,
            (span - busy).max(0.0),
            if span > 0.0 { busy / span } else { 0.0 },
        )
    }
}

/// A count that goes up and down, with its peak, how many times it rose,
/// and its mean over the time it was above zero at least once.
#[derive(Default)]
pub struct Gauge {
    state: Mutex<GaugeState>,
}

#[derive(Default)]
struct GaugeState {
    value: i64,
    peak: i64,
    rises: u64,
    /// value × seconds, from `first` to `changed`.
    area: f64,
    /// Seconds the value was above zero.
    above_zero: f64,
    first: Option<Instant>,
    changed: Option<Instant>,
}

impl Gauge {
    pub fn add(&self, delta: i64) {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(changed) = s.changed {
            let elapsed = now.duration_since(changed).as_secs_f64();
            s.area += s.value as f64 * elapsed;
            if s.value > 0 {
                s.above_zero += elapsed;
            }
        }
        s.first.get_or_insert(now);
        s.changed = Some(now);
        if delta > 0 {
            s.rises += delta as u64;
        }
        s.value += delta;
        s.peak = s.peak.max(s.value);
    }

    fn json(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let span = match (s.first, s.changed) {
            (Some(first), Some(changed)) => changed.duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        let mean = |over: f64| if over > 0.0 { s.area / over } else { 0.0 };
        format!(
            "{{\"now\": {}, \"peak\": {}, \"total\": {}, \"span_s\": {:.4}, \
             \"busy_s\": {:.4}, \"mean\": {:.3}, \"mean_when_busy\": {:.3}}}",
            s.value,
            s.peak,
            s.rises,
            span,
            s.above_zero,
            mean(span),
            mean(s.above_zero),
        )
    }
}

/// The counters as one JSON object.
pub fn stats_json(
    links: &[(&str, &Link)],
    gauges: &[(&str, &Gauge)],
    rtt: Duration,
    rate: f64,
) -> String {
    let mut parts = vec![
        format!("\"rtt_ms\": {:.3}", rtt.as_secs_f64() * 1000.0),
        format!("\"mbit\": {:.3}", rate * 8.0 / 1e6),
    ];
    parts.extend(
        links
            .iter()
            .map(|(name, l)| format!("\"{name}\": {}", l.json())),
    );
    parts.extend(
        gauges
            .iter()
            .map(|(name, g)| format!("\"{name}\": {}", g.json())),
    );
    format!("{{{}}}\n", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookings_queue_behind_each_other_at_the_rate() {
        let link = Link::new(1000.0);
        let t = Instant::now();
        assert_eq!(link.book(t, 500), t + Duration::from_millis(500));
        // Ready earlier than the link is free: it waits its turn.
        assert_eq!(link.book(t, 500), t + Duration::from_millis(1000));
        // Ready after the link went idle: starts when ready.
        let later = t + Duration::from_secs(3);
        assert_eq!(link.book(later, 1000), later + Duration::from_secs(1));
        let json = link.json();
        assert!(json.contains("\"bytes\": 2000"), "{json}");
        assert!(json.contains("\"idle_s\": 2.0000"), "{json}");
    }

    #[test]
    fn an_unlimited_link_adds_no_time() {
        let link = Link::new(0.0);
        let t = Instant::now();
        assert_eq!(link.book(t, 1 << 20), t);
    }

    #[test]
    fn a_gauge_counts_rises_and_its_peak() {
        let g = Gauge::default();
        g.add(1);
        g.add(1);
        g.add(-1);
        g.add(1);
        let json = g.json();
        assert!(json.contains("\"peak\": 2"), "{json}");
        assert!(json.contains("\"total\": 3"), "{json}");
        assert!(json.contains("\"now\": 2"), "{json}");
    }
}
