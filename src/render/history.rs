//! `hoist history`, for people: each image of the reference, then one line
//! per promotion record, oldest first.

use std::fmt::Write as _;

use crate::record::{ImageHistory, RecordLine};

/// The history of `reference`'s images as text.
pub fn render_history(reference: &str, images: &[ImageHistory]) -> String {
    let mut out = String::new();
    if images.is_empty() {
        let _ = writeln!(out, "{reference}: no image");
        return out;
    }
    for image in images {
        let tags = match image.tags.as_slice() {
            [] => String::new(),
            tags => format!(" ({})", tags.join(", ")),
        };
        let _ = writeln!(out, "{reference}@{}{tags}", image.digest);
        if image.records.is_empty() {
            let _ = writeln!(out, "  no promotion record");
        }
        for line in &image.records {
            let _ = writeln!(out, "  {}", record_line(line));
        }
    }
    out
}

fn record_line(line: &RecordLine) -> String {
    let signature = match (&line.verified, &line.verified_by) {
        (Some(true), Some(key)) => format!("verified ({key})"),
        (Some(false), _) => "NOT VERIFIED by the keys given".to_string(),
        _ => "signature not checked (no --key)".to_string(),
    };
    let Some(p) = &line.promotion else {
        let why = line.unreadable.as_deref().unwrap_or("unreadable");
        return format!("record {}: {why}", line.record.short());
    };
    let run = p
        .run
        .as_ref()
        .map(|run| format!(", run {}", run.url))
        .unwrap_or_default();
    let plan = p
        .plan_digest
        .as_ref()
        .map(|d| format!(", plan {d}"))
        .unwrap_or_default();
    let gate = p
        .gate
        .as_ref()
        .map(|g| format!(", admitted by {} ({})", g.rule, g.verified_by))
        .unwrap_or_default();
    format!(
        "{}  {} -> tags {} from {} (registry `{}`) by rule {}{run}{plan}{gate}: {signature}",
        p.timestamp,
        p.target.registry,
        p.tags.join(", "),
        p.src_ref,
        p.source.registry,
        p.rules.join(", "),
    )
}
