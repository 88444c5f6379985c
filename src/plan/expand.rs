//! Rules applied to the source side of the inventory: which target tags each
//! rule wants, at which digest, before deduplication and comparison.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use super::inventory::{Inventory, TagKey, tag_key};
use super::{SkippedTag, SourceImage};
use crate::config::Mode;
use crate::manifest::is_index;
use crate::reference::{validate_repository, validate_tag};
use crate::registry::ManifestHead;
use crate::rules::{Rule, RuleSet, SelectedTag, Template, Values};

/// The versions a floating tag ranges over: those its template renders to
/// the same tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    template: Template,
    path: String,
    rendered: String,
    prerelease: bool,
}

impl Series {
    /// Whether `version` belongs to the series.
    pub fn contains(&self, version: &Version) -> bool {
        takes_floating(version, &self.template, self.prerelease)
            && self
                .template
                .render(&Values {
                    tag: "",
                    version: Some(version),
                    path: &self.path,
                })
                .as_deref()
                == Some(self.rendered.as_str())
    }
}

/// Whether a version may carry a floating tag: prereleases only when the rule
/// selects them, and never a fixed name such as `latest` (highest stable).
fn takes_floating(version: &Version, template: &Template, prerelease: bool) -> bool {
    version.pre.is_empty() || (prerelease && !template.is_constant())
}

/// One rule's wish for one target tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Position of the rule in the file.
    pub rule_index: usize,
    /// Its name.
    pub rule: String,
    /// A floating tag.
    pub floating: bool,
    /// The source tag's version, if it is one.
    pub version: Option<Version>,
    /// For a floating tag, the versions it ranges over.
    pub series: Option<Series>,
    /// The source image.
    pub source: SourceImage,
    /// Target registry name.
    pub target_registry: String,
    /// Target repository.
    pub target_repository: String,
    /// Target tag.
    pub target_tag: String,
    /// The pinned digest, when the source tag is elsewhere.
    pub pin_mismatch: Option<String>,
    /// The digest the target tag will hold (the source's, or a filtered index).
    pub digest: String,
    /// Platforms the rule keeps.
    pub platforms: Vec<String>,
    /// Copy OCI 1.1 referrers too.
    pub referrers: bool,
    /// A cosign-convention signature/attestation/SBOM tag.
    pub attached: bool,
    /// Copy or move.
    pub mode: Mode,
}

impl Candidate {
    /// `(registry, repository, tag)` of the target.
    pub fn target_key(&self) -> TagKey {
        tag_key(
            &self.target_registry,
            &self.target_repository,
            &self.target_tag,
        )
    }
}

/// Every candidate of every rule, and the source tags that cannot be promoted.
#[derive(Clone, Debug, Default)]
pub struct Expansion {
    /// Wished-for target tags.
    pub candidates: Vec<Candidate>,
    /// Selected source tags that cannot be promoted, with reasons.
    pub skipped: Vec<SkippedTag>,
}

/// The source repositories of the inventory a rule matches.
pub fn matched_repositories<'a>(rule: &Rule, inventory: &'a Inventory) -> Vec<&'a String> {
    inventory
        .repositories
        .get(&rule.from)
        .map(|repos| {
            repos
                .iter()
                .filter(|r| rule.repositories.matches(r))
                .collect()
        })
        .unwrap_or_default()
}

/// Applies every rule to the source side of the inventory.
pub fn expand(rules: &RuleSet, inventory: &Inventory) -> Expansion {
    let mut expansion = Expansion::default();
    for rule in &rules.rules {
        for repository in matched_repositories(rule, inventory) {
            expand_repository(rule, repository, inventory, &mut expansion);
        }
    }
    expansion
}

