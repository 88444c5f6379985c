//! `hoist docker-promote`: JFrog Artifactory's docker promotion (`jf rt
//! docker-promote` and `POST /api/docker/{repoKey}/v2/promote`) — one tag or
//! a whole repository, copied or (by default) moved, optionally renamed —
//! planned as `hoist promote` plans one image, so the executor's mounts and
//! `mode = "move"`'s safety apply unchanged.

use super::{Carry, PromoteError, command_rule, literal, planned, refuse_moving_onto_itself};
use crate::discover::Handles;
use crate::keys::RepositoryKey;
use crate::plan::{Plan, Transfer};
use crate::reference::{Location, Reference, parse_listing, validate_repository, validate_tag};
use crate::rules::{NamedTag, Travel};

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

    /// Plans the promotion through `handles` (read-only, by the names
    /// source and target print as): one entry per tag promoted (every tag
    /// but attached artifacts' when no `--source-tag`), and one per artifact
    /// attached to those images when `referrers`.
    pub fn plan(&self, handles: &Handles, referrers: bool) -> Result<Plan, PromoteError> {
        let carry = Carry {
            travel: Travel {
                platforms: Vec::new(),
                referrers,
                mode: self.mode,
            },
            gate: None,
        };
        let mut rule = command_rule(&self.source, &self.target, &carry, RULE)?;
        if let Some(tag) = &self.source_tag {
            rule.selection.tags = literal(tag, "tags")?;
        }
        if let Some(tag) = &self.target_tag {
            rule.naming.named_tags = vec![NamedTag {
                tag: tag.clone(),
                floats: None,
            }];
        }
        let (plan, inventory) = planned(rule, handles)?;
        let source = Reference {
            tag: self.source_tag.clone(),
            ..self.source.clone()
        };
        refuse_moving_onto_itself(&source, &self.target, &plan, &inventory)?;
        let registry = self.source.location.to_string();
        let repository = RepositoryKey::new(&registry, &self.source.repository);
        let listed = matches!(inventory.source_tags.get(&repository), Some(Some(_)));
        match &self.source_tag {
            Some(tag) if !inventory.source_heads.contains_key(&repository.tag(tag)) => {
                let source = Reference {
                    tag: Some(tag.clone()),
                    ..self.source.clone()
                };
                Err(PromoteError::SourceMissing(source.to_string()))
            }
            None if !listed => Err(PromoteError::SourceMissing(self.source.to_string())),
            None if plan.entries.iter().all(|e| e.role.is_attached()) => {
                Err(PromoteError::NoTags(self.source.to_string()))
            }
            _ => Ok(plan),
        }
    }
}

/// The name of the command in the plan's entries (where a rule's name goes).
const RULE: &str = "docker-promote";

#[cfg(test)]
#[path = "docker_tests.rs"]
mod tests;
