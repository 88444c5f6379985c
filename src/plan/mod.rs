//! Rules × inventory → one deduplicated plan. Pure: no I/O, so every case is
//! tested without a registry.

mod conflict;
mod estimate;
mod expand;
mod image;
mod inventory;
mod scope;
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use conflict::{Claim, Conflict};
pub use expand::{
    Candidate, Expansion, attached_tag_names, expand, matched_repositories, target_probes,
};
pub use image::{ImageKey, ImageSource, ImageToWrite, RepositoryKey, images_to_write};
pub use inventory::{
    FilterKey, ImageContents, Inventory, RepoKey, TagKey, filter_key, repo_key, tag_key,
};
pub use scope::{Scope, Shard, ShardError, shard_of};
pub use table::render_table;

use crate::config::{Mode, Overwrite};
use crate::digest::Digest;
use crate::platform::Platform;
use crate::rules::{RuleSet, tag_version};

/// The version of the plan format written by `--out`.
pub const PLAN_FORMAT: u32 = 1;

/// What applying an entry will do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The target tag does not exist yet.
    Create,
    /// The target tag moves to another digest.
    Update,
    /// The target tag already holds the digest (or, for a floating tag, a newer version).
    Unchanged,
    /// Refused; `reason` says why.
    Blocked,
}

impl Action {
    /// The table's one-character marker.
    pub fn marker(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Unchanged => '=',
            Action::Blocked => '!',
        }
    }
}

/// The image a target tag will point at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceImage {
    /// Source registry name.
    pub registry: String,
    /// Source repository.
    pub repository: String,
    /// Source tag.
    pub tag: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest media type.
    pub media_type: String,
}

/// `registry/repository:tag`, as the plan table and conflicts name it.
impl fmt::Display for SourceImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// The tag a plan entry writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TargetTag {
    /// Target registry name.
    pub registry: String,
    /// Target repository.
    pub repository: String,
    /// Target tag.
    pub tag: String,
    /// Digest the tag holds now, if it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_digest: Option<Digest>,
    /// The digest written, when it is not the source's: a new index keeping
    /// only the rule's `platforms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// One target `(registry, repository, tag)` and what will happen to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanEntry {
    /// What applying does.
    pub action: Action,
    /// Why it is blocked, or why a floating tag stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A floating tag (`1`, `1.4`, `latest`): written after every other tag.
    #[serde(default)]
    pub floating: bool,
    /// Where the image comes from.
    pub source: SourceImage,
    /// The tag written.
    pub target: TargetTag,
    /// Rules that produce this entry, in file order.
    pub rules: Vec<String>,
    /// Platforms kept from a multi-platform index (empty: the index verbatim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<Platform>,
    /// Also copy the image's OCI 1.1 referrers where the source has the API.
    #[serde(default, skip_serializing_if = "is_false")]
    pub referrers: bool,
    /// A signature, attestation or SBOM tag (cosign's `sha256-<hex>.sig`
    /// convention) carried with the image it belongs to; written last, and
    /// updated whenever the source's changes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub attached: bool,
    /// `move`: the source tag is deleted once every target has it.
    #[serde(default, skip_serializing_if = "is_copy")]
    pub mode: Mode,
}

impl PlanEntry {
    /// The digest the target tag will hold.
    pub fn target_digest(&self) -> &Digest {
        self.target.digest.as_ref().unwrap_or(&self.source.digest)
    }

    /// Written after the other tags of its repository: floating and attached tags.
    pub fn is_late(&self) -> bool {
        self.floating || self.attached
    }

    /// Whether this late entry follows `regular`, so must not be written
    /// when `regular` was not: a floating tag follows the version tag of the
    /// same source tag; an attached tag (`sha256-<hex>.sig`) follows the
    /// image that is its subject.
    pub fn follows(&self, regular: &PlanEntry) -> bool {
        if self.attached {
            let subject = self.target.tag.split('.').next().unwrap_or("");
            return regular.target_digest().to_string() == subject.replacen('-', ":", 1);
        }
        regular.source.registry == self.source.registry
            && regular.source.repository == self.source.repository
            && regular.source.tag == self.source.tag
    }

