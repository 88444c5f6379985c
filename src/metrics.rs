//! `--metrics FILE`: what a run of `apply` or `verify` did, in the
//! Prometheus text exposition format (version 0.0.4), for node_exporter's
//! textfile collector or a Pushgateway push from the job. Names follow the
//! Prometheus conventions: `hoist_` prefix, `_total` for counts, `_seconds`
//! and `_bytes` units. Each run rewrites the file whole (through a temporary
//! file, so a collector never reads half of it); the last success time is
//! carried over from the previous file when the run failed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::execute::{ApplyReport, EntryStatus};

/// What `verify` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// Target tags checked.
    pub tags: usize,
    /// Problems found.
    pub problems: usize,
}

/// What one run did, as far as it got.
#[derive(Clone, Debug)]
pub struct RunMetrics<'a> {
    /// `apply` or `verify`.
    pub command: &'static str,
    /// The exit status the run ends with.
    pub exit_status: u8,
    /// Seconds the run took.
    pub duration_secs: f64,
    /// `apply`'s report, when it got as far as copying.
    pub report: Option<&'a ApplyReport>,
    /// `verify`'s findings, when it got as far as checking.
    pub verified: Option<Verified>,
}

/// Why the metrics file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing metrics to {path}: {source}")]
pub struct MetricsError {
    /// The file.
    pub path: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Writes `run` to `path`, keeping the last success time of the file there.
pub fn write(path: &Path, run: &RunMetrics<'_>) -> Result<(), MetricsError> {
    let error = |source| MetricsError {
        path: path.display().to_string(),
        source,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let last_success = if run.exit_status == 0 {
        Some(now)
    } else {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| previous_success(&text, run.command))
    };
    let text = render(run, now, last_success);
    let temporary = path.with_extension("prom.tmp");
    std::fs::write(&temporary, text).map_err(error)?;
    std::fs::rename(&temporary, path).map_err(error)
}

/// The exposition text of `run`, finished at `now` (Unix seconds).
pub fn render(run: &RunMetrics<'_>, now: f64, last_success: Option<f64>) -> String {
    let mut out = Exposition::default();
    let command = [("command", run.command.to_string())];
    out.gauge(
        "hoist_last_run_timestamp_seconds",
        "When the last run finished, in Unix seconds.",
        &[(&command[..], now)],
    );
    if let Some(at) = last_success {
        out.gauge(
            "hoist_last_success_timestamp_seconds",
            "When the last run that exited 0 finished, in Unix seconds.",
            &[(&command[..], at)],
        );
    }
    out.gauge(
        "hoist_exit_status",
        "The exit status of the last run (0 success, 1 some image failed, 2 usage).",
        &[(&command[..], f64::from(run.exit_status))],
    );
    out.gauge(
        "hoist_run_duration_seconds",
        "How long the last run took.",
        &[(&command[..], run.duration_secs)],
    );
    if let Some(report) = run.report {
        render_apply(&mut out, report);
    }
    if let Some(verified) = run.verified {
        out.gauge(
            "hoist_verify_tags",
            "Target tags the last verify checked.",
            &[(&command[..], verified.tags as f64)],
        );
        out.gauge(
            "hoist_verify_problems",
            "Problems the last verify found.",
            &[(&command[..], verified.problems as f64)],
        );
    }
    out.text
}

/// The copy counters and per-rule tag counts of an `apply` report.
fn render_apply(out: &mut Exposition, report: &ApplyReport) {
    let mut tags: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    for entry in &report.entries {
        for rule in &entry.entry.rules {
            *tags
                .entry((rule.clone(), status_name(entry.status)))
                .or_default() += 1;
        }
    }
    let labelled: Vec<([(&str, String); 2], f64)> = tags
        .into_iter()
        .map(|((rule, status), n)| ([("rule", rule), ("status", status.to_string())], n as f64))
        .collect();
    let samples: Vec<(&[(&str, String)], f64)> = labelled
        .iter()
        .map(|(labels, n)| (&labels[..], *n))
        .collect();
    out.counter(
        "hoist_tags_total",
        "Target tags of the last run, by rule and outcome (promoted, unchanged, blocked, refused, failed).",
        &samples,
    );
    let s = &report.summary;
    let plain: [(&str, &str, f64); 6] = [
        (
            "hoist_blobs_copied_total",
            "Blobs uploaded by the last run.",
            s.blobs_copied as f64,
        ),
        (
            "hoist_blobs_mounted_total",
            "Blobs mounted from another repository by the last run.",
            s.blobs_mounted as f64,
        ),
        (
            "hoist_copied_bytes_total",
            "Blob bytes uploaded by the last run.",
            s.bytes_copied as f64,
        ),
        (
            "hoist_requests_total",
            "HTTP requests the last run made.",
            s.requests as f64,
        ),
        (
            "hoist_write_requests_total",
            "HTTP requests of the last run that wrote.",
            s.write_requests as f64,
        ),
        (
            "hoist_failed_rules_total",
            "Rules the last run could not plan.",
            s.failed_rules as f64,
        ),
    ];
    for (name, help, value) in plain {
        out.counter(name, help, &[(&[], value)]);
    }
}

/// How a tag's outcome is named in the `status` label.
fn status_name(status: EntryStatus) -> &'static str {
    match status {
        EntryStatus::Promoted => "promoted",
        EntryStatus::Unchanged => "unchanged",
        EntryStatus::Pruned => "pruned",
        EntryStatus::Blocked => "blocked",
        EntryStatus::Refused => "refused",
        EntryStatus::Failed => "failed",
    }
}

/// The last success time a previous file recorded for `command`.
fn previous_success(text: &str, command: &str) -> Option<f64> {
    let prefix = format!("hoist_last_success_timestamp_seconds{{command=\"{command}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

/// Exposition text being written, one metric family at a time.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn gauge(&mut self, name: &str, help: &str, samples: &[(&[(&str, String)], f64)]) {
        self.family(name, "gauge", help, samples);
    }

    fn counter(&mut self, name: &str, help: &str, samples: &[(&[(&str, String)], f64)]) {
        self.family(name, "counter", help, samples);
    }

    fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[(&[(&str, String)], f64)]) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.text, "{name}{} {}", label_set(labels), number(*value));
        }
    }
}

/// `{a="x",b="y"}`, values escaped as the format says; empty without labels.
fn label_set(labels: &[(&str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// A sample value: integers without a fraction, others as Rust writes them.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_numbers_plain() {
        assert_eq!(
            label_set(&[("rule", "a\"b\\c\nd".to_string())]),
            r#"{rule="a\"b\\c\nd"}"#
        );
        assert_eq!(number(3.0), "3");
        assert_eq!(number(1.5), "1.5");
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_time() {
        let run = RunMetrics {
            command: "apply",
            exit_status: 0,
            duration_secs: 1.25,
            report: None,
            verified: None,
        };
        let first = render(&run, 1000.0, Some(1000.0));
        assert_eq!(previous_success(&first, "apply"), Some(1000.0));
        assert_eq!(previous_success(&first, "verify"), None);
        let failed = RunMetrics {
            exit_status: 1,
            ..run
        };
        let text = render(&failed, 2000.0, previous_success(&first, "apply"));
        assert!(text.contains("hoist_last_success_timestamp_seconds{command=\"apply\"} 1000\n"));
        assert!(text.contains("hoist_last_run_timestamp_seconds{command=\"apply\"} 2000\n"));
        assert!(text.contains("hoist_exit_status{command=\"apply\"} 1\n"));
        assert!(text.contains("# TYPE hoist_run_duration_seconds gauge\n"));
    }
}
