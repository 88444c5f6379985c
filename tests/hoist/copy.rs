//! `hoist promote` between registries: byte-exact manifests, mounts,
//! streaming with bounded memory, and verification of what streams.

use crate::support::seed::{ImageSpec, LayerSpec};

use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// Promotes `repo:tag` from one registry to another and checks the target
/// holds the very same manifest bytes under the same digest.
fn assert_byte_exact_copy(spec: &ImageSpec, expected_media_type: &str) {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let manifest = seed::push(seed::client(&source).as_ref(), "apps/web", "1.0.0", spec);
    assert_eq!(manifest.media_type, expected_media_type);

    let run = Hoist::new()
        .args([
            "promote",
            &format!("{}/apps/web:1.0.0", source.host()),
            &format!("{}/prod/web", target.host()),
        ])
        .run()
        .success();
    assert_eq!(
        run.lines().last().copied(),
        Some(format!("{}/prod/web@{}", target.host(), manifest.digest).as_str()),
        "{}",
        run.stdout
    );

    let target_store = seed::client(&target);
    let head = seed::head(target_store.as_ref(), "prod/web", "1.0.0").expect("tag 1.0.0 in target");
    assert_eq!(head.digest, manifest.digest);
    assert_eq!(head.media_type, expected_media_type);
    let copied = target_store
        .manifest_get("prod/web", "1.0.0")
        .expect("GET copied manifest");
    assert_eq!(copied.bytes, manifest.bytes, "manifest bytes differ");
    // Every child and blob is there too.
    let view = copied.view().expect("manifest view");
    for child in &view.manifests {
        let child_manifest = target_store
            .manifest_get("prod/web", &child.digest.to_string())
            .expect("child manifest");
        for blob in child_manifest.view().expect("child view").blobs {
            assert!(
                target_store.blob_exists("prod/web", &blob.digest).unwrap(),
                "missing blob {}",
                blob.digest
            );
        }
    }
    for blob in &view.blobs {
        assert!(
            target_store.blob_exists("prod/web", &blob.digest).unwrap(),
            "missing blob {}",
            blob.digest
        );
    }
}

#[test]
fn copies_docker_schema2_manifest_byte_exact() {
    assert_byte_exact_copy(
        &seed::small_image("docker", Format::Docker),
        hoist::manifest::DOCKER_MANIFEST,
    );
}

#[test]
fn copies_oci_manifest_byte_exact() {
    assert_byte_exact_copy(
        &seed::small_image("oci", Format::Oci),
        hoist::manifest::OCI_MANIFEST,
    );
}

#[test]
fn copies_oci_index_with_two_platforms_byte_exact() {
    assert_byte_exact_copy(
        &seed::multi_platform_image("multi", Format::Oci),
        hoist::manifest::OCI_INDEX,
    );
}

#[test]
fn copies_docker_manifest_list_byte_exact() {
    assert_byte_exact_copy(
        &seed::multi_platform_image("list", Format::Docker),
        hoist::manifest::DOCKER_MANIFEST_LIST,
    );
}

#[test]
fn mounts_within_one_registry_without_uploading() {
    let registry = TestRegistry::start();
    let spec = ImageSpec {
        layers: seed::layers("mount", 3, 1, 100_000),
        ..seed::small_image("mount", Format::Oci)
    };
    let manifest = seed::push(
        seed::client(&registry).as_ref(),
        "staging/app",
        "1.2.3",
        &spec,
    );

    let promote = || {
        Hoist::new()
            .args([
                "promote",
                &format!("{}/staging/app:1.2.3", registry.host()),
                &format!("{}/stable/app", registry.host()),
                "--report",
                "report.json",
            ])
            .run()
            .success()
            .json_file("report.json")
    };
    let report = promote();
    assert_eq!(report["summary"]["bytes_copied"], 0, "{report:#}");
    assert_eq!(report["summary"]["blobs_copied"], 0, "{report:#}");
    assert_eq!(
        report["summary"]["blobs_mounted"], 4,
        "config and three layers: {report:#}"
    );
    let head =
        seed::head(seed::client(&registry).as_ref(), "stable/app", "1.2.3").expect("promoted tag");
    assert_eq!(head.digest, manifest.digest);

    // A second run finds everything in place and writes nothing.
    let report = promote();
    assert_eq!(report["summary"]["manifests_written"], 0, "{report:#}");
    assert_eq!(report["summary"]["unchanged"], 1, "{report:#}");
    assert_eq!(report["summary"]["write_requests"], 0, "{report:#}");
}

