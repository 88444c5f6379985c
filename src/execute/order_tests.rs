//! The write-order guarantee, asserted on every write the executor makes:
//! a recording target (a real OCI-layout store underneath) logs each call,
//! one at a time, so the log is the order the target saw.

use std::sync::Arc;

use super::*;
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::plan::PlanEntry;
use crate::plan::Role;
use crate::registry::Registry;
use crate::registry::oci_layout::OciLayoutStore;
use crate::registry::recording::{Call, CallLog, Recording};
use crate::seed::{ImageSpec, LayerSpec, push_image};

/// A source store holding a two-platform index at `app:1.2.0` and a
/// single-platform image at `app:1.1.0`, and an empty recorded target.
struct Stores {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    map: StoreMap,
    log: CallLog,
    index: Manifest,
    image: Manifest,
}

fn stores(recording: impl FnOnce(Recording) -> Recording) -> Stores {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source: Arc<dyn Registry> = Arc::new(OciLayoutStore::new(dirs.0.path().to_path_buf()));
    let layers = |seed| {
        vec![
            LayerSpec { size: 2048, seed },
            LayerSpec {
                size: 512,
                seed: 99,
            },
        ]
    };
    let mut spec = ImageSpec::oci("index", layers(1));
    spec.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
    let index = push_image(source.as_ref(), "app", "1.2.0", &spec).unwrap();
    let image = push_image(
        source.as_ref(),
        "app",
        "1.1.0",
        &ImageSpec::oci("one", layers(2)),
    )
    .unwrap();
    let target = recording(Recording::new(Arc::new(OciLayoutStore::new(
        dirs.1.path().to_path_buf(),
    ))));
    let log = target.log();
    let map = StoreMap::from([
        ("staging".to_string(), source),
        ("prod".to_string(), Arc::new(target) as Arc<dyn Registry>),
    ]);
    Stores {
        _dirs: dirs,
        map,
        log,
        index,
        image,
    }
}

fn entry(tag: &str, source_tag: &str, digest: &Digest, floating: bool) -> PlanEntry {
    let mut entry =
        PlanEntry::creating(("prod", "app", tag), ("staging", "app", source_tag), digest);
    if floating {
        entry.role = Role::Floating { series: tag.into() };
    }
    entry
}

/// `1.2.0` and `1.1.0`, then the floating tags `1` and `latest` at 1.2.0.
fn plan(stores: &Stores) -> Plan {
    let (index, image) = (&stores.index.digest, &stores.image.digest);
    Plan::of(vec![
        entry("1.1.0", "1.1.0", image, false),
        entry("1.2.0", "1.2.0", index, false),
        entry("1", "1.2.0", index, true),
        entry("latest", "1.2.0", index, true),
    ])
}

fn apply(plan: &Plan, stores: &Stores) -> Outcome {
    let progress = Progress::new(ProgressMode::Never, 0, 0);
    run(
        plan,
        &stores.map,
        &CopyStats::default(),
        &progress,
        Options::default(),
    )
}

/// Where in the log a write happened.
fn position(writes: &[Call], wanted: impl Fn(&Call) -> bool) -> Vec<usize> {
    writes
        .iter()
        .enumerate()
        .filter(|(_, c)| wanted(c))
        .map(|(i, _)| i)
        .collect()
}

fn manifest_put(call: &Call) -> Option<(&str, &Digest)> {
    match call {
        Call::ManifestPut {
            reference, digest, ..
        } => Some((reference.as_str(), digest)),
        _ => None,
    }
}

