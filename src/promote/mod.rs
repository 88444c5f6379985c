//! `hoist promote`: one image, Stevedore's semantics, turned into a plan the
//! executor runs like any other (so `--dry-run` shows the real plan).

use std::collections::BTreeMap;

mod destination;
mod docker;

pub use destination::{
    DEFAULT_SEMVER_TEMPLATES, Destination, Request, destination, source_reference,
};
pub use docker::{DockerPromotion, DockerRequest};

use crate::plan::{
    Action, GateVerdict, PLAN_FORMAT, Plan, PlanEntry, Role, SourceImage, TargetTag, Transfer,
};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::ReadOnly;

/// Why an image cannot be promoted as asked.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    /// A reference, repository or tag on the command line is malformed.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// The command line asks for something that cannot be done; says what to change.
    #[error("{0}")]
    Arguments(String),
    /// A `--semver-template` that does not parse or render.
    #[error("--semver-template `{template}`: {problem}")]
    Template {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The source tag or digest is not in the source.
    #[error("{0} not found")]
    SourceMissing(String),
    /// A whole repository to promote that holds no tags (or only
    /// artifacts attached to images).
    #[error("{0} has no tags to promote")]
    NoTags(String),
    /// The `--platform` filter cannot be applied.
    #[error("--platform: {0}")]
    Platforms(#[from] crate::manifest::FilterError),
    /// Reading the source or the target failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// What `hoist promote` copies besides the tags: the image's platforms
/// and whether its signatures, attestations and SBOMs go along.
#[derive(Clone, Debug, Default)]
pub struct Carry<'a> {
    /// Keep only these platforms of an index (none: all).
    pub platforms: &'a [Platform],
    /// Carry the artifacts attached to the image (`--no-referrers` clears it).
    pub referrers: bool,
    /// Copy, or move (`--move`: the source tag is deleted once written).
    pub mode: Transfer,
    /// What the image must carry to be promoted (`--require-signature`).
    pub gate: Option<std::sync::Arc<crate::gate::Gate>>,
}

/// The gate `--require-signature` and `--signature-annotation` ask for.
pub fn gate_of(
    keys: &[String],
    annotations: &[(String, String)],
) -> Result<Option<std::sync::Arc<crate::gate::Gate>>, PromoteError> {
    if keys.is_empty() {
        return Ok(None);
    }
    let keys = keys
        .iter()
        .map(|path| {
            crate::gate::PublicKey::read(path).map_err(|why| {
                PromoteError::Arguments(format!("--require-signature `{path}`: {why}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(std::sync::Arc::new(crate::gate::Gate {
        keys,
        annotations: annotations.iter().cloned().collect(),
        keyless: None,
    })))
}

/// Reads the source and target and builds the plan: one entry per tag, and
/// one per artifact attached to the image when `carry.referrers`.
/// Tags are overwritten (a promotion moves `latest`); the plan shows `~`.
pub fn plan(
    source: &Reference,
    source_store: &ReadOnly,
    destination: &Destination,
    target_store: &ReadOnly,
    carry: &Carry<'_>,
) -> Result<Plan, PromoteError> {
    let source_tags = match carry.referrers {
        true => source_store.tags(&source.repository)?,
        false => Vec::new(),
    };
    let stores = SourceAndTarget {
        source: source_store,
        target: target_store,
    };
    let planned = stores.entries(source, destination, carry, &source_tags, "promote")?;
    Ok(stores.assemble(
        planned,
        &source.location.to_string(),
        &destination.target.location.to_string(),
    ))
}

/// The two stores a promotion reads, through read-only handles.
pub(crate) struct SourceAndTarget<'a> {
    /// Where the images are.
    pub source: &'a ReadOnly,
    /// Where they go.
    pub target: &'a ReadOnly,
}

/// The entries promoting one source image, and the attached artifacts
/// that cannot go along (with why).
#[derive(Default)]
pub(crate) struct Planned {
    /// One per target tag, then one per attached artifact.
    pub entries: Vec<PlanEntry>,
    /// Attached artifacts left behind.
    pub skipped: Vec<crate::plan::SkippedTag>,
}

impl SourceAndTarget<'_> {
    /// `REG/app:2.1.0@sha256:…` where the tag points at another image (or
    /// is not there): the tag says one image, the digest another, and the
    /// plan would claim the source tag is at the digest. Refused as a rule's
    /// `pin` blocks it, both digests named.
    fn refuse_tag_at_another_digest(&self, source: &Reference) -> Result<(), PromoteError> {
        let (Some(tag), Some(digest)) = (&source.tag, &source.digest) else {
            return Ok(());
        };
        let at = self.source.manifest_head(&source.repository, tag)?;
        let now = match at {
            Some(head) if head.digest == *digest => return Ok(()),
            Some(head) => format!("is at {}", head.digest),
            None => "is not in the source".to_string(),
        };
        Err(PromoteError::Arguments(format!(
            "`{}:{tag}` {now}, not at {digest} as the reference says: the tag names one image and the digest another; promote the tag alone, or the digest alone (`{}/{}@{digest}`) with the target tag given by TARGET or --tag",
            source.repository, source.location, source.repository
        )))
    }

    /// A move whose target tag is its source tag on one registry under two
    /// names (`localhost:5000` and `127.0.0.1:5000`) would delete what it
    /// writes; the names alone were compared before this.
    fn refuse_moving_onto_itself(
        &self,
        source: &Reference,
        destination: &Destination,
        carry: &Carry<'_>,
    ) -> Result<(), PromoteError> {
        let target = &destination.target;
        let Some(tag) = &source.tag else {
            return Ok(());
        };
        if carry.mode != Transfer::Move
            || target.repository != source.repository
            || !destination.tags.iter().any(|(t, _)| t == tag)
        {
            return Ok(());
        }
        let Some(location) =
            crate::registry::one_store(&self.source.locations(), &self.target.locations())
        else {
            return Ok(());
        };
        Err(PromoteError::Arguments(format!(
            "the target is the source itself: `{}` and `{}` are one registry (both reach {}), so moving `{}:{tag}` would delete the tag it writes; write to another repository or tag, or copy instead of moving",
            source.location,
            target.location,
            location.trim_end_matches('/'),
            source.repository
        )))
    }

    /// The entries writing `source` to each of `destination`'s tags, and
    /// its attached artifacts (found among `source_tags`, the tags of its
    /// repository) when `carry.referrers`; `rule` names the command in the plan.
    pub(crate) fn entries(
        &self,
        source: &Reference,
        destination: &Destination,
        carry: &Carry<'_>,
        source_tags: &[String],
        rule: &str,
    ) -> Result<Planned, PromoteError> {
        self.refuse_moving_onto_itself(source, destination, carry)?;
        let reference = source.manifest_reference();
        let head = self
            .source
            .manifest_head(&source.repository, &reference)?
            .ok_or_else(|| PromoteError::SourceMissing(source.to_string()))?;
        self.refuse_tag_at_another_digest(source)?;
        let mut target_digest = None;
        if !carry.platforms.is_empty() {
            let written = crate::filter::filter_image(
                self.source,
                &source.repository,
                &head.digest,
                carry.platforms,
            )??;
            target_digest = (written != head.digest).then_some(written);
        }
        let image = SourceImage {
            registry: source.location.to_string(),
            repository: source.repository.clone(),
            tag: source.tag.clone().unwrap_or_else(|| reference.clone()),
            digest: head.digest.clone(),
            media_type: head.media_type.clone(),
        };
        let verdict = self.verdict(&image, carry, source_tags, rule)?;
        let refused = verdict.as_ref().is_some_and(|v| v.refusal().is_some());
        let writer = EntryWriter {
            destination,
            target_store: self.target,
            carry,
            rule,
            verdict,
        };
        let mut planned = Planned::default();
        for (tag, role) in &destination.tags {
            let entry = writer.entry(image.clone(), tag, role.clone(), target_digest.clone())?;
            planned.entries.push(entry);
        }
        // A refused image is not written, so nothing is attached to it.
        if carry.referrers && !refused {
            for attached in attached_images(self.source, &image, source_tags)? {
                match &target_digest {
                    None => {
                        let tag = attached.tag.clone();
                        let role = Role::Attached {
                            subject: image.digest.clone(),
                        };
                        planned
                            .entries
                            .push(writer.entry(attached, &tag, role, None)?);
                    }
                    Some(filtered) => planned
                        .skipped
                        .push(signature_left_behind(&attached, &image, filtered)),
                }
            }
        }
        Ok(planned)
    }

    /// The verdict of `--require-signature` on `image`, if asked for; the
    /// repository's tags are listed for it unless `source_tags` has them.
    fn verdict(
        &self,
        image: &SourceImage,
        carry: &Carry<'_>,
        source_tags: &[String],
        rule: &str,
    ) -> Result<Option<GateVerdict>, PromoteError> {
        let Some(gate) = &carry.gate else {
            return Ok(None);
        };
        let listed;
        let tags = if carry.referrers {
            source_tags
        } else {
            listed = self.source.tags(&image.repository)?;
            &listed
        };
        let verdict =
            crate::gate::check(self.source, &image.repository, &image.digest, tags, gate)?;
        Ok(Some(GateVerdict::of(rule, &verdict)))
    }

    /// The plan of `planned`, from the registry named `source` to the one
    /// named `target`: its summary and its estimate of the work.
    pub(crate) fn assemble(&self, planned: Planned, source: &str, target: &str) -> Plan {
        let Planned { entries, skipped } = planned;
        Plan {
            format: PLAN_FORMAT,
            registries: BTreeMap::from([
                (source.to_string(), source.to_string()),
                (target.to_string(), target.to_string()),
            ]),
            summary: crate::plan::summarize(&entries, skipped.len()),
            estimate: estimate(&entries, self.source, self.target),
            entries,
            skipped,
            rule_problems: Vec::new(),
            new_repositories: Vec::new(),
        }
    }
}

/// The work `entries` mean, as `plan` estimates it for rules: each image's
/// tree read from the source (of a filtered index, the platforms kept).
fn estimate(
    entries: &[PlanEntry],
    source_store: &ReadOnly,
    target_store: &ReadOnly,
) -> crate::plan::Estimate {
    let mut inventory = crate::discover::Inventory::default();
    for entry in entries {
        let (source, target) = (&entry.source, &entry.target);
        let stores = [
            (&source.registry, source_store),
            (&target.registry, target_store),
        ];
        for (name, store) in stores {
            inventory.stores.insert(name.clone(), store.store_id());
        }
        if let Some(current) = &target.current_digest {
            let key = crate::keys::TagKey::new(&target.registry, &target.repository, &target.tag);
            inventory.target_heads.insert(key, current.clone());
        }
        let written = entry.target_digest();
        let key = (source.registry.clone(), written.clone());
        if !entry.changes() || inventory.contents.contains_key(&key) {
            continue;
        }
        let contents = crate::discover::image_contents(
            source_store,
            &source.repository,
            &source.digest,
            &entry.platforms,
            written,
        );
        if let Ok(contents) = contents {
            inventory.contents.insert(key, contents);
        }
    }
    crate::plan::estimate(entries, &inventory)
}

/// Makes the plan entries of one promotion, reading each target tag.
struct EntryWriter<'a> {
    destination: &'a Destination,
    target_store: &'a ReadOnly,
    carry: &'a Carry<'a>,
    rule: &'a str,
    /// The verdict of `--require-signature` on the source image.
    verdict: Option<GateVerdict>,
}

