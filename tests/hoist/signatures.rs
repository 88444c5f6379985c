//! Signatures, attestations and SBOMs travel with their images (issue 15):
//! cosign-format signatures (tests/support/cosign.rs) on real registries.

use crate::apply::config_at;
use crate::support::cosign::{Signer, signature_tag};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// One rule from staging's `apps/web` to prod, with `extra` settings.
fn web_rule(staging: &TestRegistry, prod: &TestRegistry, extra: &str) -> String {
    config_at(
        &[("staging", staging.host()), ("prod", prod.host())],
        &format!(
            "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"apps/web\"]\n{extra}"
        ),
    )
}

/// Two registries, and staging's `apps/web:1.0.0`.
struct Web {
    staging: TestRegistry,
    prod: TestRegistry,
    client: std::sync::Arc<dyn hoist::registry::Registry>,
    image: hoist::manifest::Manifest,
    /// Its signature by the `ci` key, when asked for.
    signature: Option<hoist::manifest::Manifest>,
}

/// [`Web`] with `spec` as the image, signed with the `ci` key when `signed`.
fn web(spec: seed::ImageSpec, signed: bool) -> Web {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let image = seed::push(client.as_ref(), "apps/web", "1.0.0", &spec);
    let signature = signed.then(|| {
        let reference = format!("{}/apps/web", staging.host());
        Signer::load("ci").sign(client.as_ref(), "apps/web", &image.digest, &reference, &[])
    });
    Web {
        staging,
        prod,
        client,
        image,
        signature,
    }
}

/// cosign adds a layer to the `.sig` manifest on every signing: after a
/// re-sign in the source, `apply` under the default settings (`tags = ["*"]`,
/// `overwrite = "never"`) updates the signature tag in the target, exit 0;
/// the plan shows it as an update, never blocked.
#[test]
fn a_re_signed_image_updates_its_signature_tag_under_default_settings() {
    let Web {
        staging,
        prod,
        client,
        image,
        ..
    } = web(seed::small_image("web", Format::Oci), false);
    let reference = format!("{}/apps/web", staging.host());
    let signer = Signer::load("ci");
    let first = signer.sign(client.as_ref(), "apps/web", &image.digest, &reference, &[]);
    let config = web_rule(&staging, &prod, "");
    Hoist::new().config(&config).args(["apply"]).run().success();
    let tag = signature_tag(&image.digest);
    assert_eq!(
        prod.read_manifest_digest("apps/web", &tag),
        Some(first.digest.to_string())
    );

    let second =
        Signer::load("other").sign(client.as_ref(), "apps/web", &image.digest, &reference, &[]);
    assert_ne!(first.digest, second.digest);
    let plan = Hoist::new().config(&config).args(["plan"]).run().success();
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    assert!(line.trim_start().starts_with('~'), "{line}");
    assert!(!plan.stdout.contains("blocked:"), "{}", plan.stdout);
    let run = Hoist::new().config(&config).args(["apply"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        prod.read_manifest_digest("apps/web", &tag),
        Some(second.digest.to_string())
    );
    assert_eq!(
        prod.read_manifest_digest("apps/web", "1.0.0"),
        Some(image.digest.to_string())
    );
}

/// `referrers = false` alone decides: with `tags = ["*"]` the signature tag
/// is not copied as an ordinary tag.
#[test]
fn referrers_false_leaves_signatures_behind_whatever_the_tags() {
    let Web { staging, prod, .. } = web(seed::small_image("web", Format::Oci), true);
    let config = web_rule(&staging, &prod, "tags = [\"*\"]\nreferrers = false\n");
    Hoist::new().config(&config).args(["apply"]).run().success();
    assert_eq!(prod.read_tags("apps/web"), ["1.0.0"]);
}

/// `hoist promote` carries the image's signatures as `apply` does, and
/// `--no-referrers` leaves them behind.
#[test]
fn promote_carries_signatures_unless_told_not_to() {
    let Web {
        staging,
        prod,
        image,
        signature,
        ..
    } = web(seed::small_image("web", Format::Oci), true);
    let signature = signature.expect("signed");
    let tag = signature_tag(&image.digest);
    let source = format!("{}/apps/web:1.0.0", staging.host());
    let run = Hoist::new()
        .args(["promote", &source, &format!("{}/stable/web", prod.host())])
        .run()
        .success();
    assert!(run.stdout.contains(&tag), "{}", run.stdout);
    // The signature's own line names the tag it gets.
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("promoted") && l.contains(&signature.digest.short()))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(line.contains(&format!("({tag})")), "{line}");
    assert_eq!(
        prod.read_manifest_digest("stable/web", &tag),
        Some(signature.digest.to_string())
    );
    assert_eq!(
        prod.read_manifest_digest("stable/web", "1.0.0"),
        Some(image.digest.to_string())
    );
    Hoist::new()
        .args([
            "promote",
            &source,
            &format!("{}/bare/web", prod.host()),
            "--no-referrers",
        ])
        .run()
        .success();
    assert_eq!(prod.read_tags("bare/web"), ["1.0.0"]);
}

