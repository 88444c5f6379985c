//! Prune entries: the candidates discovery found (`discover::prune`), the
//! images of `prune = "recorded"` rules proven theirs by a record, the
//! tags a pruning rule's gate now refuses, and each rule's cap.

use std::collections::BTreeMap;

use super::{Action, PlanEntry, Role, SourceImage, TargetTag};
use crate::discover::{Inventory, PruneCandidate};
use crate::entry::{GateVerdict, SkippedTag};
use crate::keys::ImageKey;
use crate::rules::{RuleSet, Travel};

/// The prune entries of `candidates`, and the candidates left (no record
/// of the rule proves the tag its own) with why.
pub(super) fn prune_entries(
    rules: &RuleSet,
    inventory: &Inventory,
    candidates: Vec<PruneCandidate>,
    skipped: &mut Vec<SkippedTag>,
) -> Vec<PlanEntry> {
    let mut entries = Vec::new();
    for candidate in candidates {
        // Gone between the listing and its HEAD: nothing to delete.
        let Some(current) = inventory.target_heads.get(&candidate.target) else {
            continue;
        };
        let recorded = rules
            .at(candidate.rule_index)
            .and_then(|r| r.pruning.as_ref())
            .is_some_and(|p| p.recorded);
        if recorded {
            let image = ImageKey::new(
                &candidate.target.registry,
                &candidate.target.repository,
                current,
            );
            let why = match inventory.recorded.get(&(candidate.rule.clone(), image)) {
                Some(Ok(true)) => None,
                Some(Ok(false)) | None => Some(format!(
                    "not pruned: {} carries no promotion record of rule `{}` signed by a key of its require_record (pushed by another tool or by hand?)",
                    target_name(&candidate),
                    candidate.rule
                )),
                Some(Err(e)) => Some(format!(
                    "not pruned: the promotion records of {} cannot be read: {e}",
                    target_name(&candidate)
                )),
            };
            if let Some(reason) = why {
                skipped.push(SkippedTag {
                    rule: candidate.rule.clone(),
                    registry: candidate.source_registry.clone(),
                    repository: candidate.source_repository.clone(),
                    tag: candidate.source_tag.clone(),
                    reason,
                });
                continue;
            }
        }
        entries.push(entry_of(&candidate, current.clone()));
    }
    entries
}

fn target_name(candidate: &PruneCandidate) -> String {
    let t = &candidate.target;
    format!("{}/{}:{}", t.registry, t.repository, t.tag)
}

/// The plan entry deleting a candidate's target tag, which holds `current`.
fn entry_of(candidate: &PruneCandidate, current: crate::digest::Digest) -> PlanEntry {
    PlanEntry {
        action: Action::Prune {
            reason: candidate.reason.clone(),
        },
        role: Role::Version,
        source: SourceImage {
            registry: candidate.source_registry.clone(),
            repository: candidate.source_repository.clone(),
            tag: candidate.source_tag.clone(),
            // What is deleted: the target's image.
            digest: current.clone(),
            media_type: String::new(),
        },
        target: TargetTag {
            registry: candidate.target.registry.clone(),
            repository: candidate.target.repository.clone(),
            tag: candidate.target.tag.clone(),
            current_digest: Some(current),
            digest: None,
        },
        rules: vec![candidate.rule.clone()],
        travel: Travel::default(),
        gate: None,
    }
}

/// A version tag in the target that only pruning rules write and whose
/// source now fails their gate is pruned rather than left blocked.
pub(super) fn prune_refused(rules: &RuleSet, entries: &mut [PlanEntry]) {
    for entry in entries.iter_mut() {
        let refused = matches!(entry.gate, Some(GateVerdict::Refused { .. }));
        let pruning = entry
            .rules
            .iter()
            .all(|name| rules.get(name).is_some_and(|r| r.pruning.is_some()));
        let Action::Blocked { reason } = &entry.action else {
            continue;
        };
        if refused
            && pruning
            && entry.role == Role::Version
            && entry.target.current_digest.is_some()
        {
            let reason = format!("its source {} now fails the gate: {reason}", entry.source);
            entry.action = Action::Prune { reason };
        }
    }
}

/// Blocks every prune of a rule whose prunes exceed its `max_prune`.
pub(super) fn cap_prunes(rules: &RuleSet, entries: &mut [PlanEntry]) {
    let mut by_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for entry in entries.iter() {
        for rule in &entry.rules {
            let counts = by_rule.entry(rule.as_str()).or_default();
            counts.0 += 1;
            counts.1 += usize::from(entry.action.is_prune());
        }
    }
    let over: BTreeMap<String, String> = by_rule
        .into_iter()
        .filter_map(|(name, (owned, pruned))| {
            let cap = rules.get(name)?.pruning.as_ref()?.cap;
            let limit = cap.limit(owned);
            (pruned > limit).then(|| {
                let reason = format!(
                    "prune: {pruned} tags to prune, above max_prune = {cap} ({limit} of the rule's {owned} target tags): none of rule `{name}` is pruned; raise max_prune if this is meant"
                );
                (name.to_string(), reason)
            })
        })
        .collect();
    for entry in entries.iter_mut().filter(|e| e.action.is_prune()) {
        if let Some(reason) = entry.rules.iter().find_map(|r| over.get(r)) {
            entry.action = Action::blocked(reason.clone());
        }
    }
}