#[test]
fn blobs_then_child_manifests_then_the_manifest_then_tags_floating_last() {
    let stores = stores(|r| r);
    let outcome = apply(&plan(&stores), &stores);
    assert!(
        outcome
            .statuses
            .iter()
            .all(|s| matches!(s, Status::Promoted)),
        "{:?}",
        outcome.statuses
    );
    let writes = stores.log.writes();
    let index = &stores.index;
    let children: Vec<Digest> = index
        .view()
        .unwrap()
        .manifests
        .iter()
        .map(|m| m.digest.clone())
        .collect();
    let tag_of = |tag: &'static str| move |c: &Call| manifest_put(c).is_some_and(|(r, _)| r == tag);
    let child_puts = position(&writes, |c| {
        manifest_put(c).is_some_and(|(_, d)| children.contains(d))
    });
    let (tag_120, tag_1, tag_latest) = (
        position(&writes, tag_of("1.2.0")),
        position(&writes, tag_of("1")),
        position(&writes, tag_of("latest")),
    );
    assert_eq!(child_puts.len(), 2, "both platform manifests: {writes:#?}");
    assert_eq!((tag_120.len(), tag_1.len(), tag_latest.len()), (1, 1, 1));
    // Each image's blobs are in before any of its manifests: the children
    // (whose blobs are the index's) and the single image before its tag.
    let source = &stores.map["staging"];
    let blobs_of = |manifest: &Manifest| -> Vec<Digest> {
        let view = manifest.view().unwrap();
        let mut blobs: Vec<Digest> = view.blobs.iter().map(|b| b.digest.clone()).collect();
        for child in &view.manifests {
            let child = source
                .manifest_get("app", &child.digest.to_string())
                .unwrap();
            blobs.extend(child.view().unwrap().blobs.into_iter().map(|b| b.digest));
        }
        blobs
    };
    let landed = |blobs: Vec<Digest>| {
        position(&writes, |c| match c {
            Call::BlobPut { digest, .. } | Call::BlobMount { digest, .. } => blobs.contains(digest),
            _ => false,
        })
    };
    let (index_blobs, image_blobs) = (landed(blobs_of(index)), landed(blobs_of(&stores.image)));
    assert!(!index_blobs.is_empty() && !image_blobs.is_empty());
    let first_child = child_puts[0];
    assert!(index_blobs.iter().all(|&b| b < first_child), "{writes:#?}");
    let tag_110 = position(&writes, tag_of("1.1.0"));
    assert!(image_blobs.iter().all(|&b| b < tag_110[0]), "{writes:#?}");
    assert!(child_puts.iter().all(|&c| c < tag_120[0]), "{writes:#?}");
    assert!(
        tag_120[0] < tag_1[0] && tag_120[0] < tag_latest[0],
        "{writes:#?}"
    );
    // The floating tags come after every version tag of the repository.
    assert!(tag_110[0] < tag_1[0] && tag_110[0] < tag_latest[0]);
    // Each manifest stored exactly once, each blob crossing once.
    let blobs_put = position(&writes, |c| matches!(c, Call::BlobPut { .. }));
    let distinct: std::collections::BTreeSet<_> = writes
        .iter()
        .filter_map(|c| match c {
            Call::BlobPut { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(blobs_put.len(), distinct.len(), "{writes:#?}");
}

#[test]
fn a_refused_version_tag_keeps_its_floating_tags_out() {
    let stores = stores(|r| {
        r.failing_when(|c| manifest_put(c).is_some_and(|(reference, _)| reference == "1.2.0"))
    });
    let outcome = apply(&plan(&stores), &stores);
    let shown: Vec<String> = outcome
        .statuses
        .iter()
        .map(|s| match s {
            Status::Failed(why) => format!("failed: {why}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(shown[0], "Promoted");
    assert!(
        shown[1].starts_with("failed: writing tag 1.2.0"),
        "{shown:?}"
    );
    // `1` and `latest` follow 1.2.0: neither is written, each says why.
    for floating in &shown[2..] {
        assert_eq!(
            floating, "failed: not written: app:1.2.0 failed",
            "{shown:?}"
        );
    }
    let tags: Vec<String> = stores
        .log
        .writes()
        .iter()
        .filter(|c| c.is_tag_write())
        .filter_map(|c| manifest_put(c).map(|(r, _)| r.to_string()))
        .collect();
    assert_eq!(tags, ["1.1.0"]);
}

#[test]
fn a_blob_that_cannot_be_stored_fails_its_image_and_writes_no_manifest_for_it() {
    let stores = stores(|r| {
        r.failing_when(|c| {
            matches!(c, Call::BlobPut { .. } | Call::BlobMount { .. })
                && c.repository() == Some("app")
        })
    });
    let outcome = apply(&plan(&stores), &stores);
    assert!(
        outcome
            .statuses
            .iter()
            .all(|s| matches!(s, Status::Failed(_))),
        "{:?}",
        outcome.statuses
    );
    assert_eq!(stores.log.count(|c| manifest_put(c).is_some()), 0);
}

/// Stores `bytes` as a blob of `app` in `store`.
fn put_blob(store: &dyn Registry, bytes: &[u8]) -> Digest {
    let digest = Digest::sha256_of(bytes);
    let size = bytes.len() as u64;
    store
        .blob_put("app", &digest, size, &mut &bytes[..], None)
        .unwrap();
    digest
}

/// An artifact attached to `subject` as oras writes one (the empty config,
/// one layer), stored by digest in `app`.
fn attach(store: &dyn Registry, subject: &Manifest, artifact_type: &str) -> Manifest {
    let (empty, layer) = (
        put_blob(store, b"{}"),
        put_blob(store, artifact_type.as_bytes()),
    );
    let json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2 },
        "layers": [{ "mediaType": artifact_type, "digest": layer, "size": artifact_type.len() }],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.bytes.len(),
        },
    });
    let bytes = json.to_string().into_bytes();
    let manifest = Manifest::from_bytes(bytes, Some(crate::manifest::OCI_MANIFEST)).unwrap();
    store
        .manifest_put("app", &manifest.digest.to_string(), &manifest)
        .unwrap();
    manifest
}

/// A source with the referrers API, a target without: the image's tag,
/// then its SBOM, then the fallback tag listing the SBOM; the SBOM's
/// signature, then the SBOM's fallback tag listing it.
#[test]
fn referrers_land_after_their_subject_and_before_the_fallback_tag_listing_them() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let layout = OciLayoutStore::new(dirs.0.path().to_path_buf());
    let source: Arc<dyn Registry> = Arc::new(Recording::new(Arc::new(layout)).with_referrers_api());
    let spec = ImageSpec::oci("one", vec![LayerSpec { size: 64, seed: 1 }]);
    let image = push_image(source.as_ref(), "app", "1.0", &spec).unwrap();
    let sbom = attach(source.as_ref(), &image, "application/spdx+json");
    let signature = attach(
        source.as_ref(),
        &sbom,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
    );
    let target = Recording::new(Arc::new(OciLayoutStore::new(dirs.1.path().to_path_buf())));
    let log = target.log();
    let map = StoreMap::from([
        ("staging".to_string(), source),
        ("prod".to_string(), Arc::new(target) as Arc<dyn Registry>),
    ]);
    let mut carrying = entry("1.0", "1.0", &image.digest, false);
    carrying.travel.referrers = true;
    let progress = Progress::new(ProgressMode::Never, 0, 0);
    let outcome = run(
        &Plan::of(vec![carrying]),
        &map,
        &CopyStats::default(),
        &progress,
        Options::default(),
    );
    assert!(matches!(outcome.statuses[..], [Status::Promoted]));

    let writes = log.writes();
    let put_of = |reference: String| {
        let at = position(&writes, |c| {
            manifest_put(c).is_some_and(|(r, _)| *r == reference)
        });
        assert_eq!(at.len(), 1, "{reference} once: {writes:#?}");
        at[0]
    };
    use crate::referrers::{ReferrersIndex, fallback_tag};
    let tag = put_of("1.0".to_string());
    let sbom_at = put_of(sbom.digest.to_string());
    let signature_at = put_of(signature.digest.to_string());
    let image_index = put_of(fallback_tag(&image.digest));
    let sbom_index = put_of(fallback_tag(&sbom.digest));
    assert!(tag < sbom_at && sbom_at < image_index, "{writes:#?}");
    assert!(sbom_at < signature_at && signature_at < sbom_index);
    let listed = |subject: &Manifest| {
        let tag = fallback_tag(&subject.digest);
        ReferrersIndex::read(&map["prod"].manifest_get("app", &tag).unwrap()).unwrap()
    };
    assert!(listed(&image).lists(&sbom.digest));
    assert!(listed(&sbom).lists(&signature.digest));
    assert_eq!((listed(&image).len(), listed(&sbom).len()), (1, 1));
}
