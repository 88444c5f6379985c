//! Rules applied to the source side of the inventory: which target tags each
//! rule wants, at which digest, before deduplication and comparison.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use super::inventory::{Inventory, RepositoryKey, TagKey};
use super::source_checks::{effective_digest, gate_verdict};

use crate::digest::Digest;
use crate::entry::{GateVerdict, Role, SkippedTag, SourceImage};

use crate::reference::{validate_repository, validate_tag};
use crate::registry::ManifestHead;
use crate::rules::{Rule, RuleSet, SelectedTag, Template, Travel, Values};

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
    /// A version tag, a floating tag of a series, or an attached artifact.
    pub role: Role,
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
    pub pin_mismatch: Option<Digest>,
    /// The verdict of the rule's `require_signature`, if it has one.
    pub gate: Option<GateVerdict>,
    /// The digest the target tag will hold (the source's, or a filtered index).
    pub digest: Digest,
    /// What travels with the image: the rule's platforms, referrers, mode.
    pub travel: Travel,
}

impl Candidate {
    /// `(registry, repository, tag)` of the target.
    pub fn target_key(&self) -> TagKey {
        TagKey::new(
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

/// The source repositories of the inventory a rule matches: none for a
/// rule matching by glob on a registry that does not list its repositories
/// (no catalog, or an empty one).
pub fn matched_repositories<'a>(rule: &Rule, inventory: &'a Inventory) -> Vec<&'a String> {
    if !inventory.can_match(rule) {
        return Vec::new();
    }
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

/// Every candidate one rule wants from one source repository: each selected
/// tag's target tags, the artifacts attached to them, then floating tags.
fn expand_repository(rule: &Rule, repository: &str, inventory: &Inventory, out: &mut Expansion) {
    let Some((tags, mut expansion)) = RepositoryExpansion::start(rule, repository, inventory, out)
    else {
        return;
    };
    let mut resolved = Vec::new();
    let selection = rule.selection.select_tags(tags);
    for (tag, reason) in rule.selection.left_out(tags, &selection) {
        expansion.skip(&tag, reason);
    }
    for selected in selection {
        if let Some(tag) = expansion.resolve(selected, inventory) {
            expansion.claim_target_tags(&tag);
            resolved.push(tag);
        }
    }
    let carrying: Vec<&ManifestHead> = resolved
        .iter()
        .filter(|tag| rule.travel.referrers && tag.is_verbatim())
        .map(|tag| tag.head)
        .collect();
    expansion.claim_attached_tags(tags, &carrying, inventory);
    if rule.travel.referrers {
        expansion.note_filtered_signatures(tags, &resolved);
    }
    let versions: Vec<&ResolvedTag> = resolved.iter().filter(|t| t.ranks()).collect();
    for template in &rule.naming.floating {
        let winners = series_winners(rule, repository, template, &versions);
        expansion.claim_floating_tags(template, winners);
    }
}

/// A selected source tag that is still in the source: what it points at,
/// and the digest its target tags get.
struct ResolvedTag<'i> {
    selected: SelectedTag,
    head: &'i ManifestHead,
    /// The source's digest, or the platform-filtered index's.
    digest: Digest,
    /// The pinned digest, when the source tag is elsewhere.
    pin_mismatch: Option<Digest>,
    /// The verdict of the rule's gate, if it has one.
    gate: Option<GateVerdict>,
}

impl ResolvedTag<'_> {
    /// Written as the source holds it: not refused by a pin, not a filtered
    /// index, so the source's signatures still name it.
    fn is_verbatim(&self) -> bool {
        self.pin_mismatch.is_none() && !self.refused() && self.digest == self.head.digest
    }

    /// Ranks among the versions floating tags follow: a version, not refused
    /// by a pin, selected by the filters rather than only for its pin.
    fn ranks(&self) -> bool {
        self.selected.version.is_some()
            && self.pin_mismatch.is_none()
            && !self.refused()
            && !self.selected.pinned_only
    }

