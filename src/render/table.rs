//! The plan as a person reviews it: entries grouped by target repository,
//! one line each, then skipped tags, rules that matched nothing, and a summary.

use std::fmt::Write;

use crate::plan::{Action, Plan, PlanEntry, SkippedTag, Transfer};
use crate::report::{count, human_bytes};

/// Renders the plan table.
pub fn render_table(plan: &Plan) -> String {
    let mut out = String::new();
    let groups = by_target_repository(&plan.entries);
    for (heading, entries) in &groups {
        let _ = writeln!(out, "{heading}");
        render_group(&mut out, entries);
    }
    if !plan.skipped.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        render_skipped(&mut out, &plan.skipped);
    }
    if !plan.rule_problems.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "rule problems");
        for problem in &plan.rule_problems {
            let _ = writeln!(out, "  {problem}");
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    render_summary(&mut out, plan);
    out
}

/// Consecutive entries of one target repository under a
/// `registry/repository` heading; the plan is already in that order.
pub(super) fn by_target_repository(entries: &[PlanEntry]) -> Vec<(String, Vec<&PlanEntry>)> {
    let mut groups: Vec<(String, Vec<&PlanEntry>)> = Vec::new();
    for entry in entries {
        let heading = format!("{}/{}", entry.target.registry, entry.target.repository);
        match groups.last_mut() {
            Some((last, entries)) if *last == heading => entries.push(entry),
            _ => groups.push((heading, vec![entry])),
        }
    }
    groups
}

/// One line per entry, the tag and source columns aligned within the group.
fn render_group(out: &mut String, entries: &[&PlanEntry]) {
    let tag_width = entries
        .iter()
        .map(|e| e.target.tag.len())
        .max()
        .unwrap_or(0);
    let sources: Vec<String> = entries.iter().map(|e| e.source.to_string()).collect();
    let source_width = sources.iter().map(String::len).max().unwrap_or(0);
    for (entry, source) in entries.iter().zip(&sources) {
        let mut line = format!(
            "  {} {:<tag_width$}  <- {:<source_width$}  {}  [{}]",
            entry.action.marker(),
            entry.target.tag,
            source,
            entry.source.digest.short(),
            entry.rules.join(", "),
        );
        push_remarks(&mut line, entry);
        let _ = writeln!(out, "{line}");
    }
}

/// What follows an entry's columns: the filtered index written, a move,
/// the digest an update replaces, and why it is blocked or kept.
fn push_remarks(line: &mut String, entry: &PlanEntry) {
    if let Some(filtered) = &entry.target.digest {
        let _ = write!(
            line,
            " -> {} ({})",
            filtered.short(),
            crate::platform::join(&entry.travel.platforms)
        );
    }
    if entry.travel.mode == Transfer::Move {
        line.push_str(" (move)");
    }
    if entry.action == Action::Update
        && let Some(current) = &entry.target.current_digest
    {
        let _ = write!(line, " (was {})", current.short());
    }
    if let Some(remark) = entry.remark() {
        let _ = write!(line, " {remark}");
    }
}

/// The source tags (or whole repositories) that cannot be promoted, and why.
fn render_skipped(out: &mut String, skipped: &[SkippedTag]) {
    let _ = writeln!(out, "skipped");
    for skipped in skipped {
        let source = if skipped.tag.is_empty() {
            format!("{}/{}", skipped.registry, skipped.repository)
        } else {
            format!(
                "{}/{}:{}",
                skipped.registry, skipped.repository, skipped.tag
            )
        };
        let _ = writeln!(out, "  - {source}  [{}] {}", skipped.rule, skipped.reason);
    }
}

/// `; 1 rule failed, 1 warning` when rules matched nothing, else nothing.
pub(super) fn rules_remark(plan: &Plan) -> String {
    let failed = plan.failed_rules();
    let warnings = plan.rule_problems.len() - failed;
    let mut parts = Vec::new();
    if failed > 0 {
        parts.push(format!("{} failed", count(failed, "rule", "rules")));
    }
    if warnings > 0 {
        parts.push(count(warnings, "warning", "warnings"));
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!("; {}", parts.join(", ")),
    }
}

/// The counts by action, then the expected work when anything changes.
fn render_summary(out: &mut String, plan: &Plan) {
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "Plan: {} to create, {} to update, {} unchanged, {}{} blocked, {} skipped{}.",
        s.create,
        s.update,
        s.unchanged,
        crate::render::pruned_count(s),
        s.blocked,
        s.skipped,
        rules_remark(plan)
    );
    if let Some(work) = work_line(plan) {
        let _ = writeln!(out, "{work}");
    }
}

/// The expected work, when the plan changes anything: one sentence, for
/// the table and the markdown alike.
pub(super) fn work_line(plan: &Plan) -> Option<String> {
    let e = &plan.estimate;
    plan.has_changes().then(|| {
        format!(
            "Work: {} ({}); {}, of which up to {} ({}) to copy and {}{}.",
            count(e.images, "image", "images"),
            count(e.manifests, "manifest", "manifests"),
            count(e.unique_blobs, "blob", "blobs"),
            e.blobs_to_copy,
            human_bytes(e.bytes_to_copy),
            count(e.blobs_to_mount, "mount", "mounts"),
            if e.complete {
                ""
            } else {
                " (partial: some source manifests could not be read)"
            },
        )
    })
}