fn expand_repository(rule: &Rule, repository: &str, inventory: &Inventory, out: &mut Expansion) {
    let skip = |out: &mut Expansion, tag: &str, reason: String| {
        out.skipped.push(SkippedTag {
            rule: rule.name.clone(),
            registry: rule.from.clone(),
            repository: repository.to_string(),
            tag: tag.to_string(),
            reason,
        })
    };
    let tags = match inventory
        .source_tags
        .get(&(rule.from.clone(), repository.to_string()))
    {
        Some(Some(tags)) => tags,
        Some(None) => return skip(out, "", "repository not found in the source".to_string()),
        None => return,
    };
    let target_repository = rule.target_repository(repository);
    if let Err(e) = validate_repository(&target_repository, &target_repository) {
        return skip(
            out,
            "",
            format!(
                "target template `{}` gives an invalid repository: {e}",
                rule.target
            ),
        );
    }
    let mut versions: Vec<(SelectedTag, &ManifestHead, String)> = Vec::new();
    let mut attach_to: Vec<&ManifestHead> = Vec::new();
    for selected in rule.select_tags(tags) {
        let Some(head) =
            inventory
                .source_heads
                .get(&tag_key(&rule.from, repository, &selected.tag))
        else {
            skip(
                out,
                &selected.tag,
                "the tag disappeared from the source while planning".to_string(),
            );
            continue;
        };
        let pin_mismatch = rule
            .pins
            .get(&selected.tag)
            .filter(|pin| **pin != head.digest)
            .map(ToString::to_string);
        let digest = match effective_digest(rule, head, inventory) {
            Ok(digest) => digest,
            Err(reason) => {
                skip(out, &selected.tag, reason);
                continue;
            }
        };
        let source = SourceImage {
            registry: rule.from.clone(),
            repository: repository.to_string(),
            tag: selected.tag.clone(),
            digest: head.digest.to_string(),
            media_type: head.media_type.clone(),
        };
        let values = Values {
            tag: &selected.tag,
            version: selected.version.as_ref(),
            path: repository,
        };
        let mut target_tags = Vec::new();
        match rule.tag.render(&values) {
            None => skip(
                out,
                &selected.tag,
                format!("tag template `{}` needs a semantic version", rule.tag),
            ),
            Some(tag) => match validate_tag(&tag, &tag) {
                Ok(()) => target_tags.push(tag),
                Err(_) => skip(
                    out,
                    &selected.tag,
                    format!(
                        "tag template `{}` gives `{tag}`, which is not a valid tag",
                        rule.tag
                    ),
                ),
            },
        }
        if rule.keep_source_tag && !target_tags.contains(&selected.tag) {
            target_tags.push(selected.tag.clone());
        }
        for to in &rule.to {
            for tag in &target_tags {
                out.candidates.push(Candidate {
                    rule_index: rule.index,
                    rule: rule.name.clone(),
                    floating: false,
                    version: selected.version.clone(),
                    series: None,
                    source: source.clone(),
                    target_registry: to.clone(),
                    target_repository: target_repository.clone(),
                    target_tag: tag.clone(),
                    pin_mismatch: pin_mismatch.clone(),
                    digest: digest.clone(),
                    platforms: rule.platforms.clone(),
                    referrers: rule.referrers,
                    attached: false,
                    mode: rule.mode,
                });
            }
        }
        if rule.referrers && pin_mismatch.is_none() && digest == source.digest {
            attach_to.push(head);
        }
        if selected.version.is_some() && pin_mismatch.is_none() && !selected.pinned_only {
            versions.push((selected, head, digest));
        }
    }
    attached_tags(
        rule,
        repository,
        tags,
        &attach_to,
        &target_repository,
        inventory,
        out,
    );
    for template in &rule.floating {
        // The highest version of each series; ties (`v1.2.0` and `1.2.0`) go
        // to the tag that sorts last, so the choice never depends on order.
        let mut winners: BTreeMap<String, (&SelectedTag, &ManifestHead, &String)> = BTreeMap::new();
        for (selected, head, digest) in &versions {
            let Some(version) = selected.version.as_ref() else {
                continue;
            };
            if !takes_floating(version, template, rule.prerelease) {
                continue;
            }
            let Some(rendered) = template.render(&Values {
                tag: &selected.tag,
                version: Some(version),
                path: repository,
            }) else {
                continue;
            };
            let better = winners.get(&rendered).is_none_or(|(best, _, _)| {
                (version, &selected.tag) > (best.version.as_ref().unwrap_or(version), &best.tag)
            });
            if better {
                winners.insert(rendered, (selected, head, digest));
            }
        }
        for (rendered, (selected, head, digest)) in winners {
            if validate_tag(&rendered, &rendered).is_err() {
                skip(
                    out,
                    &selected.tag,
                    format!(
                        "floating template `{template}` gives `{rendered}`, which is not a valid tag"
                    ),
                );
                continue;
            }
            let series = Series {
                template: template.clone(),
                path: repository.to_string(),
                rendered: rendered.clone(),
                prerelease: rule.prerelease,
            };
            for to in &rule.to {
                out.candidates.push(Candidate {
                    rule_index: rule.index,
                    rule: rule.name.clone(),
                    floating: true,
                    version: selected.version.clone(),
                    series: Some(series.clone()),
                    source: SourceImage {
                        registry: rule.from.clone(),
                        repository: repository.to_string(),
                        tag: selected.tag.clone(),
                        digest: head.digest.to_string(),
                        media_type: head.media_type.clone(),
                    },
                    target_registry: to.clone(),
                    target_repository: target_repository.clone(),
                    target_tag: rendered.clone(),
                    pin_mismatch: None,
                    digest: digest.clone(),
                    platforms: rule.platforms.clone(),
                    referrers: rule.referrers,
                    attached: false,
                    mode: rule.mode,
                });
            }
        }
    }
}

