//! The end of `apply`, for people: the closing lines on stdout and the
//! markdown for the job summary.

use super::markdown::{code, escape_text};
use crate::execute::{ApplyReport, EntryStatus};
use crate::report::{count, human_bytes};

/// The closing lines: failures and refusals with their causes, then totals.
pub fn summary_lines(report: &ApplyReport) -> Vec<String> {
    let mut lines = Vec::new();
    for failure in &report.failures {
        let e = &failure.entry;
        lines.push(format!(
            "{} {}/{}:{} <- {}/{}:{}: {}",
            if failure.status == EntryStatus::Refused {
                "refused"
            } else {
                "failed"
            },
            e.target.registry,
            e.target.repository,
            e.target.tag,
            e.source.registry,
            e.source.repository,
            e.source.tag,
            failure.error.as_deref().unwrap_or("")
        ));
    }
    for entry in report
        .entries
        .iter()
        .filter(|e| e.status == EntryStatus::Blocked)
    {
        let e = &entry.entry;
        lines.push(format!(
            "blocked {}/{}:{}: {}",
            e.target.registry,
            e.target.repository,
            e.target.tag,
            e.action.blocked_reason().unwrap_or("")
        ));
    }
    for problem in &report.rule_problems {
        lines.push(match problem.is_error() {
            true => format!("failed {}", problem.message),
            false => problem.to_string(),
        });
    }
    for moved in &report.moved {
        lines.push(format!("moved: deleted the source tag {moved}"));
    }
    for note in &report.notes {
        lines.push(format!("note: {note}"));
    }
    if !report.records.is_empty() {
        lines.push(format!(
            "recorded: {} signed and attached",
            count(
                report.records.len(),
                "promotion record",
                "promotion records"
            )
        ));
    }
    lines.push(summary_line(report));
    lines
}

/// The run's outcome for a CI job summary (`GITHUB_STEP_SUMMARY`): the
/// totals, then each failed or refused entry with its cause.
pub fn summary_markdown(report: &ApplyReport) -> String {
    let mut out = format!(
        "### hoist apply\n\n**{}**\n\n",
        escape_text(&summary_line(report))
    );
    if report.failures.is_empty() {
        return out;
    }
    out.push_str("| Outcome | Target | Source | Error |\n| --- | --- | --- | --- |\n");
    for failure in &report.failures {
        let e = &failure.entry;
        let target = format!(
            "{}/{}:{}",
            e.target.registry, e.target.repository, e.target.tag
        );
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            match failure.status {
                EntryStatus::Refused => "refused",
                _ => "failed",
            },
            code(&target),
            code(&e.source.to_string()),
            escape_text(failure.error.as_deref().unwrap_or(""))
        ));
    }
    out.push('\n');
    out
}

/// The totals: tags promoted, unchanged, failed (and refused, blocked,
/// rules not planned, when any), blobs, requests and time.
fn summary_line(report: &ApplyReport) -> String {
    let s = &report.summary;
    let some = |n: usize, what: String| match n {
        0 => String::new(),
        _ => format!(", {what}"),
    };
    format!(
        "{} promoted, {} unchanged, {} failed{}{}{}; {} copied ({}), {} mounted, {} already present; {}{:.1}s",
        count(s.promoted, "tag", "tags"),
        s.unchanged,
        s.failed,
        some(s.refused, format!("{} refused", s.refused)),
        some(s.blocked, format!("{} blocked", s.blocked)),
        some(
            s.failed_rules,
            format!("{} not planned", count(s.failed_rules, "rule", "rules"))
        ),
        count(s.blobs_copied as usize, "blob", "blobs"),
        human_bytes(s.bytes_copied),
        s.blobs_mounted,
        s.blobs_present,
        if s.requests > 0 {
            format!(
                "{} ({} writing) in ",
                count(s.requests as usize, "request", "requests"),
                s.write_requests
            )
        } else {
            String::new()
        },
        s.duration_secs,
    )
}
