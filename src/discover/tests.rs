//! Unit tests of discovery over OCI-layout stores in temp directories.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::manifest::Manifest;
use crate::registry::oci_layout::OciLayoutStore;
use crate::registry::recording::{Call, Recording};
use crate::registry::{Registry, RegistryError};
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

fn key(registry: &str, repository: &str) -> RepositoryKey {
    RepositoryKey::new(registry, repository)
}

fn tag(registry: &str, repository: &str, tag: &str) -> TagKey {
    TagKey::new(registry, repository, tag)
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
    let failure = error.failures[0].to_string();
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
    // Each tag is resolved once: by the GET its copy needs anyway, since
    // the targets do not have it.
    for version in ["1.0.0", "2.0.0"] {
        assert_eq!(
            staging.count(|c| matches!(
                c,
                Call::ManifestHead { reference, .. } | Call::ManifestGet { reference, .. }
                    if reference == version
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

/// A registry answering `status` (with `codes`) to the catalog request.
fn catalog_answering(
    status: u16,
    codes: &[&str],
) -> impl Fn(&Call) -> RegistryError + Send + Sync + 'static {
    let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    move |_| RegistryError::Status {
        method: "GET".into(),
        url: "http://staging/v2/_catalog?n=1000".into(),
        status,
        codes: codes.clone(),
        message: String::new(),
        retry_after: None,
    }
}

/// Handles whose `staging` answers the catalog request with `error`.
fn without_catalog(
    stores: &Stores,
    error: impl Fn(&Call) -> RegistryError + Send + Sync + 'static,
) -> Handles {
    let mut handles = stores.handles();
    let staging: Arc<dyn Registry> = Arc::new(
        Recording::new(Arc::new(stores.store("staging")))
            .failing_with(|call| *call == Call::Catalog, error),
    );
    handles.insert("staging".into(), ReadOnly::new(staging));
    handles
}

#[test]
fn a_registry_without_a_catalog_is_read_through_the_names_rules_spell_out() {
    let stores = Stores::new();
    let app = stores.push("staging", "team/app", "1.0.0");
    stores.push("staging", "team/other", "1.0.0");
    let rules = rules(&format!(
        "{}{}",
        rule("apps", "\"team/*\"", ""),
        rule("named", "\"team/app\"", "")
    ));
    for (status, codes) in [
        (404, vec![]),
        (401, vec!["UNAUTHORIZED"]),
        (400, vec!["UNSUPPORTED"]),
    ] {
        let handles = without_catalog(&stores, catalog_answering(status, &codes));

        let inventory = discover(&rules, &handles).unwrap();

        assert_eq!(inventory.repositories["staging"], ["team/app"], "{status}");
        assert!(
            matches!(
                &inventory.catalogs["staging"],
                CatalogListing::Refused(refusal) if refusal.status == status
            ),
            "{status}: {:?}",
            inventory.catalogs
        );
        // The named repository is read; the glob rule reads nothing.
        assert_eq!(
            inventory.source_tags,
            BTreeMap::from([(key("staging", "team/app"), Some(vec!["1.0.0".into()]))]),
            "{status}"
        );
        assert_eq!(
            inventory.source_heads[&tag("staging", "team/app", "1.0.0")].digest,
            app.digest
        );
    }
}

#[test]
fn a_catalog_that_fails_for_another_reason_still_fails_discovery() {
    let stores = Stores::new();
    stores.push("staging", "team/app", "1.0.0");
    let rules = rules(&rule("apps", "\"team/*\"", ""));
    for status in [500, 503, 429] {
        let handles = without_catalog(&stores, catalog_answering(status, &["UNSUPPORTED"]));

        let error = discover(&rules, &handles).unwrap_err();

        assert!(
            matches!(&error.failures[..], [ReadFailure::Catalog { registry, .. }] if registry == "staging"),
            "{status}: {error}"
        );
    }
}

#[test]
fn a_listed_catalog_is_counted() {
    let stores = Stores::new();
    stores.push("staging", "team/app", "1.0.0");
    let rules = rules(&format!(
        "{}{}",
        rule("apps", "\"team/*\"", ""),
        rule("named", "\"tools/x\"", "")
    ));

    let inventory = discover(&rules, &stores.handles()).unwrap();

    assert_eq!(inventory.catalogs["staging"], CatalogListing::Listed(1));
    assert_eq!(inventory.repositories["staging"], ["team/app", "tools/x"]);
    // A registry no glob rule reads has no catalog read, so none counted.
    let named = self::rules(&rule("named", "\"team/app\"", ""));
    assert!(
        discover(&named, &stores.handles())
            .unwrap()
            .catalogs
            .is_empty()
    );
}
