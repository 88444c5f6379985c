//! Rules × inventory → one deduplicated plan. Pure: no I/O, so every case is
//! tested without a registry.

mod conflict;
mod diff;
mod estimate;
mod image;
mod prune;
mod rule_problem;
mod scope;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::entry::{
    Action, GateVerdict, PlanEntry, Role, SkippedTag, SourceImage, TargetTag, Transfer, Travel,
};
pub use crate::keys::{ImageKey, RepositoryKey};
pub use conflict::{Claim, Conflict};
pub use diff::{MovedEntry, PlanDiff, diff};
pub use estimate::{Estimate, estimate};
pub use image::{ImageSource, ImageToWrite, images_kept, images_to_write};
pub use rule_problem::{RuleProblem, RuleProblemKind, Severity, rule_problems};
pub use scope::{Scope, Shard, ShardError, shard_of};

use crate::config::Overwrite;
use crate::digest::Digest;
use crate::discover::{Candidate, Expansion, Inventory, TagKey, expand};
use crate::rules::{RuleSet, tag_version};

/// The version of the plan format written by `--out`.
pub const PLAN_FORMAT: u32 = 2;

/// Counts of entries by action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Entries to create.
    pub create: usize,
    /// Entries to update.
    pub update: usize,
    /// Entries already in place.
    pub unchanged: usize,
    /// Target tags to delete (`prune`).
    #[serde(default)]
    pub prune: usize,
    /// Entries refused.
    pub blocked: usize,
    /// Source tags skipped.
    pub skipped: usize,
}

/// A plan: every target tag in scope, deduplicated, with the action applying takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// Plan format version.
    pub format: u32,
    /// Registry names used by the plan and their addresses, as configured.
    pub registries: BTreeMap<String, String>,
    /// The entries, grouped by target registry and repository, floating tags last.
    pub entries: Vec<PlanEntry>,
    /// Source tags that were selected but cannot be promoted.
    pub skipped: Vec<SkippedTag>,
    /// Rules matching by glob that matched nothing (a registry without a
    /// catalog, an empty catalog): an error fails the run, other rules are
    /// still done. Absent from plans written before it existed.
    #[serde(default)]
    pub rule_problems: Vec<RuleProblem>,
    /// Target repositories the plan writes that held no tag when it was
    /// made (most often: new to the target). Their blobs are taken to be
    /// absent: an upload there opens with a mount from the repository
    /// itself, one request that finds a blob there after all (on a
    /// registry that mounts) and starts the upload otherwise, where a HEAD
    /// and then the upload would take two. Absent from plans written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_repositories: Vec<RepositoryKey>,
    /// Counts by action.
    pub summary: Summary,
    /// Expected work.
    pub estimate: Estimate,
}

impl Plan {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.summary.create + self.summary.update + self.summary.prune > 0
    }

    /// How many rules could not be planned (error-level rule problems).
    pub fn failed_rules(&self) -> usize {
        self.rule_problems.iter().filter(|p| p.is_error()).count()
    }
}