    /// Whether the rule's gate refuses the image.
    fn refused(&self) -> bool {
        self.gate.as_ref().is_some_and(|g| g.refusal().is_some())
    }
}

/// The highest version of each series a floating template renders,
/// by rendered tag. Ties (`v1.2.0` and `1.2.0`) go to the tag that sorts
/// last, so the choice never depends on order.
fn series_winners<'p, 'i>(
    rule: &Rule,
    repository: &str,
    template: &Template,
    versions: &[&'p ResolvedTag<'i>],
) -> BTreeMap<String, &'p ResolvedTag<'i>> {
    let mut winners: BTreeMap<String, &ResolvedTag> = BTreeMap::new();
    for &tag in versions {
        let Some(version) = tag.selected.version.as_ref() else {
            continue;
        };
        if !takes_floating(version, template, rule.selection.prerelease) {
            continue;
        }
        let Some(rendered) = template.render(&Values {
            tag: &tag.selected.tag,
            version: Some(version),
            path: repository,
        }) else {
            continue;
        };
        let better = winners.get(&rendered).is_none_or(|best| {
            let best = &best.selected;
            (version, &tag.selected.tag) > (best.version.as_ref().unwrap_or(version), &best.tag)
        });
        if better {
            winners.insert(rendered, tag);
        }
    }
    winners
}

/// One rule applied to one source repository: the shared parts of its
/// candidates, and where candidates and skipped tags go.
struct RepositoryExpansion<'a> {
    rule: &'a Rule,
    repository: &'a str,
    target_repository: String,
    out: &'a mut Expansion,
}

