//! What a running `apply` shows: on a terminal an indicatif display (images
//! done of total, bytes, throughput) with log lines above it; elsewhere one
//! plain line per finished image, and with `--progress always` a plain
//! status line at a steady rate besides (as cargo and uv print in CI).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report;

/// When to draw progress bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal.
    #[default]
    Auto,
    /// Bars always.
    Always,
    /// Plain lines only (CI).
    Never,
}

/// How often `--progress always` prints its status line where stderr is
/// not a terminal; `HOIST_PROGRESS_INTERVAL_MS` changes it.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// The display of one run.
pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    plain: Option<Plain>,
}

/// `--progress always` without a terminal: a status line now and then, by
/// a thread of its own, besides the per-image lines.
struct Plain {
    counts: Arc<PlainCounts>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct PlainCounts {
    images: u64,
    done: AtomicU64,
    bytes_estimate: u64,
    bytes: AtomicU64,
    started: Instant,
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl PlainCounts {
    fn line(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let rate = bytes as f64 / elapsed.as_secs_f64().max(0.001);
        format!(
            "progress: {}/{} images, {} of ~{}, {}/s, {:.0}s",
            self.done.load(Ordering::Relaxed),
            self.images,
            report::human_bytes(bytes),
            report::human_bytes(self.bytes_estimate.max(bytes)),
            report::human_bytes(rate as u64),
            elapsed.as_secs_f64()
        )
    }
}

impl Plain {
    fn start(images: u64, bytes: u64) -> Plain {
        let interval = std::env::var("HOIST_PROGRESS_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map_or(PLAIN_INTERVAL, Duration::from_millis);
        let counts = Arc::new(PlainCounts {
            images,
            done: AtomicU64::new(0),
            bytes_estimate: bytes,
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        report::log(&counts.line());
        let ticking = counts.clone();
        let ticker = std::thread::spawn(move || {
            let mut stopped = ticking.stopped.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                let (guard, timeout) = ticking
                    .wake
                    .wait_timeout(stopped, interval)
                    .unwrap_or_else(|p| p.into_inner());
                stopped = guard;
                if *stopped {
                    return;
                }
                if timeout.timed_out() {
                    report::log(&ticking.line());
                }
            }
        });
        Plain {
            counts,
            ticker: Mutex::new(Some(ticker)),
        }
    }

    fn stop(&self) {
        *self
            .counts
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = true;
        self.counts.wake.notify_all();
        let ticker = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(ticker) = ticker {
            let _ = ticker.join();
        }
    }
}

impl Progress {
    /// A display for `images` images and about `bytes` bytes.
    pub fn new(mode: ProgressMode, images: u64, bytes: u64) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let draw = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => terminal,
        };
        if !draw || images == 0 {
            return Progress {
                bars: None,
                plain: None,
            };
        }
        if !terminal {
            // Bars drawn nowhere would swallow the per-image lines.
            return Progress {
                bars: None,
                plain: Some(Plain::start(images, bytes)),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let images_bar = multi.add(ProgressBar::new(images));
        images_bar.set_style(
            ProgressStyle::with_template("{prefix:>7} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        images_bar.set_prefix("images");
        let bytes_bar = multi.add(ProgressBar::new(bytes.max(1)));
        bytes_bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>7} [{bar:30}] {binary_bytes}/~{binary_total_bytes} {binary_bytes_per_sec} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bytes_bar.set_prefix("bytes");
        images_bar.enable_steady_tick(Duration::from_millis(250));
        report::set_progress(Some(multi.clone()));
        Progress {
            bars: Some((multi, images_bar, bytes_bar)),
            plain: None,
        }
    }

    /// Whether bars are drawn.
    pub fn is_drawn(&self) -> bool {
        self.bars.is_some()
    }

    /// Blob bytes streamed.
    pub fn bytes(&self, n: u64) {
        if let Some(plain) = &self.plain {
            plain.counts.bytes.fetch_add(n, Ordering::Relaxed);
        }
        if let Some((_, _, bytes)) = &self.bars {
            if bytes.position() + n > bytes.length().unwrap_or(0) {
                bytes.set_length(bytes.position() + n);
            }
            bytes.inc(n);
        }
    }

    /// One image finished; `line` describes it.
    pub fn image_done(&self, line: &str, failed: bool) {
        if let Some(plain) = &self.plain {
            plain.counts.done.fetch_add(1, Ordering::Relaxed);
        }
        match &self.bars {
            Some((_, images, _)) => {
                images.inc(1);
                if failed {
                    report::log(line);
                } else {
                    images.set_message(line.to_string());
                }
            }
            None => report::log(line),
        }
    }

    /// Removes the display; later log lines go straight to stderr.
    pub fn finish(&self) {
        if let Some(plain) = &self.plain {
            plain.stop();
        }
        if let Some((multi, images, bytes)) = &self.bars {
            images.finish_and_clear();
            bytes.finish_and_clear();
            let _ = multi.clear();
            report::set_progress(None);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
