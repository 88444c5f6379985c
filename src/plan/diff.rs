//! What changed between a reviewed plan and a fresh one (`plan --diff`):
//! target tags added and removed, and those whose source or target digest
//! moved, so a reviewer re-approving a plan reads only the difference.

use std::collections::BTreeMap;
use std::fmt::Write;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::markdown::{code, escape_text};
use super::{Action, Plan, PlanEntry};

/// The difference between a reviewed plan and now, by target tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanDiff {
    /// Target tags only the new plan has.
    pub added: Vec<PlanEntry>,
    /// Target tags only the reviewed plan had.
    pub removed: Vec<PlanEntry>,
    /// Target tags in both whose source, target digest or action changed.
    pub moved: Vec<MovedEntry>,
}

/// One target tag as the reviewed plan had it and as it is now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MovedEntry {
    /// The source image changed (another tag followed, or the tag rebuilt).
    pub source_moved: bool,
    /// The digest the target tag holds changed.
    pub target_moved: bool,
    /// What applying does changed.
    pub action_changed: bool,
    /// The reviewed entry.
    pub before: PlanEntry,
    /// The entry now.
    pub after: PlanEntry,
}

impl PlanDiff {
    /// Whether nothing changed since the review.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.moved.is_empty()
    }

    /// `2 added, 1 removed, 1 moved`.
    fn counts(&self) -> String {
        format!(
            "{} added, {} removed, {} moved",
            self.added.len(),
            self.removed.len(),
            self.moved.len()
        )
    }
}

/// A target tag: registry, repository, tag.
type TargetKey<'a> = (&'a str, &'a str, &'a str);

/// The target tag an entry writes.
fn key(entry: &PlanEntry) -> TargetKey<'_> {
    (
        &entry.target.registry,
        &entry.target.repository,
        &entry.target.tag,
    )
}

/// Compares the reviewed plan `before` with `after`, in target order.
pub fn diff(before: &Plan, after: &Plan) -> PlanDiff {
    let old: BTreeMap<TargetKey, &PlanEntry> = before.entries.iter().map(|e| (key(e), e)).collect();
    let new: BTreeMap<TargetKey, &PlanEntry> = after.entries.iter().map(|e| (key(e), e)).collect();
    let mut diff = PlanDiff::default();
    for (k, entry) in &new {
        match old.get(k) {
            None => diff.added.push((*entry).clone()),
            Some(was) => diff.moved.extend(moved(was, entry)),
        }
    }
    diff.removed = old
        .iter()
        .filter(|(k, _)| !new.contains_key(*k))
        .map(|(_, e)| (*e).clone())
        .collect();
    diff
}

/// The entry's change, when its source, target digest or action changed.
fn moved(before: &PlanEntry, after: &PlanEntry) -> Option<MovedEntry> {
    let change = MovedEntry {
        source_moved: before.source != after.source,
        target_moved: before.target.current_digest != after.target.current_digest,
        action_changed: before.action != after.action,
        before: before.clone(),
        after: after.clone(),
    };
    (change.source_moved || change.target_moved || change.action_changed).then_some(change)
}

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

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
