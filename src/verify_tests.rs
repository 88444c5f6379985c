//! `verify` over a real OCI-layout target: what it finds for tags that are
//! complete, missing, elsewhere, kept at a newer version, or missing a blob.

use std::sync::Arc;

use super::*;
use crate::plan::Action;
use crate::registry::oci_layout::OciLayoutStore;
use crate::seed::{ImageSpec, LayerSpec, push_image};

/// A target store holding `app:1.0` and `app:1.1` (two layers each, one shared).
struct Target {
    dir: tempfile::TempDir,
    stores: StoreMap,
    one: Digest,
    two: Digest,
}

fn target() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let store = OciLayoutStore::new(dir.path().to_path_buf());
    let image = |label: &str, seed| {
        let layers = vec![
            LayerSpec { size: 600, seed },
            LayerSpec { size: 300, seed: 9 },
        ];
        ImageSpec::oci(label, layers)
    };
    let one = push_image(&store, "app", "1.0", &image("one", 1))
        .unwrap()
        .digest;
    let two = push_image(&store, "app", "1.1", &image("two", 2))
        .unwrap()
        .digest;
    let stores = StoreMap::from([("prod".to_string(), Arc::new(store) as Arc<dyn Registry>)]);
    Target {
        dir,
        stores,
        one,
        two,
    }
}

/// An entry for `prod/app:tag`, planned at `wanted`, the target holding `current`.
fn entry(tag: &str, wanted: &Digest, current: Option<&Digest>) -> PlanEntry {
    let mut entry = PlanEntry::creating(("prod", "app", tag), ("staging", "app", tag), wanted);
    entry.action = Action::Unchanged { kept_at: None };
    entry.target.current_digest = current.cloned();
    entry
}

#[test]
fn complete_tags_at_their_digests_verify_clean() {
    let target = target();
    let plan = Plan::of(vec![
        entry("1.0", &target.one, Some(&target.one)),
        entry("1.1", &target.two, Some(&target.two)),
    ]);
    assert_eq!(verify(&plan, &target.stores), Vec::<String>::new());
}

#[test]
fn missing_tags_and_tags_elsewhere_are_named() {
    let target = target();
    let plan = Plan::of(vec![
        entry("2.0", &target.one, None),
        entry("1.0", &target.two, Some(&target.one)),
    ]);
    let problems = verify(&plan, &target.stores);
    assert_eq!(
        problems,
        [
            "prod/app:2.0: missing".to_string(),
            format!(
                "prod/app:1.0: points at {}, not {} (from staging/app:1.0)",
                target.one.short(),
                target.two.short()
            ),
        ]
    );
}

#[test]
fn a_floating_tag_kept_at_a_newer_version_is_where_it_should_be() {
    let target = target();
    let mut kept = entry("1", &target.one, Some(&target.two));
    kept.action = Action::Unchanged {
        kept_at: Some("1.1".into()),
    };
    assert_eq!(
        verify(&Plan::of(vec![kept]), &target.stores),
        Vec::<String>::new()
    );
}

#[test]
fn a_blob_gone_from_the_target_is_named_with_the_tags_that_need_it() {
    let target = target();
    let manifest = target.stores["prod"].manifest_get("app", "1.0").unwrap();
    let layer = manifest.view().unwrap().blobs[1].clone();
    let path = target
        .dir
        .path()
        .join("app/blobs")
        .join(layer.digest.algorithm())
        .join(layer.digest.hex());
    std::fs::remove_file(&path).unwrap();
    let plan = Plan::of(vec![
        entry("1.0", &target.one, Some(&target.one)),
        entry("1.1", &target.two, Some(&target.two)),
    ]);
    assert_eq!(
        verify(&plan, &target.stores),
        [format!(
            "prod/app:1.0 ({}): blob {} ({} bytes) is missing",
            target.one.short(),
            layer.digest.short(),
            layer.size
        )]
    );
}

#[test]
fn a_manifest_gone_from_the_target_is_named() {
    let target = target();
    let path = target
        .dir
        .path()
        .join("app/blobs")
        .join(target.two.algorithm())
        .join(target.two.hex());
    std::fs::remove_file(&path).unwrap();
    let plan = Plan::of(vec![entry("1.1", &target.two, Some(&target.two))]);
    let problems = verify(&plan, &target.stores);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let expected = format!(
        "prod/app:1.1 ({}): manifest {} is missing",
        target.two.short(),
        target.two.short()
    );
    assert!(problems[0].starts_with(&expected), "{problems:?}");
}

#[test]
fn a_child_manifest_gone_from_an_index_is_named() {
    let target = target();
    let store = &target.stores["prod"];
    let mut spec = ImageSpec::oci("index", vec![LayerSpec { size: 200, seed: 4 }]);
    spec.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
    let index = push_image(store.as_ref(), "app", "2.0", &spec).unwrap();
    let child = index.view().unwrap().manifests[1].digest.clone();
    let path = target
        .dir
        .path()
        .join("app/blobs")
        .join(child.algorithm())
        .join(child.hex());
    std::fs::remove_file(&path).unwrap();
    let plan = Plan::of(vec![entry("2.0", &index.digest, Some(&index.digest))]);
    let problems = verify(&plan, &target.stores);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let expected = format!(
        "prod/app:2.0 ({}): manifest {} is missing",
        index.digest.short(),
        child.short()
    );
    assert!(problems[0].starts_with(&expected), "{problems:?}");
}
