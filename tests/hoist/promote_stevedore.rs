//! `hoist promote` run with Stevedore's command lines as they are written in
//! pipelines: short flags, comma lists, no-op and deprecated flags.

use crate::support::seed::{self, Format, ImageSpec};
use crate::support::{Hoist, TestRegistry};

/// An image whose first two layers are the same in every image seeded with
/// it (an application built on a shared base).
fn image_on_base(label: &str, own_layers: usize) -> ImageSpec {
    ImageSpec {
        layers: seed::layers(label, 2 + own_layers, 2, 3000),
        ..seed::small_image(label, Format::Docker)
    }
}

/// Stevedore's promote example: the base image is promoted into the `stable`
/// namespace, then `app1` with `-t latest -s -S`: exactly `0.1`, `0.1.0`,
/// `0.1.0-base2.4.6` and `latest`, all at the source's digest.
#[test]
fn stevedore_promote_example_with_short_flags_and_comma_lists() {
    let build = TestRegistry::start();
    let target = TestRegistry::start();
    let client = seed::client(&build);
    let base = seed::push(client.as_ref(), "base", "2.4.6", &image_on_base("base", 0));
    let app1 = seed::push(
        client.as_ref(),
        "app1",
        "0.1.0-base2.4.6",
        &image_on_base("app1", 1),
    );

    Hoist::new()
        .args([
            "promote",
            &format!("{}/base:2.4.6", build.host()),
            "-r",
            target.host(),
            "-n",
            "stable",
        ])
        .run()
        .success();
    assert_eq!(target.read_tags("stable/base"), ["2.4.6"]);
    assert_eq!(
        target.read_manifest_digest("stable/base", "2.4.6"),
        Some(base.digest.to_string())
    );

    let run = Hoist::new()
        .args([
            "promote",
            &format!("{}/app1:0.1.0-base2.4.6", build.host()),
            "-r",
            target.host(),
            "-t",
            "latest",
            "-s",
            "-S",
            "-T",
            "{{ .Major }}.{{ .Minor }}.{{ .Patch }},{{ .Major }}.{{ .Minor }}",
        ])
        .run()
        .success();
    assert_eq!(
        target.read_tags("app1"),
        ["0.1", "0.1.0", "0.1.0-base2.4.6", "latest"]
    );
    for tag in target.read_tags("app1") {
        assert_eq!(
            target.read_manifest_digest("app1", &tag),
            Some(app1.digest.to_string()),
            "app1:{tag}"
        );
    }
    // Stevedore skips `latest` silently; hoist says it derives nothing.
    assert!(
        run.stderr.contains("`latest` is not a semantic version"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains(&format!("{}/app1@{}", target.host(), app1.digest)),
        "{}",
        run.stdout
    );
}

/// `-D` reads both registries and writes nothing; the no-op flags are
/// accepted, and a deprecated flag works and says what replaces it.
#[test]
fn stevedore_dry_run_no_op_and_deprecated_flags() {
    let build = TestRegistry::start();
    let target = TestRegistry::start();
    seed::push(
        seed::client(&build).as_ref(),
        "team/app",
        "1.2",
        &image_on_base("app", 1),
    );
    let line = |extra: &[&str]| {
        let mut args = vec![
            "copy".to_string(),
            format!("{}/team/app:1.2", build.host()),
            "--promote-image-host".to_string(),
            target.host().to_string(),
            "-n".to_string(),
            String::new(),
            "-R".to_string(),
            "--remove-local-images-after-push".to_string(),
            "--use-docker-normalized-name".to_string(),
            "-S".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    let run = Hoist::new().args(line(&["-D"])).run().success();
    assert!(
        run.stderr.contains(
            "[DEPRECATED FLAG] use `promote-image-registry-host` instead of `promote-image-host`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        target.read_tags("app").is_empty(),
        "a dry run writes nothing"
    );

    Hoist::new().args(line(&[])).run().success();
    // `1.2` reads as 1.2.0: both default templates derive from it.
    assert_eq!(target.read_tags("app"), ["1.2", "1.2.0"]);
}

/// `promote --move`: the target holds the image, then the source tag is
/// deleted; a tag that another tag of the source shares the image with
/// stays (the registry can only delete the manifest), and says why.
#[test]
fn promote_move_deletes_the_source_tag_once_the_target_has_it() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let client = seed::client(&staging);
    let image = seed::push(client.as_ref(), "apps/m", "2.0.0", &image_on_base("m", 1));
    Hoist::new()
        .args([
            "promote",
            &format!("{}/apps/m:2.0.0", staging.host()),
            &format!("{}/apps/m", prod.host()),
            "-t",
            "2.0.0,latest",
            "--move",
        ])
        .run()
        .success();
    assert_eq!(prod.read_tags("apps/m"), ["2.0.0", "latest"]);
    assert_eq!(
        prod.read_manifest_digest("apps/m", "2.0.0"),
        Some(image.digest.to_string())
    );
    assert_eq!(staging.read_tags("apps/m"), Vec::<String>::new());

    let shared = seed::push(client.as_ref(), "apps/k", "1.0.0", &image_on_base("k", 1));
    client.manifest_put("apps/k", "keep", &shared).unwrap();
    let run = Hoist::new()
        .args([
            "promote",
            &format!("{}/apps/k:1.0.0", staging.host()),
            "-r",
            prod.host(),
            "--move",
        ])
        .run()
        .success();
    assert_eq!(prod.read_tags("apps/k"), ["1.0.0"]);
    assert_eq!(staging.read_tags("apps/k"), ["1.0.0", "keep"]);
    let shown = format!("{}{}", run.stdout, run.stderr);
    assert!(shown.contains("kept") && shown.contains("keep"), "{shown}");
}
