//! `hoist promote` and `hoist docker-promote`: a command line turned into a
//! one-rule rule set, discovered and planned as `plan` plans the file's
//! rules, so every rule feature works for them by construction. What stays
//! here is Stevedore's and JFrog's naming (`destination.rs`, `docker.rs`).

use std::collections::BTreeMap;

mod destination;
mod docker;

pub use destination::{
    DEFAULT_SEMVER_TEMPLATES, Destination, Request, destination, source_reference,
};
pub use docker::{DockerPromotion, DockerRequest};

use crate::config::{FieldPath, Overwrite};
use crate::discover::{Handles, Inventory};
use crate::keys::TagKey;
use crate::plan::{Plan, Role};

use crate::reference::Reference;
use crate::rules::{
    NamedTag, Naming, Origin, PatternSet, Rule, RuleSet, Selection, Template, Travel,
};

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
    /// The source image cannot be promoted as asked (a platform it lacks).
    #[error("{0}")]
    Skipped(String),
    /// Reading the source or the target failed while planning.
    #[error(transparent)]
    Discovery(#[from] crate::discover::DiscoveryError),
}

/// What `hoist promote` copies besides the tags: the image's platforms
/// and whether its signatures, attestations and SBOMs go along.
#[derive(Clone, Debug, Default)]
pub struct Carry {
    /// The platforms kept (`--platform`), the referrers carried
    /// (`--no-referrers` clears it), copy or move (`--move`).
    pub travel: Travel,
    /// What the image must carry to be promoted (`--require-signature`).
    pub gate: Option<std::sync::Arc<crate::gate::Gate>>,
}

/// What `--require-attestation`, `--attestation-key` and
/// `--attestation-condition` ask for, compiled as a rule's
/// `require_attestation` is.
pub fn attestations_of(
    types: &[String],
    keys: &[String],
    conditions: &[String],
) -> Result<Vec<crate::gate::attestation::Requirement>, PromoteError> {
    let conditions = conditions
        .iter()
        .map(|text| condition_of(text))
        .collect::<Result<Vec<_>, _>>()?;
    let required: Vec<crate::config::RequireAttestation> = types
        .iter()
        .map(|kind| crate::config::RequireAttestation {
            predicate_type: kind.clone(),
            keys: keys.to_vec(),
            conditions: conditions.clone(),
        })
        .collect();
    crate::rules::compile_attestations(&required).map_err(|problems| {
        let messages: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        PromoteError::Arguments(format!("--require-attestation: {}", messages.join("; ")))
    })
}

/// `PATH=VALUE`, `PATH~REGEX` or `PATH<SEVERITY`.
fn condition_of(text: &str) -> Result<crate::config::AttestationCondition, PromoteError> {
    let at = text.find(['=', '~', '<']).ok_or_else(|| {
        PromoteError::Arguments(format!(
            "--attestation-condition `{text}`: write PATH=VALUE, PATH~REGEX or PATH<SEVERITY"
        ))
    })?;
    let (path, rest) = text.split_at(at);
    let value = rest[1..].to_string();
    let mut condition = crate::config::AttestationCondition {
        path: path.to_string(),
        ..Default::default()
    };
    match &rest[..1] {
        "=" => condition.equals = Some(value),
        "~" => condition.matches = Some(value),
        _ => condition.below_severity = Some(value),
    }
    Ok(condition)
}

/// The gate `--require-signature`, `--signature-annotation` and the
/// attestation flags ask for.
pub fn gate_of(
    keys: &[String],
    annotations: &[(String, String)],
    attestations: Vec<crate::gate::attestation::Requirement>,
) -> Result<Option<std::sync::Arc<crate::gate::Gate>>, PromoteError> {
    if keys.is_empty() && attestations.is_empty() {
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
        attestations,
        keys,
        annotations: annotations.iter().cloned().collect(),
        keyless: None,
    })))
}

/// Plans promoting `source` to `destination`: the one-rule rule set of the
/// command line, discovered through `handles` (read-only, by the names
/// `source` and the target print as) and planned. Tags are overwritten (a
/// promotion moves `latest`); the plan shows `~`.
pub fn plan(
    source: &Reference,
    destination: &Destination,
    carry: &Carry,
    handles: &Handles,
) -> Result<Plan, PromoteError> {
    // A tag with a digest selects the tag, pinned to the digest.
    let tag = source
        .tag
        .clone()
        .unwrap_or_else(|| source.manifest_reference());
    let mut rule = command_rule(source, &destination.target, carry, "promote")?;
    rule.selection.tags = literal(&tag, "tags")?;
    rule.naming.named_tags = destination
        .tags
        .iter()
        .map(|(tag, role)| NamedTag {
            tag: tag.clone(),
            floats: match role {
                Role::Floating { series } => Some(series.clone()),
                _ => None,
            },
        })
        .collect();
    if let (Some(tag), Some(digest)) = (&source.tag, &source.digest) {
        rule.selection.pins.insert(tag.clone(), digest.clone());
    }
    let (plan, inventory) = planned(rule, handles)?;
    let at = source_head(&inventory, source, &tag);
    refuse_tag_at_another_digest(source, at)?;
    if at.is_none() {
        return Err(PromoteError::SourceMissing(source.to_string()));
    }
    if let Some(skipped) = plan.skipped.iter().find(|s| s.tag == tag) {
        return Err(PromoteError::Skipped(skipped.reason.clone()));
    }
    refuse_moving_onto_itself(source, &destination.target, &plan, &inventory)?;
    Ok(plan)
}