/// A signature names the index's digest: once `--platform` filters the
/// index into a new one it no longer applies, so it is not carried, and the
/// plan and the report say so for that image.
#[test]
fn a_filtered_index_leaves_its_signature_behind_and_says_so() {
    let Web {
        staging,
        prod,
        image: index,
        ..
    } = web(seed::multi_platform_image("web", Format::Oci), true);
    let tag = signature_tag(&index.digest);
    let run = Hoist::new()
        .args([
            "promote",
            &format!("{}/apps/web:1.0.0", staging.host()),
            &format!("{}/apps/web", prod.host()),
            "--platform",
            "linux/amd64",
            "--report",
            "report.json",
        ])
        .run()
        .success();
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("not carried"), "{line}");
    assert_eq!(prod.read_tags("apps/web"), ["1.0.0"]);
    let report = run.json_file("report.json");
    assert_eq!(report["skipped"][0]["tag"], tag.as_str(), "{report:#}");
    let reason = report["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.contains(&index.digest.to_string()), "{reason}");
}

/// The same for a rule with `platforms`: the plan lists the signature under
/// skipped with the reason, the report carries it, the target has no `.sig`.
#[test]
fn a_rule_filtering_an_index_says_its_signature_stays_behind() {
    let Web {
        staging,
        prod,
        image: index,
        ..
    } = web(seed::multi_platform_image("web", Format::Oci), true);
    let tag = signature_tag(&index.digest);
    let config = web_rule(&staging, &prod, "platforms = [\"linux/arm64\"]\n");
    let plan = Hoist::new().config(&config).args(["plan"]).run().success();
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    assert!(line.contains("not carried"), "{line}");
    let run = Hoist::new()
        .config(&config)
        .args(["apply", "--report", "report.json"])
        .run()
        .success();
    assert_eq!(prod.read_tags("apps/web"), ["1.0.0"]);
    let report = run.json_file("report.json");
    assert_eq!(report["skipped"][0]["tag"], tag.as_str(), "{report:#}");
}