impl<'a> RepositoryExpansion<'a> {
    /// The repository's tags and an expansion into its target repository;
    /// `None` (with the repository skipped, when it should be said) when
    /// the source lacks it or the target template gives no valid repository.
    fn start<'i>(
        rule: &'a Rule,
        repository: &'a str,
        inventory: &'i Inventory,
        out: &'a mut Expansion,
    ) -> Option<(&'i [String], Self)> {
        let mut expansion = RepositoryExpansion {
            rule,
            repository,
            target_repository: rule.naming.target_repository(repository),
            out,
        };
        let tags = match inventory
            .source_tags
            .get(&RepositoryKey::new(&rule.from, repository))
        {
            Some(Some(tags)) => tags,
            Some(None) => {
                expansion.skip("", "repository not found in the source".to_string());
                return None;
            }
            None => return None,
        };
        let target = &expansion.target_repository;
        if let Err(e) = validate_repository(target, target) {
            let reason = format!(
                "target template `{}` gives an invalid repository: {e}",
                rule.naming.target
            );
            expansion.skip("", reason);
            return None;
        }
        Some((tags, expansion))
    }

    /// What a selected tag points at and the digest it is written at, or
    /// `None` with the tag skipped when it vanished or cannot be filtered.
    fn resolve<'i>(
        &mut self,
        selected: SelectedTag,
        inventory: &'i Inventory,
    ) -> Option<ResolvedTag<'i>> {
        let key = TagKey::new(&self.rule.from, self.repository, &selected.tag);
        let Some(head) = inventory.source_heads.get(&key) else {
            let reason = "the tag disappeared from the source while planning";
            self.skip(&selected.tag, reason.to_string());
            return None;
        };
        let digest = match effective_digest(self.rule, head, inventory) {
            Ok(digest) => digest,
            Err(e) => {
                self.skip(&selected.tag, e.to_string());
                return None;
            }
        };
        let pin_mismatch = self
            .rule
            .selection
            .pins
            .get(&selected.tag)
            .filter(|pin| **pin != head.digest)
            .cloned();
        let gate = gate_verdict(self.rule, head, inventory);
        Some(ResolvedTag {
            selected,
            head,
            digest,
            pin_mismatch,
            gate,
        })
    }

    /// The target tags of a resolved tag: its `tag` template, and the source
    /// tag itself with `keep_source_tag`.
    fn claim_target_tags(&mut self, resolved: &ResolvedTag<'_>) {
        if !self.rule.naming.named_tags.is_empty() {
            return self.claim_named_tags(resolved);
        }
        let selected = &resolved.selected;
        let written = self.rule.naming.version_tags(selected, self.repository);
        if let Some(reason) = written.unwritable {
            self.skip(&selected.tag, reason);
        }
        for tag in written.tags {
            let candidate = Candidate {
                version: selected.version.clone(),
                pin_mismatch: resolved.pin_mismatch.clone(),
                gate: resolved.gate.clone(),
                ..self.candidate(&selected.tag, resolved.head, tag, &resolved.digest)
            };
            self.claim(candidate);
        }
    }

    /// The tags a command line named for a resolved tag, each as given.
    fn claim_named_tags(&mut self, resolved: &ResolvedTag<'_>) {
        let selected = &resolved.selected;
        for named in &self.rule.naming.named_tags {
            let role = match &named.floats {
                Some(series) => Role::Floating {
                    series: series.clone(),
                },
                None => Role::Version,
            };
            let candidate = Candidate {
                role,
                version: selected.version.clone(),
                pin_mismatch: resolved.pin_mismatch.clone(),
                gate: resolved.gate.clone(),
                ..self.candidate(
                    &selected.tag,
                    resolved.head,
                    named.tag.clone(),
                    &resolved.digest,
                )
            };
            self.claim(candidate);
        }
    }

    /// Each series' floating tag, at the version that wins it.
    fn claim_floating_tags(
        &mut self,
        template: &Template,
        winners: BTreeMap<String, &ResolvedTag<'_>>,
    ) {
        for (rendered, resolved) in winners {
            let selected = &resolved.selected;
            if validate_tag(&rendered, &rendered).is_err() {
                let reason = format!(
                    "floating template `{template}` gives `{rendered}`, which is not a valid tag"
                );
                self.skip(&selected.tag, reason);
                continue;
            }
            let series = Series {
                template: template.clone(),
                path: self.repository.to_string(),
                rendered: rendered.clone(),
                prerelease: self.rule.selection.prerelease,
            };
            let candidate = Candidate {
                role: Role::Floating {
                    series: template.to_string(),
                },
                version: selected.version.clone(),
                series: Some(series),
                gate: resolved.gate.clone(),
                ..self.candidate(&selected.tag, resolved.head, rendered, &resolved.digest)
            };
            self.claim(candidate);
        }
    }

    /// Signature, attestation and SBOM tags of the images in `heads`, among
    /// `tags`, each once: copied as they are, whatever the rule's platforms.
    fn claim_attached_tags(
        &mut self,
        tags: &[String],
        heads: &[&ManifestHead],
        inventory: &Inventory,
    ) {
        let mut done = BTreeSet::new();
        for head in heads {
            for tag in attached_tag_names(&head.digest, tags) {
                if !done.insert(tag) {
                    continue;
                }
                let key = TagKey::new(&self.rule.from, self.repository, tag);
                let Some(attached) = inventory.source_heads.get(&key) else {
                    continue;
                };
                if attached.digest == head.digest {
                    self.skip(
                        tag,
                        format!(
                            "resolves to its subject {} itself, not to an artifact attached to it \
                         (GitLab answers this tag form with the image): not carried",
                            head.digest
                        ),
                    );
                    continue;
                }
                let digest = attached.digest.clone();
                let candidate = Candidate {
                    role: Role::Attached {
                        subject: head.digest.clone(),
                    },
                    // An attached artifact is copied whole, without its own
                    // referrers; a moved image's artifacts move with it (once
                    // it has left the source: see execute::moves).
                    travel: Travel {
                        mode: self.rule.travel.mode,
                        ..Travel::default()
                    },
                    ..self.candidate(tag, attached, tag.clone(), &digest)
                };
                self.claim(candidate);
            }
        }
    }

    /// Artifacts attached to an index the rule filters by platform name the
    /// index's digest, not the filtered one: each is skipped, saying so.
    fn note_filtered_signatures(&mut self, tags: &[String], resolved: &[ResolvedTag<'_>]) {
        let mut done = BTreeSet::new();
        for tag in resolved {
            if tag.pin_mismatch.is_some() || tag.digest == tag.head.digest {
                continue;
            }
            for attached in attached_tag_names(&tag.head.digest, tags) {
                if done.insert(attached) {
                    let reason = format!(
                        "attached to {}, which `platforms` filters into a new index {}: \
                         it does not apply to that image and is not carried (sign the filtered image)",
                        tag.head.digest, tag.digest
                    );
                    self.skip(attached, reason);
                }
            }
        }
    }

    /// A candidate for `target_tag` from source `tag` at `head`, written at
    /// `digest`, with the rule's settings; the target registry is set by
    /// [`Self::claim`].
    fn candidate(
        &self,
        tag: &str,
        head: &ManifestHead,
        target_tag: String,
        digest: &Digest,
    ) -> Candidate {
        Candidate {
            rule_index: self.rule.index,
            rule: self.rule.name.clone(),
            role: Role::Version,
            version: None,
            series: None,
            source: SourceImage {
                registry: self.rule.from.clone(),
                repository: self.repository.to_string(),
                tag: tag.to_string(),
                digest: head.digest.clone(),
                media_type: head.media_type.clone(),
            },
            target_registry: String::new(),
            target_repository: self.target_repository.clone(),
            target_tag,
            pin_mismatch: None,
            gate: None,
            digest: digest.clone(),
            travel: self.rule.travel.clone(),
        }
    }

    /// The candidate once per target registry of the rule (fan-out).
    fn claim(&mut self, candidate: Candidate) {
        for to in &self.rule.to {
            self.out.candidates.push(Candidate {
                target_registry: to.clone(),
                ..candidate.clone()
            });
        }
    }

    /// Records a selected source tag (empty: the whole repository) that
    /// cannot be promoted, and why.
    fn skip(&mut self, tag: &str, reason: String) {
        self.out.skipped.push(SkippedTag {
            rule: self.rule.name.clone(),
            registry: self.rule.from.clone(),
            repository: self.repository.to_string(),
            tag: tag.to_string(),
            reason,
        });
    }
}