    /// Whether applying writes something.
    pub fn changes(&self) -> bool {
        matches!(self.action, Action::Create | Action::Update)
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_copy(mode: &Mode) -> bool {
    *mode == Mode::Copy
}

/// A source tag a rule selected but cannot promote, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedTag {
    /// The rule.
    pub rule: String,
    /// Source registry name.
    pub registry: String,
    /// Source repository.
    pub repository: String,
    /// Source tag (empty when the whole repository is skipped).
    pub tag: String,
    /// Why.
    pub reason: String,
}

/// Counts of entries by action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Entries to create.
    pub create: usize,
    /// Entries to update.
    pub update: usize,
    /// Entries already in place.
    pub unchanged: usize,
    /// Entries refused.
    pub blocked: usize,
    /// Source tags skipped.
    pub skipped: usize,
}

/// The work applying the plan is expected to do, counting each blob once per
/// target registry; blobs already in a target are not known here, so byte
/// and copy counts are upper bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Estimate {
    /// Images (manifest digests per target repository) to write.
    pub images: usize,
    /// Manifests to write, children of indexes included.
    pub manifests: usize,
    /// Distinct blobs per target registry, summed over target registries.
    pub unique_blobs: usize,
    /// Blobs that cross the network (at most once per target registry).
    pub blobs_to_copy: usize,
    /// Their bytes.
    pub bytes_to_copy: u64,
    /// Blobs mounted from another repository of the same store instead of copied.
    pub blobs_to_mount: usize,
    /// False when some source manifest could not be read, so the figures are partial.
    pub complete: bool,
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
    /// Counts by action.
    pub summary: Summary,
    /// Expected work.
    pub estimate: Estimate,
}

impl Plan {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.summary.create + self.summary.update > 0
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
    let Expansion {
        candidates,
        mut skipped,
    } = expand(rules, inventory);
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
    block_floating_over_blocked_versions(&mut entries);
    narrow_to_shard(rules, shard, &mut entries, &mut skipped);
    entries.sort_by(|a, b| table_order(a).cmp(&table_order(b)));
    let summary = summarize(&entries, skipped.len());
    let estimate = estimate::estimate(&entries, inventory);
    Ok(Plan {
        format: PLAN_FORMAT,
        registries,
        entries,
        skipped,
        summary,
        estimate,
    })
}

/// The candidates grouped by the target tag they claim.
fn claims_by_target(candidates: Vec<Candidate>) -> BTreeMap<TagKey, Vec<Candidate>> {
    let mut by_target: BTreeMap<TagKey, Vec<Candidate>> = BTreeMap::new();
    for candidate in candidates {
        by_target
            .entry(candidate.target_key())
            .or_default()
            .push(candidate);
    }
    by_target
}

/// A floating tag fed by several rules or source repositories follows the
/// highest version among all of them: only its claims stay.
fn keep_highest_floating(claims: &mut Vec<Candidate>) {
    if claims.iter().all(|c| c.floating)
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
            .is_none_or(|r| scope.includes_repository(&r.target_repository(&s.repository)))
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
    for e in entries.iter_mut().filter(|e| e.mode == Mode::Move) {
        if outside.contains(&key(e)) {
            e.mode = Mode::Copy;
            e.reason.get_or_insert_with(|| {
                "copied, not moved: entries outside this run also read the source tag".to_string()
            });
        }
    }
}

/// A floating tag must not move to a version whose own tag is refused in
/// that target repository: the target would then hold `1` at an image no
/// version tag names.
fn block_floating_over_blocked_versions(entries: &mut [PlanEntry]) {
    let blocked: BTreeSet<(String, String, String, String)> = entries
        .iter()
        .filter(|e| !e.floating && e.action == Action::Blocked)
        .map(|e| {
            (
                e.target.registry.clone(),
                e.target.repository.clone(),
                e.source.repository.clone(),
                e.source.tag.clone(),
            )
        })
        .collect();
    for entry in entries.iter_mut().filter(|e| e.floating) {
        let key = (
            entry.target.registry.clone(),
            entry.target.repository.clone(),
            entry.source.repository.clone(),
            entry.source.tag.clone(),
        );
        if matches!(entry.action, Action::Create | Action::Update) && blocked.contains(&key) {
            entry.action = Action::Blocked;
            entry.reason = Some(format!(
                "it would follow {}, which is blocked",
                entry.source.tag
            ));
        }
    }
}

