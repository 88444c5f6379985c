//! What discovery saw of the registries: the only input of planning besides
//! the rules.

use std::collections::{BTreeMap, BTreeSet};

use crate::digest::Digest;
use crate::manifest::FilterError;
use crate::platform::Platform;
use crate::registry::{CatalogRefusal, ManifestHead};
use crate::rules::Rule;

pub use crate::keys::{RepositoryKey, TagKey};

/// One platform-filtered index, however many repositories and rules share it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FilterKey {
    /// The source registry.
    pub registry: String,
    /// The index.
    pub digest: Digest,
    /// The platforms kept.
    pub platforms: Vec<Platform>,
}

/// A snapshot of the registries the rules touch.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Registry name → store identity: equal identities share blobs (mounts).
    pub stores: BTreeMap<String, String>,
    /// `(source, target)` registry names of a move that are one store
    /// under two names → a location both reach (`127.0.0.1:5000/`).
    pub one_store: BTreeMap<(String, String), String>,
    /// Source registry → repositories found (its catalog, or the names rules spell out).
    pub repositories: BTreeMap<String, Vec<String>>,
    /// What each catalog listed, for source registries some rule matches by glob.
    pub catalogs: BTreeMap<String, CatalogListing>,
    /// Tags of each source repository; `None` when the repository does not exist.
    pub source_tags: BTreeMap<RepositoryKey, Option<Vec<String>>>,
    /// What each selected source tag points at; absent when it vanished.
    pub source_heads: BTreeMap<TagKey, ManifestHead>,
    /// What each image to write references, by source registry and the
    /// digest the target gets (a filtered index's own), for the estimate.
    pub contents: BTreeMap<(String, Digest), ImageContents>,
    /// Tags present in each target repository (empty when it does not exist).
    pub target_tags: BTreeMap<RepositoryKey, BTreeSet<String>>,
    /// Repositories (source or target) whose registry does not list their
    /// tags → what it answered. A source one holds only the tags its rules
    /// name or pin; a target one has each planned tag looked up.
    pub unlisted: BTreeMap<RepositoryKey, String>,
    /// Digest each probed target tag holds.
    pub target_heads: BTreeMap<TagKey, Digest>,
    /// Target referrers fallback tags whose index lists every referrer the
    /// source's lists, and more: nothing to add, nothing to write.
    pub listed_in_target: BTreeSet<TagKey>,
    /// `prune = "recorded"`: (rule, target image) → whether the image
    /// carries a promotion record of the rule signed by a key of its
    /// `require_record`, or why its records could not be read.
    pub recorded: BTreeMap<(String, crate::keys::ImageKey), Result<bool, String>>,
    /// Platform-filtered indexes → the new index's digest, or why there is none.
    pub filtered: BTreeMap<FilterKey, Result<Digest, FilterError>>,
    /// Source images a gated rule selects → whether they pass its gate.
    pub gates: BTreeMap<GateKey, crate::gate::Verdict>,
}

/// One image checked against one rule's `require_signature`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GateKey {
    /// The rule.
    pub rule: String,
    /// The source registry.
    pub registry: String,
    /// The image.
    pub digest: Digest,
}

/// What listing a source registry's catalog gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogListing {
    /// The catalog named this many repositories.
    Listed(usize),
    /// The registry does not list its repositories (to these credentials):
    /// only names rules spell out can be read there.
    Refused(CatalogRefusal),
}

impl CatalogListing {
    /// Whether the registry listed its repositories. A catalog that listed
    /// none at all is almost surely a registry that does not really list
    /// them (Artifact Registry), so it counts as none.
    pub fn lists_repositories(&self) -> bool {
        matches!(self, CatalogListing::Listed(listed) if *listed > 0)
    }
}

impl Inventory {
    /// Whether `rule` can be matched here: it names its repositories, or
    /// its source registry listed them. A glob over only the names other
    /// rules spell out would promote a part of what it means, unsaid.
    pub fn can_match(&self, rule: &Rule) -> bool {
        !rule.repositories.needs_listing()
            || self
                .catalogs
                .get(&rule.from)
                .is_none_or(CatalogListing::lists_repositories)
    }
}

/// Everything an image references: child manifests and blobs, flattened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageContents {
    /// Child manifests (of an index), each once.
    pub manifests: Vec<Digest>,
    /// Blobs with their sizes, each once.
    pub blobs: Vec<(Digest, u64)>,
}

/// What `rule` writes for `head` when it keeps only some platforms (a
/// filtered index, or a single-platform image checked against its config):
/// discovery computes it, expansion reads it, so both name it the same way.
pub fn filter_key(rule: &Rule, head: &ManifestHead) -> Option<FilterKey> {
    (!rule.travel.platforms.is_empty()).then(|| FilterKey {
        registry: rule.from.clone(),
        digest: head.digest.clone(),
        platforms: rule.travel.platforms.clone(),
    })
}