impl EntryWriter<'_> {
    /// The entry writing `image` (at `filtered`, a platform-filtered index's
    /// digest, if any) to target tag `tag`: created, updated or unchanged.
    fn entry(
        &self,
        image: SourceImage,
        tag: &str,
        role: Role,
        filtered: Option<crate::digest::Digest>,
    ) -> Result<PlanEntry, PromoteError> {
        let repository = &self.destination.target.repository;
        let current = self
            .target_store
            .manifest_head(repository, tag)?
            .map(|h| h.digest);
        let wanted = filtered.as_ref().unwrap_or(&image.digest);
        let attached = role.is_attached();
        let verdict = self.verdict.clone().filter(|_| !attached);
        let action = match (&current, verdict.as_ref().and_then(|v| v.refusal())) {
            (_, Some(reason)) => Action::blocked(format!("--require-signature: {reason}")),
            (None, None) => Action::Create,
            (Some(c), None) if c == wanted => Action::UNCHANGED,
            (Some(_), None) => Action::Update,
        };
        Ok(PlanEntry {
            action,
            role,
            source: image,
            target: TargetTag {
                registry: self.destination.target.location.to_string(),
                repository: repository.clone(),
                tag: tag.to_string(),
                current_digest: current,
                digest: filtered,
            },
            rules: vec![self.rule.to_string()],
            platforms: if attached {
                Vec::new()
            } else {
                self.carry.platforms.to_vec()
            },
            referrers: self.carry.referrers && !attached,
            mode: self.carry.mode,
            gate: verdict,
        })
    }
}