#[test]
fn chunked_uploads_when_configured() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let spec = ImageSpec {
        layers: seed::layers("chunky", 2, 0, 10_000),
        ..seed::small_image("chunky", Format::Oci)
    };
    let manifest = seed::push(seed::client(&source).as_ref(), "app", "1", &spec);
    let config = format!(
        "[registries.src]\nurl = \"{}\"\n[registries.dst]\nurl = \"{}\"\nupload_chunk_size = 3000\n",
        source.host(),
        target.host()
    );
    Hoist::new()
        .config(&config)
        .args(["promote", "src/app:1", "dst/app"])
        .run()
        .success();
    let head = seed::head(seed::client(&target).as_ref(), "app", "1").expect("promoted tag");
    assert_eq!(head.digest, manifest.digest);
}

#[test]
fn streams_a_512_mib_blob_in_bounded_memory() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let spec = ImageSpec::oci(
        "big",
        vec![LayerSpec {
            size: 512 * 1024 * 1024,
            seed: 42,
        }],
    );
    let manifest = seed::push(seed::client(&source).as_ref(), "big", "1", &spec);

    let (run, peak_kib) = Hoist::new()
        .args([
            "promote",
            &format!("{}/big:1", source.host()),
            &format!("{}/big", target.host()),
        ])
        .run_measured();
    run.success();
    eprintln!("hoist promote of a 512 MiB blob: peak RSS {peak_kib} KiB");
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB is not under 64 MiB"
    );
    let head = seed::head(seed::client(&target).as_ref(), "big", "1").expect("promoted tag");
    assert_eq!(head.digest, manifest.digest);
}

#[test]
fn tampered_blob_fails_verification_and_writes_no_manifest() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let spec = ImageSpec {
        layers: seed::layers("tamper", 2, 0, 50_000),
        ..seed::small_image("tamper", Format::Oci)
    };
    let manifest = seed::push(seed::client(&source).as_ref(), "app", "1.0.0", &spec);
    let layer = &manifest.view().unwrap().blobs[1];

    // Flip one byte of the layer on the source registry's disk (same size).
    let path = source.blob_data_path(&layer.digest.to_string());
    let mut bytes = std::fs::read(&path).expect("blob data on disk");
    bytes[1234] ^= 0xff;
    std::fs::write(&path, &bytes).expect("tamper blob");

    let run = Hoist::new()
        .args([
            "promote",
            &format!("{}/app:1.0.0", source.host()),
            &format!("{}/app", target.host()),
        ])
        .run()
        .code(1);
    assert!(run.stderr.contains("failed verification"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&layer.digest.to_string()),
        "{}",
        run.stderr
    );
    let target_store = seed::client(&target);
    assert_eq!(
        seed::head(target_store.as_ref(), "app", "1.0.0"),
        None,
        "tag written for a corrupt image"
    );
    assert_eq!(
        seed::head(target_store.as_ref(), "app", &manifest.digest.to_string()),
        None,
        "manifest written for a corrupt image"
    );
    assert!(
        !target_store.blob_exists("app", &layer.digest).unwrap(),
        "corrupt blob landed"
    );
}

#[test]
fn missing_source_tag_names_the_registry_error() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    seed::push(
        seed::client(&source).as_ref(),
        "app",
        "1",
        &seed::small_image("x", Format::Oci),
    );
    let run = Hoist::new()
        .args([
            "promote",
            &format!("{}/app:nope", source.host()),
            &format!("{}/app", target.host()),
        ])
        .run()
        .code(1);
    assert!(
        run.stderr.contains("app:nope") && run.stderr.contains("not found"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_reference_is_a_usage_error() {
    let run = Hoist::new()
        .args(["promote", "reg.example/Repo:bad tag", "reg.example/x"])
        .run()
        .code(2);
    assert!(run.stderr.contains("invalid reference"), "{}", run.stderr);
}

#[test]
fn deletes_manifests_by_digest() {
    let registry = TestRegistry::start();
    let store = seed::client(&registry);
    let manifest = seed::push(
        store.as_ref(),
        "app",
        "1",
        &seed::small_image("delete", Format::Oci),
    );
    store
        .manifest_delete("app", &manifest.digest)
        .expect("DELETE manifest");
    assert_eq!(seed::head(store.as_ref(), "app", "1"), None);
    assert_eq!(
        seed::head(store.as_ref(), "app", &manifest.digest.to_string()),
        None
    );
}
