//! `hoist docker-promote`: JFrog Artifactory's docker promotion (`jf rt
//! docker-promote` and `POST /api/docker/{repoKey}/v2/promote`) — one tag or
//! a whole repository, copied or (by default) moved, optionally renamed —
//! planned as `hoist promote` plans one image, so the executor's mounts and
//! `mode = "move"`'s safety apply unchanged.

use std::collections::BTreeSet;

use rayon::prelude::*;

use super::{Carry, Destination, Planned, PromoteError, SourceAndTarget};
use crate::plan::{Plan, Role, Transfer};
use crate::reference::{Location, Reference, parse_listing, validate_repository, validate_tag};
use crate::registry::ReadOnly;

/// A docker promotion as the command line (or a JFrog REST body) asks it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DockerRequest {
    /// The repository to promote (`dockerRepository`), e.g. `jfrog/ubuntu`.
    pub image: String,
    /// Source registry: a configured name or an address (`repoKey`).
    pub source: String,
    /// Target registry: a configured name or an address (`targetRepo`).
    pub target: String,
    /// One tag (`tag`); none: every tag of the repository.
    pub source_tag: Option<String>,
    /// The repository in the target (`targetDockerRepository`); none: the same.
    pub target_image: Option<String>,
    /// The tag in the target (`targetTag`); none: the same.
    pub target_tag: Option<String>,
    /// Keep the source (`copy: true`); the default is a move.
    pub copy: bool,
}

/// A docker promotion checked and resolved, before any registry is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerPromotion {
    /// The source repository (no tag).
    pub source: Reference,
    /// The target repository (no tag).
    pub target: Reference,
    /// The one tag promoted; none: the whole repository.
    pub source_tag: Option<String>,
    /// What that tag is called in the target; none: the same.
    pub target_tag: Option<String>,
    /// Copy, or move (the default).
    pub mode: Transfer,
}

impl DockerRequest {
    /// Checks the request and resolves `SOURCE` and `TARGET` into registries:
    /// configured names, `host[:port]`, or URLs with a path
    /// (`https://host/artifactory/api/docker/docker-local`).
    pub fn resolve(&self, is_name: &dyn Fn(&str) -> bool) -> Result<DockerPromotion, PromoteError> {
        let repository = |text: &str, what: &str| -> Result<String, PromoteError> {
            if let Some((name, tag)) = text.rsplit_once(':')
                && !tag.contains('/')
            {
                return Err(PromoteError::Arguments(format!(
                    "{what} `{text}` names a repository, without a tag: write `{name}` and give the tag with {}",
                    if what == "IMAGE" {
                        "--source-tag"
                    } else {
                        "--target-tag"
                    }
                )));
            }
            validate_repository(text, text)?;
            Ok(text.to_string())
        };
        let image = repository(&self.image, "IMAGE")?;
        let target_image = match &self.target_image {
            Some(name) => repository(name, "--target-docker-image")?,
            None => image.clone(),
        };
        for tag in self.source_tag.iter().chain(&self.target_tag) {
            validate_tag(tag, tag)?;
        }
        if self.target_tag.is_some() && self.source_tag.is_none() {
            return Err(PromoteError::Arguments(
                "--target-tag renames one tag: give it with --source-tag (without --source-tag the whole repository is promoted under its own tags)".to_string(),
            ));
        }
        let promotion = DockerPromotion {
            source: Reference {
                location: registry(&self.source, "SOURCE", is_name)?,
                repository: image,
                tag: None,
                digest: None,
            },
            target: Reference {
                location: registry(&self.target, "TARGET", is_name)?,
                repository: target_image,
                tag: None,
                digest: None,
            },
            source_tag: self.source_tag.clone(),
            target_tag: self.target_tag.clone(),
            mode: if self.copy {
                Transfer::Copy
            } else {
                Transfer::Move
            },
        };
        promotion.refuse_promoting_onto_itself()?;
        Ok(promotion)
    }
}

