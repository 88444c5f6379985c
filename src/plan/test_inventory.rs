//! Hand-built inventories for the plan's unit tests: a `staging` source,
//! `prod` and `eu` targets, images named by their tags.

use std::collections::BTreeMap;

use super::*;
use crate::config::LoadedConfig;
use crate::digest::Digest;
use crate::discover::ImageContents;
use crate::registry::ManifestHead;

/// The registries every test configuration starts with.
pub const REGISTRIES: &str = r#"
[registries.staging]
url = "oci-layout:staging"
[registries.prod]
url = "oci-layout:prod"
[registries.eu]
url = "oci-layout:eu"
"#;

/// The rules of `promotions` after [`REGISTRIES`], which must be valid.
pub fn rules(promotions: &str) -> RuleSet {
    let loaded =
        LoadedConfig::parse("promotions.toml", &format!("{REGISTRIES}{promotions}")).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let (rules, problems) = RuleSet::compile(&loaded.config);
    assert!(problems.is_empty(), "{problems:?}");
    rules
}

/// The digest of an image named `name`.
pub fn digest(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

/// An inventory where `repository` in staging has `tags`, each tag's image
/// named by its tag (so equal tags mean equal digests), with one shared blob
/// and one of its own.
pub fn staging(repository: &str, tags: &[&str]) -> Inventory {
    let mut inventory = Inventory::default();
    for (name, store) in [("staging", "s"), ("prod", "p"), ("eu", "e")] {
        inventory.stores.insert(name.into(), store.into());
    }
    add_source(&mut inventory, repository, tags);
    inventory
}

/// Adds `repository` with `tags` to the staging source, as [`staging`] does.
pub fn add_source(inventory: &mut Inventory, repository: &str, tags: &[&str]) {
    inventory
        .repositories
        .entry("staging".into())
        .or_default()
        .push(repository.into());
    inventory.source_tags.insert(
        RepositoryKey::new("staging", repository),
        Some(tags.iter().map(|t| t.to_string()).collect()),
    );
    for tag in tags {
        let image = format!("{repository}:{tag}");
        inventory.source_heads.insert(
            TagKey::new("staging", repository, tag),
            ManifestHead {
                digest: digest(&image),
                media_type: crate::manifest::OCI_MANIFEST.into(),
                size: 500,
            },
        );
        inventory.contents.insert(
            ("staging".into(), digest(&image)),
            ImageContents {
                manifests: vec![],
                blobs: vec![
                    (digest("base layer"), 1000),
                    (digest(&format!("{image} layer")), 10),
                ],
            },
        );
    }
}

/// Puts `tag` into a target repository at the digest of source image `image`.
pub fn target_has(
    inventory: &mut Inventory,
    registry: &str,
    repository: &str,
    tag: &str,
    image: &str,
) {
    inventory
        .target_tags
        .entry(RepositoryKey::new(registry, repository))
        .or_default()
        .insert(tag.to_string());
    inventory
        .target_heads
        .insert(TagKey::new(registry, repository, tag), digest(image));
}

/// The plan of `rules` over `inventory`, which must not conflict.
pub fn plan(rules: &RuleSet, inventory: &Inventory) -> Plan {
    build(rules, inventory, BTreeMap::new(), None).unwrap()
}
