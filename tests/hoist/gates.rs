//! Promotion gates (issue 18): a rule with `require_signature` promotes only
//! images a trusted key signed, cosign's way, for that very image and with
//! the annotations it asks for; every other image is blocked with the
//! reason, and floating tags never move to it.

use crate::apply::config_at;
use crate::support::cosign::{Signer, signature_tag, simple_signing_payload};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// A rule over staging's `apps/web` with the gate; the key file is copied
/// next to the configuration and named relative to it.
fn gated(hoist: Hoist, staging: &TestRegistry, prod: &TestRegistry) -> Hoist {
    let keys = hoist.dir().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(Signer::load("ci").public_key, keys.join("ci.pub")).unwrap();
    hoist.config(&config_at(
        &[("staging", staging.host()), ("prod", prod.host())],
        "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/web\"]\nfloating = [\"{major}\"]\n\
         require_signature = { keys = [\"keys/ci.pub\"], annotations = { team = \"web\" } }\n",
    ))
}

#[test]
fn only_images_signed_by_a_trusted_key_for_themselves_are_promoted() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let (ci, other) = (Signer::load("ci"), Signer::load("other"));
    let mut digests = Vec::new();
    for tag in ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"] {
        let image = seed::push(
            client.as_ref(),
            "apps/web",
            tag,
            &seed::small_image(tag, Format::Oci),
        );
        digests.push(image.digest);
    }
    let reference = format!("{}/apps/web", staging.host());
    let web = [("team", "web")];
    // 1.0.0: signed by the pipeline's key for itself, with the annotation.
    ci.sign(client.as_ref(), "apps/web", &digests[0], &reference, &web);
    // 1.1.0: not signed. 1.2.0: signed by another key.
    other.sign(client.as_ref(), "apps/web", &digests[2], &reference, &web);
    // 1.3.0: the right key, the wrong team.
    ci.sign(
        client.as_ref(),
        "apps/web",
        &digests[3],
        &reference,
        &[("team", "db")],
    );
    // 1.4.0: the right key over a payload for 1.0.0, copied beside 1.4.0.
    let misattributed = simple_signing_payload(&digests[0], &reference, &web);
    ci.sign_payload(client.as_ref(), "apps/web", &digests[4], &misattributed);

    let plan = gated(Hoist::new(), &staging, &prod)
        .args(["plan", "--format", "json"])
        .run()
        .success();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let entry = |tag: &str| {
        plan["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"]["tag"] == tag)
            .cloned()
            .unwrap_or_else(|| panic!("no entry for {tag}: {plan:#}"))
    };
    let action = |tag: &str| entry(tag)["action"].clone();
    assert_eq!(action("1.0.0"), "create", "{plan:#}");
    for (tag, reason) in [
        ("1.1.0", "not signed"),
        ("1.2.0", "not by any key in require_signature.keys"),
        ("1.3.0", "annotation `team` is `db`, not `web`"),
        ("1.4.0", "the payload names another image"),
    ] {
        assert_eq!(action(tag), "blocked", "{tag}");
        let why = entry(tag)["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            why.starts_with("require_signature: ") && why.contains(reason),
            "{tag}: {why}"
        );
    }
    // The floating tag follows the highest image that passed.
    assert_eq!(action("1"), "create");

    let run = gated(Hoist::new(), &staging, &prod).args(["apply"]).run();
    assert_eq!(run.code, 1, "blocked entries fail the run: {}", run.stderr);
    let mut tags = prod.read_tags("apps/web");
    tags.sort();
    let mut expected = vec![
        "1".to_string(),
        "1.0.0".to_string(),
        signature_tag(&digests[0]),
    ];
    expected.sort();
    assert_eq!(tags, expected);
    assert_eq!(
        prod.read_manifest_digest("apps/web", "1"),
        Some(digests[0].to_string())
    );
}
