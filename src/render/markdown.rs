//! The plan as a pull request or a CI job page shows it (GitHub, GitLab):
//! the summary first, then rule problems and blocked entries (what a
//! reviewer must look at), then one collapsed section per target
//! repository, so that 2,000 entries stay readable.

use std::fmt::Write;

use super::table::{by_target_repository, rules_remark, work_line};
use crate::plan::{Action, Plan, PlanEntry, SkippedTag, Summary, Transfer, summarize};
use crate::report::count;

/// The most characters a GitHub pull request comment takes.
pub const COMMENT_LIMIT: usize = 65_536;

/// Room kept for the closing note when sections are left out.
const NOTE_ROOM: usize = 600;

/// What the markdown lists: unchanged entries too, or only their count;
/// and how long it may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkdownOptions {
    /// List unchanged entries in the repository sections (`--verbose`).
    pub verbose: bool,
    /// The page stays under this many characters (`--max-chars`): what
    /// does not fit is counted, not listed.
    pub max_chars: usize,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            verbose: false,
            max_chars: COMMENT_LIMIT,
        }
    }
}

/// Renders the plan as GitHub- and GitLab-flavoured markdown, within
/// `options.max_chars` (counted in bytes, which are never fewer): the
/// summary, rule problems and as many blocked entries as fit come first;
/// then repository sections in order while they fit; the rest is counted
/// in a closing note.
pub fn render_markdown(plan: &Plan, options: MarkdownOptions) -> String {
    let budget = options.max_chars.saturating_sub(NOTE_ROOM);
    let mut out = String::from("### hoist plan\n\n");
    render_summary(&mut out, plan);
    render_rule_problems(&mut out, plan);
    render_blocked(&mut out, &plan.entries, budget);
    let mut left_out: Vec<&PlanEntry> = Vec::new();
    let mut sections_left_out = 0;
    for (heading, entries) in by_target_repository(&plan.entries) {
        // Once one section did not fit, the rest are only counted.
        if sections_left_out == 0 {
            let mut section = String::new();
            render_repository(&mut section, &heading, &entries, options);
            if out.len() + section.len() <= budget {
                out.push_str(&section);
                continue;
            }
        }
        sections_left_out += 1;
        left_out.extend(entries);
    }
    let mut skipped = String::new();
    render_skipped(&mut skipped, &plan.skipped);
    let skipped_left_out = if sections_left_out == 0 && out.len() + skipped.len() <= budget {
        out.push_str(&skipped);
        0
    } else {
        plan.skipped.len()
    };
    render_left_out(
        &mut out,
        &left_out,
        sections_left_out,
        skipped_left_out,
        options,
    );
    out
}

/// The closing note: what did not fit, counted.
fn render_left_out(
    out: &mut String,
    entries: &[&PlanEntry],
    sections: usize,
    skipped: usize,
    options: MarkdownOptions,
) {
    let mut parts = Vec::new();
    if sections > 0 {
        let summary = summarize(entries.iter().copied(), 0);
        parts.push(format!(
            "{} ({})",
            count(
                sections,
                "more target repository",
                "more target repositories"
            ),
            section_counts(&summary)
        ));
    }
    if skipped > 0 {
        parts.push(count(skipped, "skipped source tag", "skipped source tags"));
    }
    if parts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "**Not listed: {}**, to keep this page under {} characters (`--max-chars`). \
         `hoist plan` lists every entry, and the plan file (`--out`) holds them all.\n",
        parts.join(" and "),
        options.max_chars
    );
}

/// The counts by action in bold, then the expected work.
fn render_summary(out: &mut String, plan: &Plan) {
    let _ = writeln!(
        out,
        "**Plan: {}**{}.\n",
        counts(&plan.summary),
        rules_remark(plan)
    );
    if let Some(work) = work_line(plan) {
        let _ = writeln!(out, "{work}\n");
    }
}

/// `6 to create, 1 to update, 1 unchanged, 2 blocked, 2 skipped`.
fn counts(s: &Summary) -> String {
    format!(
        "{} to create, {} to update, {} unchanged, {}{} blocked, {} skipped",
        s.create,
        s.update,
        s.unchanged,
        crate::render::pruned_count(s),
        s.blocked,
        s.skipped
    )
}

/// Rules that matched nothing: errors first, in bold, since the run fails.
fn render_rule_problems(out: &mut String, plan: &Plan) {
    if plan.rule_problems.is_empty() {
        return;
    }
    let _ = writeln!(out, "#### Rule problems\n");
    let (errors, warnings): (Vec<_>, Vec<_>) =
        plan.rule_problems.iter().partition(|p| p.is_error());
    for problem in errors {
        let _ = writeln!(
            out,
            "- **error** (the run fails): {}",
            escape_text(&problem.message)
        );
    }
    for problem in warnings {
        let _ = writeln!(out, "- warning: {}", escape_text(&problem.message));
    }
    out.push('\n');
}