/// The JSON Schema of `plan.json`, as checked in under `schemas/`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Builds the plan from the rules and what discovery saw.
pub fn build(
    rules: &RuleSet,
    inventory: &Inventory,
    registries: BTreeMap<String, String>,
    shard: Option<Shard>,
) -> Result<Plan, Vec<Conflict>> {
    let expansion = expand(rules, inventory);
    let (prunes, mut left) = crate::discover::prune_candidates(rules, inventory, &expansion);
    let Expansion {
        candidates,
        mut skipped,
    } = expansion;
    let mut entries = Vec::new();
    let mut conflicts = Vec::new();
    for (key, mut claims) in claims_by_target(candidates) {
        keep_highest_floating(&mut claims);
        match Conflict::among(&key, &claims) {
            Some(conflict) => conflicts.push(conflict),
            None => entries.push(decide(rules, inventory, &key, claims)),
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    prune::prune_refused(rules, &mut entries);
    entries.extend(prune::prune_entries(rules, inventory, prunes, &mut left));
    skipped.append(&mut left);
    prune::cap_prunes(rules, &mut entries);
    block_floating_over_blocked_versions(&mut entries);
    block_moves_onto_their_source(&mut entries, &inventory.one_store);
    narrow_to_shard(rules, shard, &mut entries, &mut skipped);
    entries.sort_by(|a, b| table_order(a).cmp(&table_order(b)));
    let summary = summarize(&entries, skipped.len());
    let estimate = estimate::estimate(&entries, inventory);
    let new_repositories = new_repositories(&entries, inventory);
    Ok(Plan {
        format: PLAN_FORMAT,
        registries,
        entries,
        skipped,
        rule_problems: rule_problems(rules, inventory),
        new_repositories,
        summary,
        estimate,
    })
}

/// The target repositories that `entries` write and that held no tag when
/// their tags were listed.
fn new_repositories(entries: &[PlanEntry], inventory: &Inventory) -> Vec<RepositoryKey> {
    let written: BTreeSet<(&str, &str)> = entries
        .iter()
        .filter(|entry| entry.changes())
        .map(|entry| {
            (
                entry.target.registry.as_str(),
                entry.target.repository.as_str(),
            )
        })
        .collect();
    written
        .into_iter()
        .filter(|&(registry, repository)| {
            inventory
                .target_tags
                .get(&RepositoryKey::new(registry, repository))
                .is_some_and(BTreeSet::is_empty)
        })
        .map(|(registry, repository)| RepositoryKey {
            registry: registry.to_string(),
            repository: repository.to_string(),
        })
        .collect()
}

/// The candidates grouped by the target tag they claim. Most target tags
/// have one claim: each group starts with room for one (a pushed-to empty
/// `Vec` takes room for four, and on a wide plan the spare room was a
/// third of planning's peak memory).
fn claims_by_target(candidates: Vec<Candidate>) -> BTreeMap<TagKey, Vec<Candidate>> {
    let mut by_target: BTreeMap<TagKey, Vec<Candidate>> = BTreeMap::new();
    for candidate in candidates {
        match by_target.entry(candidate.target_key()) {
            Entry::Vacant(group) => {
                group.insert(vec![candidate]);
            }
            Entry::Occupied(group) => group.into_mut().push(candidate),
        }
    }
    by_target
}

/// A floating tag fed by several rules or source repositories follows the
/// highest version among all of them: only its claims stay.
fn keep_highest_floating(claims: &mut Vec<Candidate>) {
    if claims.iter().all(|c| c.role.is_floating())
        && let Some(best) = claims
            .iter()
            .map(|c| (c.version.clone(), c.source.tag.clone()))
            .max()
    {
        claims.retain(|c| (c.version.clone(), c.source.tag.clone()) == best);
    }
}

/// Keeps the entries and skipped tags of one shard's target repositories.
fn narrow_to_shard(
    rules: &RuleSet,
    shard: Option<Shard>,
    entries: &mut Vec<PlanEntry>,
    skipped: &mut Vec<SkippedTag>,
) {
    let scope = Scope {
        rules: Vec::new(),
        shard,
    };
    scope.narrow(entries);
    skipped.retain(|s| {
        rules
            .get(&s.rule)
            .is_none_or(|r| scope.includes_repository(&r.naming.target_repository(&s.repository)))
    });
}

/// Where an entry goes in the plan: by target registry and repository,
/// late (floating and attached) tags after the others, then by tag.
fn table_order(entry: &PlanEntry) -> (&str, &str, bool, &str) {
    (
        &entry.target.registry,
        &entry.target.repository,
        entry.is_late(),
        &entry.target.tag,
    )
}

/// A moved source tag is deleted only by a run that sees all its targets:
/// a `move` entry whose source tag also feeds entries outside `in_scope`
/// (another shard, another rule) is copied instead, and says so.
pub fn keep_moves_within(entries: &mut [PlanEntry], in_scope: impl Fn(&PlanEntry) -> bool) {
    let key = |e: &PlanEntry| {
        (
            e.source.registry.clone(),
            e.source.repository.clone(),
            e.source.tag.clone(),
        )
    };
    let outside: BTreeSet<(String, String, String)> =
        entries.iter().filter(|e| !in_scope(e)).map(key).collect();
    for e in entries
        .iter_mut()
        .filter(|e| e.travel.mode == Transfer::Move)
    {
        if outside.contains(&key(e)) {
            e.travel.mode = Transfer::CopyNotMove;
        }
    }
}

/// A floating tag must not move to a version whose own tag is refused in
/// that target repository: the target would then hold `1` at an image no
/// version tag names.
fn block_floating_over_blocked_versions(entries: &mut [PlanEntry]) {
    let blocked: BTreeSet<(String, String, String, String)> = entries
        .iter()
        .filter(|e| !e.role.is_floating() && matches!(e.action, Action::Blocked { .. }))
        .map(|e| {
            (
                e.target.registry.clone(),
                e.target.repository.clone(),
                e.source.repository.clone(),
                e.source.tag.clone(),
            )
        })
        .collect();
    for entry in entries.iter_mut().filter(|e| e.role.is_floating()) {
        let key = (
            entry.target.registry.clone(),
            entry.target.repository.clone(),
            entry.source.repository.clone(),
            entry.source.tag.clone(),
        );
        if entry.changes() && blocked.contains(&key) {
            let reason = format!("it would follow {}, which is blocked", entry.source.tag);
            entry.action = Action::blocked(reason);
        }
    }
}

/// A move whose target tag is its own source tag (one registry under one
/// name or two, the same repository and tag) would delete what it just
/// found in place: it is blocked, and the source tag stays.
pub fn block_moves_onto_their_source(
    entries: &mut [PlanEntry],
    one_store: &BTreeMap<(String, String), String>,
) {
    for entry in entries.iter_mut() {
        let (source, target) = (&entry.source, &entry.target);
        let reason = match onto_own_source(entry, one_store) {
            None => continue,
            Some(OntoSource::SameRegistry) => "a move onto its own source: the target tag is the source tag, which the move would delete".to_string(),
            Some(OntoSource::OneStore { location }) => format!(
                "a move onto its own source: `{}` and `{}` are one registry (both reach {location}), so the target tag is the source tag, which the move would delete",
                source.registry, target.registry,
            ),
        };
        entry.action = Action::blocked(reason);
    }
}

/// How a move's target tag is its own source tag, so that the move would
/// delete what it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OntoSource<'a> {
    /// Source and target are the same registry name.
    SameRegistry,
    /// Two names of one registry (`localhost:5000`, `127.0.0.1:5000`).
    OneStore {
        /// What both names reach.
        location: &'a str,
    },
}

/// Whether `entry` moves a tag onto itself (the same repository and tag in
/// one registry, under one name or two that discovery found are one store).
pub fn onto_own_source<'a>(
    entry: &PlanEntry,
    one_store: &'a BTreeMap<(String, String), String>,
) -> Option<OntoSource<'a>> {
    let (source, target) = (&entry.source, &entry.target);
    if entry.travel.mode != Transfer::Move
        || source.repository != target.repository
        || source.tag != target.tag
    {
        return None;
    }
    if source.registry == target.registry {
        return Some(OntoSource::SameRegistry);
    }
    one_store
        .get(&(source.registry.clone(), target.registry.clone()))
        .map(|location| OntoSource::OneStore {
            location: location.trim_end_matches('/'),
        })
}

