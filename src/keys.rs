//! The references every stage shares, by registry name: a repository in a
//! registry, a tag of it, an image by digest in it. Discovery keys what it
//! saw by them, planning and execution what they write.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// One image in one repository: what a tag points at (of a target: once written).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageKey {
    /// Target registry name.
    pub registry: String,
    /// Target repository.
    pub repository: String,
    /// The digest the target gets (the source's, or a platform-filtered index's).
    pub digest: Digest,
}

impl ImageKey {
    /// The target repository the image lands in.
    pub fn repository_key(&self) -> RepositoryKey {
        RepositoryKey {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
        }
    }
}

impl std::fmt::Display for ImageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = self.digest.short();
        write!(f, "{}/{}@{short}", self.registry, self.repository)
    }
}

/// A repository of a registry, by the registry's configured name.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct RepositoryKey {
    /// Registry name.
    pub registry: String,
    /// Repository.
    pub repository: String,
}

impl RepositoryKey {
    /// A key from borrowed parts.
    pub fn new(registry: &str, repository: &str) -> RepositoryKey {
        RepositoryKey {
            registry: registry.to_string(),
            repository: repository.to_string(),
        }
    }

    /// The tag `tag` of this repository.
    pub fn tag(&self, tag: &str) -> TagKey {
        TagKey::new(&self.registry, &self.repository, tag)
    }
}

impl fmt::Display for RepositoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// One tag of a repository in a registry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagKey {
    /// Registry name.
    pub registry: String,
    /// Repository.
    pub repository: String,
    /// Tag.
    pub tag: String,
}

impl TagKey {
    /// A key from borrowed parts.
    pub fn new(registry: &str, repository: &str, tag: &str) -> TagKey {
        TagKey {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.to_string(),
        }
    }

    /// The repository the tag is in.
    pub fn repository_key(&self) -> RepositoryKey {
        RepositoryKey::new(&self.registry, &self.repository)
    }
}

impl fmt::Display for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

impl ImageKey {
    /// A key from borrowed parts.
    pub fn new(registry: &str, repository: &str, digest: &Digest) -> ImageKey {
        ImageKey {
            registry: registry.to_string(),
            repository: repository.to_string(),
            digest: digest.clone(),
        }
    }
}