/// The signature, attestation and SBOM tags of `image` among `tags` (its
/// repository's), each as the image it points at. A tag that resolves to the image itself
/// (GitLab's answer to `sha256-<hex>`) is not one of them.
fn attached_images(
    source_store: &ReadOnly,
    image: &SourceImage,
    tags: &[String],
) -> Result<Vec<SourceImage>, PromoteError> {
    let mut attached = Vec::new();
    for tag in crate::discover::attached_tag_names(&image.digest, tags) {
        let Some(head) = source_store.manifest_head(&image.repository, tag)? else {
            continue;
        };
        if head.digest == image.digest {
            continue;
        }
        attached.push(SourceImage {
            tag: tag.clone(),
            digest: head.digest,
            media_type: head.media_type,
            ..image.clone()
        });
    }
    Ok(attached)
}

/// Why an artifact attached to an index is not carried when `--platform`
/// filters that index: it names the index's digest, and the filtered index
/// is another image.
fn signature_left_behind(
    attached: &SourceImage,
    image: &SourceImage,
    filtered: &crate::digest::Digest,
) -> crate::plan::SkippedTag {
    crate::plan::SkippedTag {
        rule: "promote".to_string(),
        registry: attached.registry.clone(),
        repository: attached.repository.clone(),
        tag: attached.tag.clone(),
        reason: format!(
            "attached to {}, which --platform filters into a new index {}: it does not apply to that image and is not carried (sign the filtered image)",
            image.digest, filtered
        ),
    }
}