/// A registry as `SOURCE` or `TARGET` names it: a configured name, a host, a
/// URL (whose path, if any, belongs to the registry), or `oci-layout:DIR`.
fn registry(
    text: &str,
    what: &str,
    is_name: &dyn Fn(&str) -> bool,
) -> Result<Location, PromoteError> {
    match parse_listing(text, is_name)? {
        (location, None) => Ok(location),
        (_, Some(repository)) => Err(PromoteError::Arguments(format!(
            "{what} `{text}` names a repository (`{repository}`): {what} is a registry (a name from the configuration, a host, or a URL such as https://host/artifactory/api/docker/docker-local); the repository is IMAGE, or --target-docker-image in the target"
        ))),
    }
}

impl DockerPromotion {
    /// Whether source and target are one repository, where a tag written
    /// under its own name would be the source itself.
    fn same_repository(&self) -> bool {
        self.source.location == self.target.location
            && self.source.repository == self.target.repository
    }

    /// A promotion whose every target tag is its own source tag does
    /// nothing when it copies, and would delete what it writes when it moves.
    fn refuse_promoting_onto_itself(&self) -> Result<(), PromoteError> {
        let renamed = matches!(
            (&self.source_tag, &self.target_tag),
            (Some(from), Some(to)) if from != to
        );
        match self.same_repository() && !renamed {
            true => Err(PromoteError::Arguments(format!(
                "the target is the source itself ({}): give another TARGET, --target-docker-image or --target-tag",
                self.source
            ))),
            false => Ok(()),
        }
    }

    /// Reads the source and target and builds the plan: one entry per tag
    /// promoted (every tag but attached artifacts' when no `--source-tag`),
    /// and one per artifact attached to those images when `referrers`.
    pub fn plan(
        &self,
        source_store: &ReadOnly,
        target_store: &ReadOnly,
        referrers: bool,
    ) -> Result<Plan, PromoteError> {
        let repository = &self.source.repository;
        // The tags are read for a whole repository, and to find the
        // artifacts attached to the images promoted.
        let source_tags = match self.source_tag.is_none() || referrers {
            true => source_store.tags(repository)?,
            false => Vec::new(),
        };
        let promoted: Vec<&String> = match &self.source_tag {
            Some(tag) => vec![tag],
            None => source_tags
                .iter()
                .filter(|t| !crate::rules::is_attached_tag(t))
                .collect(),
        };
        if promoted.is_empty() {
            return Err(PromoteError::NoTags(self.source.to_string()));
        }
        let carry = Carry {
            platforms: &[],
            referrers,
            mode: self.mode,
            gate: None,
        };
        let stores = SourceAndTarget {
            source: source_store,
            target: target_store,
        };
        // Each tag's source and target are read apart, on the run's pool.
        let images: Vec<Result<Planned, PromoteError>> = promoted
            .par_iter()
            .map(|tag| {
                let source = Reference {
                    tag: Some((*tag).clone()),
                    ..self.source.clone()
                };
                let target_tag = self.target_tag.clone().unwrap_or_else(|| (*tag).clone());
                let destination = Destination {
                    target: self.target.clone(),
                    tags: vec![(target_tag, Role::Version)],
                    notes: Vec::new(),
                };
                stores.entries(&source, &destination, &carry, &source_tags, RULE)
            })
            .collect();
        let mut planned = Planned::default();
        let mut written = BTreeSet::new();
        for image in images {
            let image = image?;
            // An artifact attached to an image two tags share is written once.
            planned.entries.extend(
                image
                    .entries
                    .into_iter()
                    .filter(|e| written.insert(e.target.tag.clone())),
            );
            planned.skipped.extend(image.skipped);
        }
        // Tags first, then the artifacts attached to them, as `promote` orders one image.
        planned.entries.sort_by_key(|e| e.role.is_attached());
        Ok(stores.assemble(
            planned,
            &self.source.location.to_string(),
            &self.target.location.to_string(),
        ))
    }
}

/// The name of the command in the plan's entries (where a rule's name goes).
const RULE: &str = "docker-promote";

#[cfg(test)]
#[path = "docker_tests.rs"]
mod tests;
