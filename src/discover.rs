//! Rules × registries → inventory: lists what the rules need to see, in
//! parallel, through read-only handles. Each source catalog is listed once
//! however many rules use it; each repository's tags once; each tag's digest
//! once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rayon::prelude::*;

use crate::digest::Digest;
use crate::plan::{self, ImageContents, Inventory, RepoKey, TagKey};
use crate::registry::ReadOnly;
use crate::rules::RuleSet;
use crate::tree::read_tree;

/// Every read that failed while discovering.
#[derive(Debug)]
pub struct DiscoveryError {
    /// `what: why`, one per failure, in a stable order.
    pub failures: Vec<String>,
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

/// Results of parallel reads by key; the error is a message naming what failed.
type Listed<K, T> = Vec<(K, Result<T, String>)>;

/// Read-only handles to the registries the rules name, by name.
pub type Handles = BTreeMap<String, ReadOnly>;

/// Sees everything the plan needs; runs on the current rayon pool.
pub fn discover(rules: &RuleSet, handles: &Handles) -> Result<Inventory, DiscoveryError> {
    let mut failures = Vec::new();
    let mut inventory = Inventory {
        stores: handles
            .iter()
            .map(|(name, h)| (name.clone(), h.store_id()))
            .collect(),
        ..Inventory::default()
    };

    // 1. Source repositories: the catalog, unless every rule reading that
    //    registry spells its repositories out.
    let mut sources: BTreeMap<&str, Option<BTreeSet<String>>> = BTreeMap::new();
    for rule in &rules.rules {
        let literals = rule.repositories.literals();
        let slot = sources
            .entry(rule.from.as_str())
            .or_insert_with(|| Some(BTreeSet::new()));
        match (slot.as_mut(), literals) {
            (Some(names), Some(literals)) => names.extend(literals),
            _ => *slot = None,
        }
    }
    let listed: Listed<String, Vec<String>> = sources
        .into_par_iter()
        .map(|(registry, literals)| {
            let result = match literals {
                Some(names) => Ok(names.into_iter().collect()),
                None => handle(handles, registry)
                    .and_then(|h| h.catalog().map_err(|e| e.to_string()))
                    .map_err(|e| format!("listing the catalog of `{registry}`: {e}")),
            };
            (registry.to_string(), result)
        })
        .collect();
    for (registry, mut repositories) in collect(listed, &mut failures) {
        // A repository a rule names outright is looked up even when the
        // catalog does not show it, so a typo or a catalog the credentials
        // cannot fully see is reported, not ignored.
        for rule in rules.rules.iter().filter(|r| r.from == registry) {
            for name in rule.repositories.named() {
                if !repositories.contains(&name) {
                    repositories.push(name);
                }
            }
        }
        inventory.repositories.insert(registry, repositories);
    }

    // 2. Tags of each matched source repository.
    let repos: BTreeSet<RepoKey> = rules
        .rules
        .iter()
        .flat_map(|rule| {
            plan::matched_repositories(rule, &inventory)
                .into_iter()
                .map(|repo| plan::repo_key(&rule.from, repo))
        })
        .collect();
    for (key, tags) in collect(par_tags(handles, repos), &mut failures) {
        inventory.source_tags.insert(key, tags);
    }

    // 3. Digests of the selected source tags.
    let mut selected: BTreeSet<TagKey> = BTreeSet::new();
    for rule in &rules.rules {
        for repo in plan::matched_repositories(rule, &inventory) {
            if let Some(Some(tags)) = inventory.source_tags.get(&plan::repo_key(&rule.from, repo)) {
                for tag in rule.select_tags(tags) {
                    selected.insert(plan::tag_key(&rule.from, repo, &tag.tag));
                }
            }
        }
    }
    for (key, head) in collect(par_heads(handles, selected, "source"), &mut failures) {
        if let Some(head) = head {
            inventory.source_heads.insert(key, head);
        }
    }

    // 3b. Signature, attestation and SBOM tags of the selected images, for
    //     rules that carry them.
    let mut attached: BTreeSet<TagKey> = BTreeSet::new();
    // 3c. Indexes whose platforms a rule filters: read, filtered, digested.
    let mut to_filter: BTreeMap<(String, Digest, String), (String, Vec<String>)> = BTreeMap::new();
    for rule in rules
        .rules
        .iter()
        .filter(|r| r.referrers || !r.platforms.is_empty())
    {
        for repo in plan::matched_repositories(rule, &inventory) {
            let Some(Some(tags)) = inventory.source_tags.get(&plan::repo_key(&rule.from, repo))
            else {
                continue;
            };
            for tag in rule.select_tags(tags) {
                let Some(head) = inventory
                    .source_heads
                    .get(&plan::tag_key(&rule.from, repo, &tag.tag))
                else {
                    continue;
                };
                if rule.referrers {
                    for name in plan::attached_tag_names(&head.digest, tags) {
                        attached.insert(plan::tag_key(&rule.from, repo, name));
                    }
                }
                if !rule.platforms.is_empty() && crate::manifest::is_index(&head.media_type) {
                    to_filter
                        .entry((
                            rule.from.clone(),
                            head.digest.clone(),
                            rule.platforms.join(","),
                        ))
                        .or_insert_with(|| (repo.clone(), rule.platforms.clone()));
                }
            }
        }
    }
    attached.retain(|key| !inventory.source_heads.contains_key(key));
    for (key, head) in collect(par_heads(handles, attached, "source"), &mut failures) {
        if let Some(head) = head {
            inventory.source_heads.insert(key, head);
        }
    }
    let filtered: Vec<_> = to_filter
        .into_par_iter()
        .map(|(key, (repository, platforms))| {
            let result = handle(handles, &key.0).and_then(|h| {
                let index = h
                    .manifest_get(&repository, &key.1.to_string())
                    .map_err(|e| e.to_string())?;
                Ok(crate::manifest::filter_index(&index, &platforms).map(|m| m.digest))
            });
            (key, result)
        })
        .collect();
    for (key, result) in collect(filtered, &mut failures) {
        inventory.filtered.insert(key, result);
    }

    // 4. What the targets hold: their tag lists, then the tags the plan compares.
    let expansion = plan::expand(rules, &inventory);
    let target_repos: BTreeSet<RepoKey> = expansion
        .candidates
        .iter()
        .map(|c| plan::repo_key(&c.target_registry, &c.target_repository))
        .collect();
    for (key, tags) in collect(par_tags(handles, target_repos), &mut failures) {
        // A repository the target does not have yet holds no tags.
        inventory
            .target_tags
            .insert(key, tags.unwrap_or_default().into_iter().collect());
    }
    let probes = plan::target_probes(&expansion, &inventory);
    for (key, head) in collect(par_heads(handles, probes, "target"), &mut failures) {
        if let Some(head) = head {
            inventory.target_heads.insert(key, head.digest);
        }
    }

    // 5. Contents of the images that will be copied, for the estimate. A
    //    failure here only makes the estimate partial.
    // Each image once per source registry, read from one repository holding it.
    let changing: BTreeMap<(String, Digest), String> = expansion
        .candidates
        .iter()
        .filter(|c| {
            inventory
                .target_heads
                .get(&c.target_key())
                .is_none_or(|current| current.to_string() != c.digest)
        })
        .filter_map(|c| {
            let digest = c.source.digest.parse().ok()?;
            Some((
                (c.source.registry.clone(), digest),
                c.source.repository.clone(),
            ))
        })
        .collect();
    let contents: Vec<((String, Digest), Option<ImageContents>)> = changing
        .into_par_iter()
        .map(|((registry, digest), repository)| {
            let contents = handle(handles, &registry)
                .ok()
                .and_then(|h| image_contents(&h, &repository, &digest).ok());
            ((registry, digest), contents)
        })
        .collect();
    for (key, contents) in contents {
        if let Some(contents) = contents {
            inventory.contents.insert(key, contents);
        }
    }

    if failures.is_empty() {
        Ok(inventory)
    } else {
        failures.sort();
        Err(DiscoveryError { failures })
    }
}

fn handle(handles: &Handles, name: &str) -> Result<ReadOnly, String> {
    handles
        .get(name)
        .cloned()
        .ok_or_else(|| format!("registry `{name}` is not open"))
}

/// The successful reads; each failure's message joins `failures`.
fn collect<K, T>(listed: Listed<K, T>, failures: &mut Vec<String>) -> Vec<(K, T)> {
    let mut read = Vec::with_capacity(listed.len());
    for (key, result) in listed {
        match result {
            Ok(value) => read.push((key, value)),
            Err(failure) => failures.push(failure),
        }
    }
    read
}

/// Tags of each repository; `None` for a repository the registry does not have.
fn par_tags(handles: &Handles, keys: BTreeSet<RepoKey>) -> Listed<RepoKey, Option<Vec<String>>> {
    keys.into_par_iter()
        .map(|key| {
            let result = handle(handles, &key.0).and_then(|h| match h.tags(&key.1) {
                Ok(tags) => Ok(Some(tags)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(format!("listing tags of {}/{}: {e}", key.0, key.1)),
            });
            (key, result)
        })
        .collect()
}

/// What each tag points at; `None` for a tag that does not exist.
fn par_heads(
    handles: &Handles,
    keys: BTreeSet<TagKey>,
    side: &str,
) -> Listed<TagKey, Option<crate::registry::ManifestHead>> {
    keys.into_par_iter()
        .map(|key| {
            let result = handle(handles, &key.0).and_then(|h| {
                h.manifest_head(&key.1, &key.2)
                    .map_err(|e| format!("reading {side} tag {}/{}:{}: {e}", key.0, key.1, key.2))
            });
            (key, result)
        })
        .collect()
}

/// Child manifests and blobs of an image, each once: the tree apply copies.
fn image_contents(
    handle: &ReadOnly,
    repository: &str,
    digest: &Digest,
) -> Result<ImageContents, String> {
    let fetch = |d: &str| handle.manifest_get(repository, d);
    let tree = read_tree(&fetch, repository, digest, &[], digest).map_err(|e| e.to_string())?;
    let mut manifests: Vec<Digest> = tree.manifests.iter().map(|m| m.digest.clone()).collect();
    // The root is the image itself, not a child.
    manifests.pop();
    manifests.sort();
    let mut blobs: Vec<(Digest, u64)> =
        tree.blobs.into_iter().map(|b| (b.digest, b.size)).collect();
    blobs.sort();
    Ok(ImageContents { manifests, blobs })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::manifest::Manifest;
    use crate::registry::Registry;
    use crate::registry::oci_layout::OciLayoutStore;
    use crate::registry::recording::{Call, Recording};
    use crate::seed::{ImageSpec, LayerSpec, push_image};

    /// `staging` and `prod` OCI-layout stores under one temporary directory.
    struct Stores {
        dir: tempfile::TempDir,
    }

    impl Stores {
        fn new() -> Stores {
            Stores {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn store(&self, name: &str) -> OciLayoutStore {
            OciLayoutStore::new(self.dir.path().join(name))
        }

        /// Pushes a one-layer image as `repository:tag` into store `name`; the
        /// same `repository:tag` gives the same digest in any store.
        fn push(&self, name: &str, repository: &str, tag: &str) -> Manifest {
            self.push_labelled(name, repository, tag, &format!("{repository}:{tag}"))
        }

        /// Pushes the image `label` names as `repository:tag` into store `name`.
        fn push_labelled(&self, name: &str, repository: &str, tag: &str, label: &str) -> Manifest {
            let image = ImageSpec::oci(label, vec![LayerSpec { size: 16, seed: 9 }]);
            push_image(&self.store(name), repository, tag, &image).unwrap()
        }

        fn handles(&self) -> Handles {
            self.handles_with(|store| store)
        }

        /// Handles on both stores, each passed through `wrap` first.
        fn handles_with(&self, wrap: impl Fn(Arc<dyn Registry>) -> Arc<dyn Registry>) -> Handles {
            ["staging", "prod"]
                .into_iter()
                .map(|name| {
                    let store: Arc<dyn Registry> = Arc::new(self.store(name));
                    (name.to_string(), ReadOnly::new(wrap(store)))
                })
                .collect()
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }
    }

    /// Rules from `[[promotion]]` tables, reading `staging` and writing `prod`.
    fn rules(promotions: &str) -> RuleSet {
        let text = format!(
            "[registries.staging]\nurl = \"oci-layout:staging\"\n[registries.prod]\nurl = \"oci-layout:prod\"\n{promotions}"
        );
        let (rules, problems) = RuleSet::compile(&toml::from_str::<Config>(&text).unwrap());
        assert!(problems.is_empty(), "{problems:?}");
        rules
    }

    fn rule(name: &str, repositories: &str, extra: &str) -> String {
        format!(
            "[[promotion]]\nname = \"{name}\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [{repositories}]\n{extra}\n"
        )
    }

    fn key(registry: &str, repository: &str) -> RepoKey {
        plan::repo_key(registry, repository)
    }

    fn tag(registry: &str, repository: &str, tag: &str) -> TagKey {
        plan::tag_key(registry, repository, tag)
    }

    #[test]
    fn finds_the_repositories_and_tags_a_rule_selects() {
        let stores = Stores::new();
        let web_1 = stores.push("staging", "apps/web", "1.0.0");
        let web_1_1 = stores.push("staging", "apps/web", "1.1.0");
        stores.push("staging", "apps/web", "main");
        let worker = stores.push("staging", "apps/worker", "1.0.0");
        stores.push("staging", "tools/debug", "1.0.0");
        let rules = rules(&rule("apps", "\"apps/*\"", "semver = \">=1.0.0\""));

        let inventory = discover(&rules, &stores.handles()).unwrap();

        // The whole catalog is seen; only the matched repositories' tags are listed.
        assert_eq!(
            inventory.repositories["staging"],
            ["apps/web", "apps/worker", "tools/debug"]
        );
        assert_eq!(
            inventory.source_tags,
            BTreeMap::from([
                (
                    key("staging", "apps/web"),
                    Some(vec!["1.0.0".into(), "1.1.0".into(), "main".into()])
                ),
                (key("staging", "apps/worker"), Some(vec!["1.0.0".into()])),
            ])
        );
        // Digests are resolved for the selected tags only (`main` is no version).
        let digests: BTreeMap<TagKey, Digest> = inventory
            .source_heads
            .iter()
            .map(|(k, head)| (k.clone(), head.digest.clone()))
            .collect();
        assert_eq!(
            digests,
            BTreeMap::from([
                (tag("staging", "apps/web", "1.0.0"), web_1.digest.clone()),
                (tag("staging", "apps/web", "1.1.0"), web_1_1.digest.clone()),
                (
                    tag("staging", "apps/worker", "1.0.0"),
                    worker.digest.clone()
                ),
            ])
        );
        // Nothing in the target yet: empty tag sets, nothing probed.
        assert_eq!(inventory.target_tags[&key("prod", "apps/web")].len(), 0);
        assert!(inventory.target_heads.is_empty());
        // What would be copied is known for the estimate: one layer and a config each.
        assert_eq!(
            inventory.contents[&("staging".into(), web_1.digest)]
                .blobs
                .len(),
            2
        );
        assert_eq!(
            inventory.stores["staging"],
            stores.store("staging").store_id()
        );
    }

    #[test]
    fn reads_what_the_target_holds_for_the_planned_tags() {
        let stores = Stores::new();
        let current = stores.push("staging", "apps/web", "1.0.0");
        let newer = stores.push("staging", "apps/web", "1.1.0");
        // The target already has 1.0.0 at the same digest and 1.1.0 at another.
        stores.push("prod", "apps/web", "1.0.0");
        let stale = stores.push_labelled("prod", "apps/web", "1.1.0", "an older build");
        stores.push("prod", "apps/web", "0.9.0");
        let rules = rules(&rule("apps", "\"apps/web\"", ""));

        let inventory = discover(&rules, &stores.handles()).unwrap();

        assert_eq!(
            inventory.target_tags[&key("prod", "apps/web")],
            BTreeSet::from(["0.9.0".into(), "1.0.0".into(), "1.1.0".into()])
        );
        // Only the tags the plan writes are probed; 0.9.0 is not one of them.
        assert_eq!(
            inventory.target_heads,
            BTreeMap::from([
                (tag("prod", "apps/web", "1.0.0"), current.digest.clone()),
                (tag("prod", "apps/web", "1.1.0"), stale.digest.clone()),
            ])
        );
        assert_ne!(stale.digest, newer.digest);
        // The estimate covers the image that changes, not the one already there.
        assert!(
            inventory
                .contents
                .contains_key(&("staging".into(), newer.digest))
        );
        assert!(
            !inventory
                .contents
                .contains_key(&("staging".into(), current.digest))
        );
    }

    #[test]
    fn a_named_repository_that_is_missing_is_seen_as_missing() {
        let stores = Stores::new();
        stores.push("staging", "apps/web", "1.0.0");
        let rules = rules(&rule("apps", "\"apps/gone\"", ""));

        let inventory = discover(&rules, &stores.handles()).unwrap();

        assert_eq!(inventory.repositories["staging"], ["apps/gone"]);
        assert_eq!(
            inventory.source_tags,
            BTreeMap::from([(key("staging", "apps/gone"), None)])
        );
        assert!(inventory.source_heads.is_empty());
    }

    #[test]
    fn a_missing_store_fails_discovery_naming_it() {
        let stores = Stores::new();
        let rules = rules(&rule("apps", "\"apps/*\"", ""));

        let error = discover(&rules, &stores.handles()).unwrap_err();

        assert_eq!(error.failures.len(), 1, "{error}");
        let failure = &error.failures[0];
        assert!(
            failure.starts_with("listing the catalog of `staging`: OCI layout store"),
            "{failure}"
        );
        assert!(
            failure.contains(&stores.root().join("staging").display().to_string()),
            "{failure}"
        );
    }

    #[test]
    fn each_catalog_tag_list_and_digest_is_read_once_however_many_rules_share_it() {
        let stores = Stores::new();
        stores.push("staging", "apps/web", "1.0.0");
        stores.push("staging", "apps/web", "2.0.0");
        let rules = rules(&format!(
            "{}{}",
            rule("apps", "\"apps/*\"", ""),
            rule("mirror", "\"**\"", "target = \"mirror/{path}\"")
        ));
        let logs = std::sync::Mutex::new(Vec::new());
        let handles = stores.handles_with(|store| {
            let recording = Recording::new(store);
            logs.lock().unwrap().push(recording.log());
            Arc::new(recording)
        });

        discover(&rules, &handles).unwrap();

        let staging = logs.lock().unwrap()[0].clone();
        assert_eq!(staging.count(|c| *c == Call::Catalog), 1);
        assert_eq!(staging.count(|c| matches!(c, Call::Tags { .. })), 1);
        for version in ["1.0.0", "2.0.0"] {
            assert_eq!(
                staging.count(|c| matches!(
                    c,
                    Call::ManifestHead { reference, .. } if reference == version
                )),
                1,
                "{version}"
            );
        }
        assert!(
            logs.lock()
                .unwrap()
                .iter()
                .all(|log| log.writes().is_empty()),
            "discovery writes nothing"
        );
    }
}
