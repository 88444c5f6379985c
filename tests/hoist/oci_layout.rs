//! OCI image layouts on disk as a source and a target.

use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

#[test]
fn registry_to_layout_to_registry_keeps_digests() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = format!("oci-layout:{}", layout_dir.path().display());
    let store = seed::client(&source);
    let index = seed::push(
        store.as_ref(),
        "apps/multi",
        "2.0.0",
        &seed::multi_platform_image("round", Format::Oci),
    );
    let docker = seed::push(
        store.as_ref(),
        "apps/legacy",
        "1.0.0",
        &seed::small_image("legacy", Format::Docker),
    );

    for (repo, tag, digest) in [
        ("apps/multi", "2.0.0", &index.digest),
        ("apps/legacy", "1.0.0", &docker.digest),
    ] {
        Hoist::new()
            .args([
                "promote",
                &format!("{}/{repo}:{tag}", source.host()),
                &format!("{layout}//{repo}"),
            ])
            .run()
            .success();
        let run = Hoist::new()
            .args([
                "promote",
                &format!("{layout}//{repo}:{tag}"),
                &format!("{}/{repo}", target.host()),
            ])
            .run()
            .success();
        assert!(run.stdout.contains(&digest.to_string()), "{}", run.stdout);
        let head = seed::head(seed::client(&target).as_ref(), repo, tag).expect("tag in target");
        assert_eq!(&head.digest, digest);
    }
    let run = Hoist::new().args(["ls", &layout]).run().success();
    assert_eq!(run.lines(), ["apps/legacy", "apps/multi"]);

    // The layout is a standard one: skopeo reads it.
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("oci:{}/apps/multi:2.0.0", layout_dir.path().display()),
        ])
        .output()
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, index.bytes);
}

#[test]
fn readme_promote_on_the_example_store() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/staging");
    let hoist = Hoist::new();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("prod");
    let cfg = format!(
        "[registries.staging]\nurl = \"oci-layout:{examples}\"\n[registries.prod]\nurl = \"oci-layout:{}\"\n",
        out.display()
    );
    let run = hoist
        .config(&cfg)
        .args(["promote", "staging/tools/debug:0.3.0", "prod/tools/debug"])
        .run()
        .success();
    let digest = run.stdout.trim().rsplit('@').next().unwrap().to_string();
    let source = seed::layout(std::path::Path::new(examples));
    assert_eq!(
        seed::head(source.as_ref(), "tools/debug", "0.3.0")
            .unwrap()
            .digest
            .to_string(),
        digest
    );
    let target = seed::layout(&out);
    assert_eq!(
        seed::head(target.as_ref(), "tools/debug", "0.3.0")
            .unwrap()
            .digest
            .to_string(),
        digest
    );
}

#[test]
fn corrupt_blob_is_not_mounted_within_a_layout_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = seed::layout(dir.path());
    let manifest = seed::push(
        store.as_ref(),
        "incoming/app",
        "1.0.0",
        &seed::small_image("corrupt", Format::Oci),
    );
    let layer = &manifest.view().unwrap().blobs[1];
    let path = dir
        .path()
        .join("incoming/app/blobs/sha256")
        .join(layer.digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();

    let layout = format!("oci-layout:{}", dir.path().display());
    let run = Hoist::new()
        .args([
            "promote",
            &format!("{layout}//incoming/app:1.0.0"),
            &format!("{layout}//release/app"),
        ])
        .run()
        .code(1);
    assert!(run.stderr.contains("failed verification"), "{}", run.stderr);
    assert_eq!(seed::head(store.as_ref(), "release/app", "1.0.0"), None);
    assert!(!store.blob_exists("release/app", &layer.digest).unwrap());
}
