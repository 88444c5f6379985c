//! What a running `apply` shows: on a terminal an indicatif display (images
//! done of total, bytes, throughput) with log lines above it; elsewhere one
//! plain line per finished image.

use std::io::IsTerminal;
use std::time::Duration;

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

/// The display of one run.
pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
}

impl Progress {
    /// A display for `images` images and about `bytes` bytes.
    pub fn new(mode: ProgressMode, images: u64, bytes: u64) -> Progress {
        let draw = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        if !draw || images == 0 {
            return Progress { bars: None };
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
        }
    }

    /// Whether bars are drawn.
    pub fn is_drawn(&self) -> bool {
        self.bars.is_some()
    }

    /// Blob bytes streamed.
    pub fn bytes(&self, n: u64) {
        if let Some((_, _, bytes)) = &self.bars {
            if bytes.position() + n > bytes.length().unwrap_or(0) {
                bytes.set_length(bytes.position() + n);
            }
            bytes.inc(n);
        }
    }

    /// One image finished; `line` describes it.
    pub fn image_done(&self, line: &str, failed: bool) {
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
