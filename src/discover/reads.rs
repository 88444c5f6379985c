//! A discovery under way and the reads it makes: the state each step
//! adds to, what a failed read says, and reading many keys in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rayon::prelude::*;

use super::inventory::{Inventory, RepositoryKey, TagKey};
use crate::digest::Digest;
use crate::registry::{ReadOnly, RegistryError};
use crate::rules::RuleSet;

/// Every read that failed while discovering.
#[derive(Debug)]
pub struct DiscoveryError {
    /// One per failure, in the order of their text.
    pub failures: Vec<ReadFailure>,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "discovery failed ({} errors)", self.failures.len())?;
        for failure in self.failures.iter().take(20) {
            write!(f, "\n  {failure}")?;
        }
        if self.failures.len() > 20 {
            write!(f, "\n  ... and {} more", self.failures.len() - 20)?;
        }
        Ok(())
    }
}

impl std::error::Error for DiscoveryError {}

/// One read discovery could not make: what it was reading, and why.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    /// A rule names a registry no handle was opened for.
    #[error("registry `{0}` is not open")]
    NotOpen(String),
    /// A source registry's catalog could not be listed, for a reason other
    /// than the registry not offering one (a 5xx after retries, no answer).
    #[error("listing the catalog of `{registry}`: {source}")]
    Catalog {
        /// The source registry.
        registry: String,
        /// Why.
        source: Box<RegistryError>,
    },
    /// A source or target repository's tags could not be listed.
    #[error("listing tags of {registry}/{repository}: {source}")]
    Tags {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// Why.
        source: Box<RegistryError>,
    },
    /// A source or target tag could not be resolved to a digest.
    #[error("reading {side} tag {registry}/{repository}:{tag}: {source}")]
    Head {
        /// Which side of the promotion the tag is on.
        side: Side,
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// The tag.
        tag: String,
        /// Why.
        source: Box<RegistryError>,
    },
    /// The signatures of an image a rule gates could not be read.
    #[error("checking the signatures of {registry}/{repository}@{digest}: {source}")]
    Gate {
        /// The source registry.
        registry: String,
        /// A repository holding the image.
        repository: String,
        /// The image.
        digest: Digest,
        /// Why.
        source: Box<RegistryError>,
    },
    /// An index whose platforms a rule filters could not be read.
    #[error("{source}")]
    Index {
        /// The source registry.
        registry: String,
        /// A repository holding the index.
        repository: String,
        /// The index.
        digest: Digest,
        /// Why.
        source: Box<RegistryError>,
    },
}

/// Which side of a promotion a read is on, as failures name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Where images come from.
    Source,
    /// Where they are promoted to.
    Target,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// Results of parallel reads by key.
pub(super) type Listed<K, T> = Vec<(K, Result<T, ReadFailure>)>;

/// Read-only handles to the registries the rules name, by name.
pub type Handles = BTreeMap<String, ReadOnly>;

/// A discovery under way: the inventory so far and the reads that failed.
/// Each step reads what the steps before it make visible.
pub(super) struct Discovery<'a> {
    pub(super) rules: &'a RuleSet,
    pub(super) handles: &'a Handles,
    pub(super) inventory: Inventory,
    pub(super) failures: Vec<ReadFailure>,
    pub(super) tried: Tried,
}

/// Target reads made so far, failed ones included: none is made twice.
#[derive(Default)]
pub(super) struct Tried {
    /// Target repositories whose tags were listed.
    pub(super) targets: BTreeSet<RepositoryKey>,
    /// Target tags whose heads were read.
    pub(super) probes: BTreeSet<TagKey>,
}

/// Where to read an index a rule filters, and the platforms to keep.
pub(super) struct IndexToFilter {
    pub(super) repository: String,
    pub(super) platforms: Vec<crate::platform::Platform>,
}

/// The handle of a registry a rule names.
pub(super) fn handle<'h>(handles: &'h Handles, name: &str) -> Result<&'h ReadOnly, ReadFailure> {
    handles
        .get(name)
        .ok_or_else(|| ReadFailure::NotOpen(name.to_string()))
}

/// Reads every key in parallel on the current rayon pool, keeping each
/// result with its key.
pub(super) fn read_par<K, T>(
    keys: impl IntoParallelIterator<Item = K>,
    read: impl Fn(&K) -> Result<T, ReadFailure> + Sync + Send,
) -> Listed<K, T>
where
    K: Send,
    T: Send,
{
    keys.into_par_iter()
        .map(|key| {
            let result = read(&key);
            (key, result)
        })
        .collect()
}

/// Tags of one repository; `None` when the registry does not have it.
pub(super) fn tags_of(
    handles: &Handles,
    key: &RepositoryKey,
) -> Result<Option<Vec<String>>, ReadFailure> {
    let RepositoryKey {
        registry,
        repository,
    } = key;
    match handle(handles, registry)?.tags(repository) {
        Ok(tags) => Ok(Some(tags)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(source) => Err(ReadFailure::Tags {
            registry: registry.clone(),
            repository: repository.clone(),
            source: Box::new(source),
        }),
    }
}