fn summarize(entries: &[PlanEntry], skipped: usize) -> Summary {
    let mut summary = Summary {
        skipped,
        ..Summary::default()
    };
    for entry in entries {
        match entry.action {
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::Unchanged => summary.unchanged += 1,
            Action::Blocked => summary.blocked += 1,
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
    let floating = claims.iter().all(|c| c.floating);
    let mut rule_names: Vec<(usize, String)> = claims
        .iter()
        .map(|c| (c.rule_index, c.rule.clone()))
        .collect();
    rule_names.sort();
    rule_names.dedup();
    let current = inventory.target_heads.get(key).cloned();
    let digest = first.digest.clone();
    let attached = claims.iter().all(|c| c.attached);
    let (action, reason) = if let Some(pin) = claims.iter().find_map(|c| c.pin_mismatch.clone()) {
        (
            Action::Blocked,
            Some(format!(
                "pinned to {}, but the source tag is at {}",
                pin.short(),
                digest.short()
            )),
        )
    } else {
        match &current {
            None => (Action::Create, None),
            Some(current) if *current == digest => (Action::Unchanged, None),
            Some(current) if floating => match target_ahead(inventory, key, first, current) {
                Some(version) => (
                    Action::Unchanged,
                    Some(format!(
                        "kept: the target's `{}` is at {version}, newer than {}",
                        key.2, first.source.tag
                    )),
                ),
                None => (Action::Update, None),
            },
            Some(current) => {
                let always = claims.iter().all(|c| {
                    rules
                        .rules
                        .iter()
                        .find(|r| r.index == c.rule_index)
                        .is_some_and(|r| r.overwrite == Overwrite::Always)
                });
                if always || attached {
                    (Action::Update, None)
                } else {
                    (
                        Action::Blocked,
                        Some(format!(
                            "the target tag holds {}; overwrite = \"never\"",
                            current.short()
                        )),
                    )
                }
            }
        }
    };
    PlanEntry {
        action,
        reason,
        floating,
        source: first.source.clone(),
        target: TargetTag {
            registry: key.0.clone(),
            repository: key.1.clone(),
            tag: key.2.clone(),
            current_digest: current,
            digest: (digest != first.source.digest).then(|| digest.clone()),
        },
        rules: rule_names.into_iter().map(|(_, name)| name).collect(),
        platforms: first.platforms.clone(),
        referrers: claims.iter().any(|c| c.referrers),
        attached,
        mode: if claims.iter().any(|c| c.mode == Mode::Move) {
            Mode::Move
        } else {
            Mode::Copy
        },
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
        .get(&(key.0.clone(), key.1.clone()))
        .into_iter()
        .flatten()
        .filter(|tag| newer(tag).is_some())
        .find(|tag| {
            inventory
                .target_heads
                .get(&(key.0.clone(), key.1.clone(), (*tag).clone()))
                .is_some_and(|d| d == current)
        });
    if let Some(tag) = in_target {
        return Some(tag.clone());
    }
    // ...or a newer version of the source at it, for targets whose tags are
    // renamed by a `tag` template (`1.11.0-prod`).
    let source = (
        candidate.source.registry.clone(),
        candidate.source.repository.clone(),
    );
    inventory
        .source_heads
        .range((source.0.clone(), source.1.clone(), String::new())..)
        .take_while(|((registry, repository, _), _)| {
            (registry, repository) == (&source.0, &source.1)
        })
        .find(|((_, _, tag), head)| newer(tag).is_some() && head.digest == *current)
        .map(|((_, _, tag), _)| tag.clone())
}

#[cfg(test)]
mod tests;
