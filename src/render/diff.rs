//! `plan --diff` for people: the difference between a reviewed plan and a
//! fresh one, as lines for a terminal or a markdown table.

use std::fmt::Write;

use super::markdown::{code, escape_text};
use crate::plan::{Action, MovedEntry, PlanDiff, PlanEntry};

/// `registry/repository:tag` of the target.
fn target_of(entry: &PlanEntry) -> String {
    format!(
        "{}/{}:{}",
        entry.target.registry, entry.target.repository, entry.target.tag
    )
}

/// `create`, `blocked`, …
fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Unchanged { .. } => "unchanged",
        Action::Prune { .. } => "prune",
        Action::Blocked { .. } => "blocked",
    }
}

/// `source sha256:… -> sha256:…; target none -> sha256:…; create -> update`
/// (the source named too when another tag is followed).
fn what_moved(m: &MovedEntry) -> Vec<String> {
    let mut parts = Vec::new();
    let (was, now) = (&m.before.source, &m.after.source);
    if m.source_moved && was.to_string() == now.to_string() {
        parts.push(format!(
            "source {} -> {}",
            was.digest.short(),
            now.digest.short()
        ));
    } else if m.source_moved {
        parts.push(format!(
            "source {was} {} -> {now} {}",
            was.digest.short(),
            now.digest.short()
        ));
    }
    if m.target_moved {
        let short = |d: &Option<crate::digest::Digest>| {
            d.as_ref().map_or_else(|| "none".to_string(), |d| d.short())
        };
        parts.push(format!(
            "target {} -> {}",
            short(&m.before.target.current_digest),
            short(&m.after.target.current_digest)
        ));
    }
    if m.action_changed {
        parts.push(format!(
            "{} -> {}",
            action_name(&m.before.action),
            action_name(&m.after.action)
        ));
    }
    parts
}

/// The difference for a terminal: one line per target tag.
pub fn render_diff_table(diff: &PlanDiff, reviewed: &str) -> String {
    let mut out = String::new();
    let line = |e: &PlanEntry| {
        format!(
            "{}  <- {}  {}  [{}]",
            target_of(e),
            e.source,
            e.source.digest.short(),
            e.rules.join(", ")
        )
    };
    for e in &diff.added {
        let _ = writeln!(out, "  + {} ({})", line(e), action_name(&e.action));
    }
    for e in &diff.removed {
        let _ = writeln!(out, "  - {}", line(e));
    }
    for m in &diff.moved {
        let _ = writeln!(
            out,
            "  ~ {}  {}",
            target_of(&m.after),
            what_moved(m).join("; ")
        );
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "Since {reviewed}: {}.", diff.counts());
    out
}

/// The difference as markdown: the counts, then one table of every change.
pub fn render_diff_markdown(diff: &PlanDiff, reviewed: &str) -> String {
    let mut out = format!(
        "### hoist plan: changes since {}\n\n**{}**.\n\n",
        code(reviewed),
        diff.counts()
    );
    if diff.is_empty() {
        return out;
    }
    out.push_str("| Change | Target | Source | Digest | What moved |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    let mut row = |change: &str, e: &PlanEntry, what: String| {
        let _ = writeln!(
            out,
            "| {change} | {} | {} | {} | {} |",
            code(&target_of(e)),
            code(&e.source.to_string()),
            code(&e.source.digest.short()),
            escape_text(&what)
        );
    };
    for e in &diff.added {
        row("added", e, action_name(&e.action).to_string());
    }
    for e in &diff.removed {
        row("removed", e, String::new());
    }
    for m in &diff.moved {
        row("moved", &m.after, what_moved(m).join("; "));
    }
    out.push('\n');
    out
}