/// The counts by action of `entries`, and of `skipped` source tags.
pub fn summarize<'a>(entries: impl IntoIterator<Item = &'a PlanEntry>, skipped: usize) -> Summary {
    let mut summary = Summary {
        skipped,
        ..Summary::default()
    };
    for entry in entries {
        match entry.action {
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::Unchanged { .. } => summary.unchanged += 1,
            Action::Prune { .. } => summary.prune += 1,
            Action::Blocked { .. } => summary.blocked += 1,
        }
    }
    summary
}

/// One target tag claimed by candidates that agree on the digest: what to do.
fn decide(
    rules: &RuleSet,
    inventory: &Inventory,
    key: &TagKey,
    claims: Vec<Candidate>,
) -> PlanEntry {
    let first = &claims[0];
    let mut rule_names: Vec<(usize, String)> = claims
        .iter()
        .map(|c| (c.rule_index, c.rule.clone()))
        .collect();
    rule_names.sort();
    rule_names.dedup();
    let current = inventory.target_heads.get(key).cloned();
    let role = merged_role(&claims);
    let action = decide_action(rules, inventory, key, &claims, &role, current.as_ref());
    PlanEntry {
        action,
        role,
        source: first.source.clone(),
        target: TargetTag {
            registry: key.registry.clone(),
            repository: key.repository.clone(),
            tag: key.tag.clone(),
            current_digest: current,
            digest: (first.digest != first.source.digest).then(|| first.digest.clone()),
        },
        rules: rule_names.into_iter().map(|(_, name)| name).collect(),
        travel: Travel {
            platforms: first.travel.platforms.clone(),
            referrers: claims.iter().any(|c| c.travel.referrers),
            mode: if claims.iter().any(|c| c.travel.mode == Transfer::Move) {
                Transfer::Move
            } else {
                Transfer::Copy
            },
        },
        // A refusal by any rule's gate is the verdict; else the first pass.
        gate: claims
            .iter()
            .filter_map(|c| c.gate.clone())
            .min_by_key(|g| g.refusal().is_none()),
    }
}