/// Tags that carry signatures, attestations and SBOMs of an image by the
/// cosign convention (`sha256-<hex>.sig`, `.att`, `.sbom`, and the OCI
/// referrers fallback tag `sha256-<hex>`, its hex cut to 64 digits as the
/// spec has it or whole as older clients wrote it), among `tags`.
pub fn attached_tag_names<'a>(
    digest: &crate::digest::Digest,
    tags: &'a [String],
) -> Vec<&'a String> {
    let stem = digest.to_string().replacen(':', "-", 1);
    let fallback = crate::referrers::fallback_tag(digest);
    tags.iter()
        .filter(|tag| {
            **tag == fallback
                || tag
                    .strip_prefix(&stem)
                    .is_some_and(|rest| ["", ".sig", ".att", ".sbom"].contains(&rest))
        })
        .collect()
}

/// Target tags whose digests the plan needs: every wished-for tag that exists
/// in the target, and for floating tags the newer versions of their series
/// there (to keep a floating tag that is already ahead).
pub fn target_probes(expansion: &Expansion, inventory: &Inventory) -> BTreeSet<TagKey> {
    let mut probes = BTreeSet::new();
    for candidate in &expansion.candidates {
        let repo = RepositoryKey::new(&candidate.target_registry, &candidate.target_repository);
        if inventory.unlisted.contains_key(&repo) {
            // No listing: the tag's own HEAD says whether it is there.
            probes.insert(candidate.target_key());
            continue;
        }
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
                    probes.insert(repo.tag(tag));
                }
            }
        }
    }
    probes
}