/// Every blocked entry with its reason, outside any collapsed section, as
/// long as `out` stays within `budget`; the rest counted.
fn render_blocked(out: &mut String, entries: &[PlanEntry], budget: usize) {
    let blocked: Vec<(&PlanEntry, &str)> = entries
        .iter()
        .filter_map(|e| e.action.blocked_reason().map(|reason| (e, reason)))
        .collect();
    if blocked.is_empty() {
        return;
    }
    let _ = writeln!(out, "#### Blocked ({})\n", blocked.len());
    let _ = writeln!(out, "| Target | Source | Digest | Reason |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    let total = blocked.len();
    for (listed, (entry, reason)) in blocked.into_iter().enumerate() {
        let target = format!(
            "{}/{}:{}",
            entry.target.registry, entry.target.repository, entry.target.tag
        );
        let row = format!(
            "| {} | {} | {} | {} |\n",
            code(&target),
            code(&entry.source.to_string()),
            code(&entry.source.digest.short()),
            escape_text(reason)
        );
        if out.len() + row.len() > budget {
            let _ = writeln!(
                out,
                "\n{} not listed here.",
                count(total - listed, "more blocked entry", "more blocked entries")
            );
            break;
        }
        out.push_str(&row);
    }
    out.push('\n');
}

/// One collapsed section: its counts in the summary, a table of its
/// entries (unchanged ones only counted unless `verbose`).
fn render_repository(
    out: &mut String,
    heading: &str,
    entries: &[&PlanEntry],
    options: MarkdownOptions,
) {
    let summary = summarize(entries.iter().copied(), 0);
    let _ = writeln!(
        out,
        "<details>\n<summary><code>{}</code>: {}</summary>\n",
        escape_html(heading),
        section_counts(&summary)
    );
    let listed: Vec<&&PlanEntry> = entries
        .iter()
        .filter(|e| options.verbose || !matches!(e.action, Action::Unchanged { kept_at: None }))
        .collect();
    if !listed.is_empty() {
        let _ = writeln!(out, "| Action | Tag | Source | Digest | Rules | Notes |");
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
        for entry in &listed {
            render_row(out, entry);
        }
        out.push('\n');
    }
    let hidden = entries.len() - listed.len();
    if hidden > 0 {
        let _ = writeln!(
            out,
            "{} not listed (`--verbose` lists them).\n",
            count(hidden, "unchanged tag", "unchanged tags")
        );
    }
    out.push_str("</details>\n\n");
}

/// `2 to create, 1 unchanged`: the non-zero counts of one section.
fn section_counts(s: &Summary) -> String {
    let parts: Vec<String> = [
        (s.create, "to create"),
        (s.update, "to update"),
        (s.unchanged, "unchanged"),
        (s.prune, "to prune"),
        (s.blocked, "blocked"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    parts.join(", ")
}

/// One entry as a table row.
fn render_row(out: &mut String, entry: &PlanEntry) {
    let action = match &entry.action {
        Action::Create => "➕ create",
        Action::Update => "🔄 update",
        Action::Unchanged { .. } => "unchanged",
        Action::Prune { .. } => "➖ prune",
        Action::Blocked { .. } => "⛔ blocked",
    };
    let _ = writeln!(
        out,
        "| {action} | {} | {} | {} | {} | {} |",
        code(&entry.target.tag),
        code(&entry.source.to_string()),
        code(&entry.source.digest.short()),
        escape_text(&entry.rules.join(", ")),
        escape_text(&notes(entry).join("; ")),
    );
}

/// What the table's remarks say, one note each.
fn notes(entry: &PlanEntry) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(filtered) = &entry.target.digest {
        notes.push(format!(
            "writes {} ({})",
            filtered.short(),
            crate::platform::join(&entry.travel.platforms)
        ));
    }
    if entry.travel.mode == Transfer::Move {
        notes.push("move".into());
    }
    if entry.action == Action::Update
        && let Some(current) = &entry.target.current_digest
    {
        notes.push(format!("was {}", current.short()));
    }
    if let Some(remark) = entry.remark() {
        notes.push(remark);
    }
    notes
}

/// The source tags that cannot be promoted, collapsed.
fn render_skipped(out: &mut String, skipped: &[SkippedTag]) {
    if skipped.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<details>\n<summary>Skipped: {}</summary>\n",
        count(skipped.len(), "source tag", "source tags")
    );
    let _ = writeln!(out, "| Source | Rule | Reason |");
    let _ = writeln!(out, "| --- | --- | --- |");
    for s in skipped {
        let source = match s.tag.is_empty() {
            true => format!("{}/{}", s.registry, s.repository),
            false => format!("{}/{}:{}", s.registry, s.repository, s.tag),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            code(&source),
            escape_text(&s.rule),
            escape_text(&s.reason)
        );
    }
    out.push_str("\n</details>\n\n");
}

/// A value as inline code in a table cell: `|` escaped (GitHub and GitLab
/// split cells before reading code spans); a value with a backtick or a
/// line break becomes escaped text instead.
pub fn code(value: &str) -> String {
    if value.is_empty() || value.contains(['`', '\n', '\r']) {
        return escape_text(value);
    }
    format!("`{}`", value.replace('|', "\\|"))
}

/// Text for a markdown paragraph or table cell: markdown punctuation,
/// HTML and `|` backslash-escaped, line breaks made spaces.
pub fn escape_text(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' | '\r' => escaped.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' | '$'
            | '@' => {
                escaped.push('\\');
                escaped.push(c);
            }
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Text inside HTML (`<summary>`): `&`, `<`, `>` and quotes as entities.
pub fn escape_html(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
#[path = "markdown_tests.rs"]
mod tests;