/// `hoist promote` estimates the work as `plan` does (it printed `Work: 0
/// images … (partial …)` on every run), and a platform filter counts only
/// the platforms kept.
#[test]
fn promote_estimates_the_work_of_the_platforms_it_keeps() {
    let Web { staging, prod, .. } = web(seed::multi_platform_image("web", Format::Oci), false);
    let work = |extra: &[&str]| {
        let mut args = vec![
            "promote".to_string(),
            format!("{}/apps/web:1.0.0", staging.host()),
            format!("{}/apps/web", prod.host()),
            "--dry-run".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = Hoist::new().args(&args).run().success();
        run.stdout
            .lines()
            .find(|l| l.starts_with("Work:"))
            .unwrap_or_else(|| panic!("{}", run.stdout))
            .to_string()
    };
    // Two platforms: the index, two manifests, two configs and four layers.
    let whole = work(&[]);
    assert!(
        whole.starts_with("Work: 1 image (3 manifests); 6 blobs"),
        "{whole}"
    );
    assert!(!whole.contains("partial"), "{whole}");
    let one = work(&["--platform", "linux/arm64"]);
    assert!(
        one.starts_with("Work: 1 image (2 manifests); 3 blobs"),
        "{one}"
    );
}

/// A platform filter on a single-platform image reads the platform from
/// its config: `hoist promote --platform` of an amd64 image asking for
/// arm64 fails saying so and writes nothing (it wrote the amd64 image and
/// reported arm64); asking for amd64 copies the image as it is, with its
/// signature. A rule with `platforms` skips the image with the reason.
#[test]
fn a_single_platform_image_is_filtered_by_the_platform_its_config_names() {
    let Web {
        staging,
        prod,
        image,
        signature,
        ..
    } = web(seed::small_image("web", Format::Oci), true);
    let signature = signature.expect("signed");
    let source = format!("{}/apps/web:1.0.0", staging.host());
    let promote = |target: &str, platform: &str| {
        Hoist::new()
            .args([
                "promote",
                &source,
                &format!("{}/{target}", prod.host()),
                "--platform",
                platform,
            ])
            .run()
    };
    let refused = promote("arm/web", "linux/arm64").code(1);
    assert!(
        refused.stderr.contains("built for linux/amd64") && refused.stderr.contains("linux/arm64"),
        "{}",
        refused.stderr
    );
    assert!(prod.read_tags("arm/web").is_empty());
    promote("amd/web", "linux/amd64").success();
    assert_eq!(
        prod.read_manifest_digest("amd/web", "1.0.0"),
        Some(image.digest.to_string())
    );
    assert_eq!(
        prod.read_manifest_digest("amd/web", &signature_tag(&image.digest)),
        Some(signature.digest.to_string())
    );

    let config = web_rule(&staging, &prod, "platforms = [\"linux/arm64\"]\n");
    let plan = Hoist::new().config(&config).args(["plan"]).run().success();
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains("apps/web:1.0.0"))
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    assert!(line.contains("built for linux/amd64"), "{line}");
    Hoist::new().config(&config).args(["apply"]).run().success();
    assert!(prod.read_tags("apps/web").is_empty());
}

/// `mode = "move"` moves a moved image's signatures with it: once the image
/// has left the source, its `.sig` tag is deleted there too (it was left
/// behind for a manifest that was gone). When the image stays (another tag
/// shares it), its signature stays as well, and the report says why.
#[test]
fn a_moved_image_takes_its_signature_along() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let signer = Signer::load("ci");
    let mut images = Vec::new();
    for (tag, label) in [("1.0.0", "one"), ("2.0.0", "two")] {
        let image = seed::push(
            client.as_ref(),
            "apps/web",
            tag,
            &seed::small_image(label, Format::Oci),
        );
        let signature = signer.sign(client.as_ref(), "apps/web", &image.digest, "x", &[]);
        images.push((image, signature));
    }
    // 1.0.0's image also has a tag outside the rule: it stays in the source.
    client
        .manifest_put("apps/web", "keep", &images[0].0)
        .unwrap();
    let config = web_rule(&staging, &prod, "tags = [\"*.*.*\"]\nmode = \"move\"\n");
    let plan = Hoist::new().config(&config).args(["plan"]).run().success();
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains(&signature_tag(&images[1].0.digest)))
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    assert!(line.contains("(move)"), "{line}");
    let run = Hoist::new()
        .config(&config)
        .args(["apply", "--report", "report.json"])
        .run()
        .success();
    for (image, signature) in &images {
        let tag = signature_tag(&image.digest);
        assert_eq!(
            prod.read_manifest_digest("apps/web", &tag),
            Some(signature.digest.to_string())
        );
    }
    let mut left: Vec<String> = staging.read_tags("apps/web");
    left.sort();
    let mut expected = vec![
        "1.0.0".to_string(),
        "keep".to_string(),
        signature_tag(&images[0].0.digest),
    ];
    expected.sort();
    assert_eq!(left, expected);
    let report = run.json_file("report.json");
    let moved = report["moved"].to_string();
    assert!(
        moved.contains(&signature_tag(&images[1].0.digest)),
        "{report:#}"
    );
    let notes = report["notes"].to_string();
    assert!(
        notes.contains(&signature_tag(&images[0].0.digest))
            && notes.contains("stays in the source"),
        "{report:#}"
    );
}
