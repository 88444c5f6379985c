//! `prune`: the target tags a rule owns that its source no longer
//! selects. A target tag is the rule's when it lies in a target repository
//! of a source repository the rule matches, reads back through the rule's
//! `tag` template (or is the source tag, with `keep_source_tag`) to a
//! source tag the rule's globs, `semver` and `prerelease` take. It is a
//! candidate when that source tag is gone or `latest` left it out; never
//! when any rule writes it in this plan, another rule that does not prune
//! owns it too, or it could be one of the rule's floating tags. The gate's
//! refusals are the plan's to turn into prunes (`plan::prune`).

use std::collections::BTreeSet;

use super::expand::{Expansion, matched_repositories};
use super::inventory::{Inventory, RepositoryKey, TagKey};
use super::reads::{Discovery, handle, read_par};
use crate::entry::SkippedTag;
use crate::keys::ImageKey;
use crate::rules::{Rule, RuleSet, is_attached_tag};

impl Discovery<'_> {
    /// The target repositories of pruning rules, listed; then the digest of
    /// each candidate, and for `prune = "recorded"` whether its image
    /// carries the rule's promotion record.
    pub(super) fn read_prune_candidates(&mut self, expansion: &Expansion) {
        if self.rules.rules.iter().all(|r| r.pruning.is_none()) {
            return;
        }
        self.list_target_repositories(prune_repositories(self.rules, &self.inventory));
        let (candidates, _) = prune_candidates(self.rules, &self.inventory, expansion);
        self.probe_target_tags(candidates.iter().map(|c| c.target.clone()).collect());
        let proofs: BTreeSet<(String, ImageKey)> = candidates
            .iter()
            .filter(|c| {
                self.rules
                    .at(c.rule_index)
                    .is_some_and(|r| r.pruning.as_ref().is_some_and(|p| p.recorded))
            })
            .filter_map(|c| {
                let digest = self.inventory.target_heads.get(&c.target)?;
                let image = ImageKey::new(&c.target.registry, &c.target.repository, digest);
                Some((c.rule.clone(), image))
            })
            .collect();
        let handles = self.handles;
        let rules = self.rules;
        let read = read_par(proofs, |(rule, image)| {
            let store = handle(handles, &image.registry)?;
            let keys = rules
                .get(rule)
                .and_then(|r| r.require_record.as_deref())
                .cloned()
                .unwrap_or_default();
            Ok(
                crate::record::records(store, &image.repository, &image.digest, &keys)
                    .map(|found| {
                        found.iter().any(|f| {
                            f.verified_by.is_some()
                                && f.promotion().is_some_and(|p| p.rules.contains(rule))
                        })
                    })
                    .map_err(|e| e.to_string()),
            )
        });
        for (key, proven) in read {
            if let Ok(proven) = proven {
                self.inventory.recorded.insert(key, proven);
            }
        }
    }
}

/// A target tag to delete, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneCandidate {
    /// The rule's position.
    pub rule_index: usize,
    /// Its name.
    pub rule: String,
    /// The source registry.
    pub source_registry: String,
    /// The source repository.
    pub source_repository: String,
    /// The source tag the target tag came from.
    pub source_tag: String,
    /// The target tag.
    pub target: TagKey,
    /// Why the source no longer selects it.
    pub reason: String,
}

/// The target repositories of every pruning rule, to list.
pub fn prune_repositories(rules: &RuleSet, inventory: &Inventory) -> BTreeSet<RepositoryKey> {
    let mut repos = BTreeSet::new();
    for rule in rules.rules.iter().filter(|r| r.pruning.is_some()) {
        for repository in existing_sources(rule, inventory) {
            let target = rule.naming.target_repository(repository);
            for to in &rule.to {
                repos.insert(RepositoryKey::new(to, &target));
            }
        }
    }
    repos
}

/// Every prune candidate of the pruning rules, and the target tags a rule
/// owns that it leaves (owned by another rule too), with why.
pub fn prune_candidates(
    rules: &RuleSet,
    inventory: &Inventory,
    expansion: &Expansion,
) -> (Vec<PruneCandidate>, Vec<SkippedTag>) {
    let claimed: BTreeSet<TagKey> = expansion
        .candidates
        .iter()
        .map(|c| c.target_key())
        .collect();
    let mut out = (Vec::new(), Vec::new());
    for rule in rules.rules.iter().filter(|r| r.pruning.is_some()) {
        for repository in existing_sources(rule, inventory) {
            let source = RepositoryKey::new(&rule.from, repository);
            let Some(Some(tags)) = inventory.source_tags.get(&source) else {
                continue;
            };
            let scope = Scope {
                rules,
                rule,
                repository,
                tags,
                claimed: &claimed,
            };
            scope.collect(inventory, &mut out);
        }
    }
    out
}

