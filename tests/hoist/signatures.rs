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

/// cosign adds a layer to the `.sig` manifest on every signing: after a
/// re-sign in the source, `apply` under the default settings (`tags = ["*"]`,
/// `overwrite = "never"`) updates the signature tag in the target, exit 0;
/// the plan shows it as an update, never blocked.
#[test]
fn a_re_signed_image_updates_its_signature_tag_under_default_settings() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let image = seed::push(
        client.as_ref(),
        "apps/web",
        "1.0.0",
        &seed::small_image("web", Format::Oci),
    );
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
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let image = seed::push(
        client.as_ref(),
        "apps/web",
        "1.0.0",
        &seed::small_image("web", Format::Oci),
    );
    Signer::load("ci").sign(
        client.as_ref(),
        "apps/web",
        &image.digest,
        "x/apps/web",
        &[],
    );
    let config = web_rule(&staging, &prod, "tags = [\"*\"]\nreferrers = false\n");
    Hoist::new().config(&config).args(["apply"]).run().success();
    assert_eq!(prod.read_tags("apps/web"), ["1.0.0"]);
}
