//! What changed between a reviewed plan and a fresh one (`plan --diff`):
//! target tags added and removed, and those whose source or target digest
//! moved, so a reviewer re-approving a plan reads only the difference.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Plan, PlanEntry};

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
    pub fn counts(&self) -> String {
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

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