/// The source repositories a rule matches that exist (a repository gone
/// from the source as a whole prunes nothing: that is more often a
/// renamed namespace or a broken catalog than a retired product).
fn existing_sources<'a>(rule: &Rule, inventory: &'a Inventory) -> Vec<&'a String> {
    matched_repositories(rule, inventory)
        .into_iter()
        .filter(|repository| {
            let key = RepositoryKey::new(&rule.from, repository);
            matches!(inventory.source_tags.get(&key), Some(Some(_)))
        })
        .collect()
}

/// One source repository of a pruning rule.
struct Scope<'a> {
    rules: &'a RuleSet,
    rule: &'a Rule,
    repository: &'a str,
    tags: &'a [String],
    claimed: &'a BTreeSet<TagKey>,
}

impl Scope<'_> {
    fn collect(&self, inventory: &Inventory, out: &mut (Vec<PruneCandidate>, Vec<SkippedTag>)) {
        let target_repository = self.rule.naming.target_repository(self.repository);
        let selected = self.rule.selection.select_tags(self.tags);
        for to in &self.rule.to {
            let key = RepositoryKey::new(to, &target_repository);
            let Some(present) = inventory.target_tags.get(&key) else {
                continue;
            };
            for tag in present {
                let target = TagKey::new(to, &target_repository, tag);
                let Some(source_tag) = self.owned(tag, &target) else {
                    continue;
                };
                if selected.iter().any(|s| s.tag == source_tag) {
                    // Selected, yet not written: the plan says why it skips it.
                    continue;
                }
                if let Some(other) = self.also_owned_by(&target, tag) {
                    out.1.push(self.left(
                        &source_tag,
                        format!(
                            "not pruned: {to}/{target_repository}:{tag} is also rule `{other}`'s, which does not prune it"
                        ),
                    ));
                    continue;
                }
                let reason = self.why_unselected(&source_tag, &selected);
                out.0.push(PruneCandidate {
                    rule_index: self.rule.index,
                    rule: self.rule.name.clone(),
                    source_registry: self.rule.from.clone(),
                    source_repository: self.repository.to_string(),
                    source_tag,
                    target,
                    reason,
                });
            }
        }
    }

    /// The source tag the rule wrote target tag `tag` from, when the tag is
    /// the rule's: not written by any rule in this plan, not an attached
    /// artifact's nor one of its floating tags, and read back to a source
    /// tag the rule's selection takes.
    fn owned(&self, tag: &str, target: &TagKey) -> Option<String> {
        if self.claimed.contains(target) || is_attached_tag(tag) {
            return None;
        }
        source_tag_of(self.rule, tag)
    }

    /// Another rule writing to the same target repository that owns the
    /// tag but does not prune it.
    fn also_owned_by(&self, target: &TagKey, tag: &str) -> Option<&str> {
        self.rules
            .rules
            .iter()
            .filter(|other| other.index != self.rule.index && other.pruning.is_none())
            .filter(|other| other.to.contains(&target.registry))
            .filter(|other| {
                other.repositories.matches(self.repository)
                    && other.naming.target_repository(self.repository) == target.repository
            })
            .find(|other| source_tag_of(other, tag).is_some())
            .map(|other| other.name.as_str())
    }

    /// Why the source no longer selects `source_tag`.
    fn why_unselected(&self, source_tag: &str, selected: &[crate::rules::SelectedTag]) -> String {
        let name = format!("{}/{}:{source_tag}", self.rule.from, self.repository);
        if !self.tags.iter().any(|t| t == source_tag) {
            return format!("its source tag {name} is gone");
        }
        let tag = [source_tag.to_string()];
        match self.rule.selection.left_out(&tag, selected).pop() {
            Some((_, why)) => format!("its source tag {name} is no longer selected: {why}"),
            None => format!("its source tag {name} is no longer selected"),
        }
    }

    fn left(&self, source_tag: &str, reason: String) -> SkippedTag {
        SkippedTag {
            rule: self.rule.name.clone(),
            registry: self.rule.from.clone(),
            repository: self.repository.to_string(),
            tag: source_tag.to_string(),
            reason,
        }
    }
}

/// The source tag `rule` would have written target tag `tag` from, when
/// the rule owns it: read back through its `tag` template (or the tag
/// itself, with `keep_source_tag`) to a name its selection takes, and not
/// a tag one of its floating templates could write.
fn source_tag_of(rule: &Rule, tag: &str) -> Option<String> {
    if rule.naming.floating.iter().any(|f| f.could_write(tag)) {
        return None;
    }
    let mut names = Vec::new();
    names.extend(rule.naming.tag.source_tag_of(tag));
    if rule.naming.keep_source_tag {
        names.push(tag.to_string());
    }
    names.into_iter().find(|name| rule.selection.takes(name))
}