/// The role of a tag several candidates claim: floating or attached only
/// when every claim is (a floating `latest` that is also a source tag
/// `latest` is written with the versions).
fn merged_role(claims: &[Candidate]) -> Role {
    let first = &claims[0].role;
    let same_kind = claims
        .iter()
        .all(|c| std::mem::discriminant(&c.role) == std::mem::discriminant(first));
    if same_kind {
        first.clone()
    } else {
        Role::Version
    }
}

/// What applying does to a target tag that holds `current`: refuse a pin
/// the source left, create, keep, update, or refuse to overwrite.
fn decide_action(
    rules: &RuleSet,
    inventory: &Inventory,
    key: &TagKey,
    claims: &[Candidate],
    role: &Role,
    current: Option<&Digest>,
) -> Action {
    let first = &claims[0];
    let digest = &first.digest;
    if let Some((claim, gate, why)) = claims.iter().find_map(|c| {
        let gate = c.gate.as_ref()?;
        Some((c, gate, gate.refusal()?))
    }) {
        let origin = rules.at(claim.rule_index).map(|r| r.origin);
        let setting = gate.refused_by().unwrap_or_default();
        return Action::blocked(match origin.unwrap_or_default().gate_setting(setting) {
            Some(name) => format!("{name}: {why}"),
            None => why.to_string(),
        });
    }
    if let Some(pin) = claims.iter().find_map(|c| c.pin_mismatch.as_ref()) {
        return Action::blocked(format!(
            "pinned to {}, but the source tag is at {}",
            pin.short(),
            digest.short()
        ));
    }
    let Some(current) = current else {
        return Action::Create;
    };
    if current == digest || inventory.listed_in_target.contains(key) {
        return Action::UNCHANGED;
    }
    if role.is_floating() {
        return match target_ahead(inventory, key, first, current) {
            Some(version) => Action::Unchanged {
                kept_at: Some(version),
            },
            None => Action::Update,
        };
    }
    let always = claims.iter().all(|c| {
        rules
            .at(c.rule_index)
            .is_some_and(|r| r.overwrite == Overwrite::Always)
    });
    if always || role.is_attached() {
        Action::Update
    } else {
        Action::blocked(format!(
            "the target tag holds {}; overwrite = \"never\"",
            current.short()
        ))
    }
}

/// The version a floating tag already holds in the target, when that is
/// newer than the candidate: some version tag of the same series in the
/// target repository, above the candidate, points at the tag's current digest.
fn target_ahead(
    inventory: &Inventory,
    key: &TagKey,
    candidate: &Candidate,
    current: &Digest,
) -> Option<String> {
    let series = candidate.series.as_ref()?;
    let version = candidate.version.as_ref()?;
    let newer = |tag: &str| tag_version(tag).filter(|v| v > version && series.contains(v));
    // A newer version tag in the target at the current digest...
    let in_target = inventory
        .target_tags
        .get(&key.repository_key())
        .into_iter()
        .flatten()
        .filter(|tag| newer(tag).is_some())
        .find(|tag| {
            inventory
                .target_heads
                .get(&TagKey::new(&key.registry, &key.repository, tag))
                .is_some_and(|d| d == current)
        });
    if let Some(tag) = in_target {
        return Some(tag.clone());
    }
    // ...or a newer version of the source at it, for targets whose tags are
    // renamed by a `tag` template (`1.11.0-prod`).
    let source = RepositoryKey::new(&candidate.source.registry, &candidate.source.repository);
    inventory
        .source_heads
        .range(source.tag("")..)
        .take_while(|(key, _)| {
            key.registry == source.registry && key.repository == source.repository
        })
        .find(|(key, head)| newer(&key.tag).is_some() && head.digest == *current)
        .map(|(key, _)| key.tag.clone())
}

#[cfg(test)]
impl Plan {
    /// For unit tests: a plan of these entries, nothing skipped, no estimate.
    pub fn of(entries: Vec<PlanEntry>) -> Plan {
        Plan {
            format: PLAN_FORMAT,
            registries: std::collections::BTreeMap::new(),
            entries,
            skipped: Vec::new(),
            rule_problems: Vec::new(),
            new_repositories: Vec::new(),
            summary: Summary::default(),
            estimate: Estimate::default(),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_inventory;
#[cfg(test)]
mod tests;