/// The rule promoting repository `source` to repository `target` as
/// `carry` says, every tag selected, named `name` in the plan.
pub(crate) fn command_rule(
    source: &Reference,
    target: &Reference,
    carry: &Carry,
    name: &str,
) -> Result<Rule, PromoteError> {
    let template = |text: &str| {
        Template::parse(text, &crate::rules::Variable::ALL)
            .map_err(|e| PromoteError::Arguments(format!("`{text}`: {}", e.message)))
    };
    Ok(Rule {
        index: 0,
        name: name.to_string(),
        from: source.location.to_string(),
        to: vec![target.location.to_string()],
        repositories: literal(&source.repository, "repositories")?,
        selection: Selection {
            tags: literal("*", "tags")?,
            semver: None,
            prerelease: true,
            latest: None,
            pins: Default::default(),
        },
        naming: Naming {
            target: template(&target.repository)?,
            tag: template("{tag}")?,
            floating: Vec::new(),
            keep_source_tag: false,
            named_tags: Vec::new(),
        },
        overwrite: Overwrite::Always,
        travel: carry.travel.clone(),
        gate: carry.gate.clone(),
        require_record: None,
        pruning: None,
        origin: Origin::CommandLine,
    })
}

/// `text` as a pattern that matches itself: repository names, tags and
/// digests hold no glob characters.
pub(crate) fn literal(text: &str, field: &str) -> Result<PatternSet, PromoteError> {
    PatternSet::compile(&[text.to_string()], &FieldPath::root(field)).map_err(|problems| {
        let why: Vec<String> = problems.into_iter().map(|p| p.message).collect();
        PromoteError::Arguments(format!("`{text}`: {}", why.join("; ")))
    })
}

/// Discovers and plans one command-line rule, as `plan` does the file's.
pub(crate) fn planned(rule: Rule, handles: &Handles) -> Result<(Plan, Inventory), PromoteError> {
    let registries: BTreeMap<String, String> = std::iter::once(&rule.from)
        .chain(&rule.to)
        .map(|name| (name.clone(), name.clone()))
        .collect();
    let rules = RuleSet { rules: vec![rule] };
    let inventory = crate::discover::discover(&rules, handles)?;
    let plan = crate::plan::build(&rules, &inventory, registries, None).map_err(|conflicts| {
        let targets: Vec<String> = conflicts.iter().map(|c| c.target.clone()).collect();
        PromoteError::Arguments(format!(
            "the tags asked for write {} twice, at different images",
            targets.join(", ")
        ))
    })?;
    Ok((plan, inventory))
}

/// What the source holds at `name` (a tag, or a digest), as discovered.
fn source_head<'i>(
    inventory: &'i Inventory,
    source: &Reference,
    name: &str,
) -> Option<&'i crate::registry::ManifestHead> {
    let key = TagKey::new(&source.location.to_string(), &source.repository, name);
    inventory.source_heads.get(&key)
}

/// `REG/app:2.1.0@sha256:…` where the tag points at another image (or
/// is not there): the tag says one image, the digest another, and the
/// plan would claim the source tag is at the digest. Refused as a rule's
/// `pin` blocks it, both digests named.
fn refuse_tag_at_another_digest(
    source: &Reference,
    at: Option<&crate::registry::ManifestHead>,
) -> Result<(), PromoteError> {
    let (Some(tag), Some(digest)) = (&source.tag, &source.digest) else {
        return Ok(());
    };
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
/// writes (`tag_written`: a source tag is written under its own name);
/// discovery found whether the two names are one store.
pub(crate) fn refuse_moving_onto_itself(
    source: &Reference,
    target: &Reference,
    plan: &Plan,
    inventory: &Inventory,
) -> Result<(), PromoteError> {
    let Some(location) = plan.entries.iter().find_map(|entry| {
        match crate::plan::onto_own_source(entry, &inventory.one_store) {
            Some(crate::plan::OntoSource::OneStore { location }) => Some(location),
            _ => None,
        }
    }) else {
        return Ok(());
    };
    let what = match &source.tag {
        Some(tag) => format!(
            "`{}:{tag}` would delete the tag it writes",
            source.repository
        ),
        None => format!("`{}` would delete the tags it writes", source.repository),
    };
    Err(PromoteError::Arguments(format!(
        "the target is the source itself: `{}` and `{}` are one registry (both reach {location}), so moving {what}; write to another repository or tag, or copy instead of moving",
        source.location, target.location,
    )))
}