/// The digest a target tag gets for `head` under `rule`: the source's, or
/// the platform-filtered index discovery computed.
fn effective_digest(
    rule: &Rule,
    head: &ManifestHead,
    inventory: &Inventory,
) -> Result<String, String> {
    if rule.platforms.is_empty() || !is_index(&head.media_type) {
        return Ok(head.digest.to_string());
    }
    let key = (
        rule.from.clone(),
        head.digest.clone(),
        rule.platforms.join(","),
    );
    match inventory.filtered.get(&key) {
        Some(Ok(digest)) => Ok(digest.to_string()),
        Some(Err(reason)) => Err(format!("platforms: {reason}")),
        None => Err("the index could not be read to filter its platforms".to_string()),
    }
}

/// Tags that carry signatures, attestations and SBOMs of an image by the
/// cosign convention (`sha256-<hex>.sig`, `.att`, `.sbom`, and the OCI
/// referrers fallback tag `sha256-<hex>`), among `tags`.
pub fn attached_tag_names<'a>(
    digest: &crate::digest::Digest,
    tags: &'a [String],
) -> Vec<&'a String> {
    let stem = digest.to_string().replacen(':', "-", 1);
    tags.iter()
        .filter(|tag| {
            tag.strip_prefix(&stem)
                .is_some_and(|rest| ["", ".sig", ".att", ".sbom"].contains(&rest))
        })
        .collect()
}

fn attached_tags(
    rule: &Rule,
    repository: &str,
    tags: &[String],
    heads: &[&ManifestHead],
    target_repository: &str,
    inventory: &Inventory,
    out: &mut Expansion,
) {
    let mut done = BTreeSet::new();
    for head in heads {
        for tag in attached_tag_names(&head.digest, tags) {
            if !done.insert(tag) {
                continue;
            }
            let Some(attached) = inventory
                .source_heads
                .get(&tag_key(&rule.from, repository, tag))
            else {
                continue;
            };
            for to in &rule.to {
                out.candidates.push(Candidate {
                    rule_index: rule.index,
                    rule: rule.name.clone(),
                    floating: false,
                    version: None,
                    series: None,
                    source: SourceImage {
                        registry: rule.from.clone(),
                        repository: repository.to_string(),
                        tag: tag.clone(),
                        digest: attached.digest.to_string(),
                        media_type: attached.media_type.clone(),
                    },
                    target_registry: to.clone(),
                    target_repository: target_repository.to_string(),
                    target_tag: tag.clone(),
                    pin_mismatch: None,
                    digest: attached.digest.to_string(),
                    platforms: Vec::new(),
                    referrers: false,
                    attached: true,
                    mode: Mode::Copy,
                });
            }
        }
    }
}

/// Target tags whose digests the plan needs: every wished-for tag that exists
/// in the target, and for floating tags the newer versions of their series
/// there (to keep a floating tag that is already ahead).
pub fn target_probes(expansion: &Expansion, inventory: &Inventory) -> BTreeSet<TagKey> {
    let mut probes = BTreeSet::new();
    for candidate in &expansion.candidates {
        let repo = (
            candidate.target_registry.clone(),
            candidate.target_repository.clone(),
        );
        let Some(present) = inventory.target_tags.get(&repo) else {
            continue;
        };
        if !present.contains(&candidate.target_tag) {
            continue;
        }
        probes.insert(candidate.target_key());
        if let (Some(series), Some(version)) = (&candidate.series, &candidate.version) {
            for tag in present {
                if crate::rules::tag_version(tag)
                    .is_some_and(|v| v > *version && series.contains(&v))
                {
                    probes.insert((repo.0.clone(), repo.1.clone(), tag.clone()));
                }
            }
        }
    }
    probes
}
