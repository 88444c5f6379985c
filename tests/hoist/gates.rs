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
    gated_with(hoist, staging, prod, "")
}

/// [`gated`], with more lines for the rule.
fn gated_with(hoist: Hoist, staging: &TestRegistry, prod: &TestRegistry, extra: &str) -> Hoist {
    let keys = hoist.dir().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(Signer::load("ci").public_key, keys.join("ci.pub")).unwrap();
    hoist.config(&config_at(
        &[("staging", staging.host()), ("prod", prod.host())],
        &format!(
            "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/web\"]\nfloating = [\"{{major}}\"]\n\
         require_signature = {{ keys = [\"keys/ci.pub\"], annotations = {{ team = \"web\" }} }}\n\
         {extra}"
        ),
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
        // The plan carries the verdict itself, by rule.
        let gate = entry(tag)["gate"].clone();
        assert_eq!(gate["verdict"], "refused", "{tag}: {gate}");
        assert_eq!(gate["rule"], "web", "{tag}: {gate}");
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

/// Pushes `apps/web` 1.0.0 and 1.1.0 to `staging`, both signed by the
/// pipeline's key with `team = web`; their digests.
fn two_signed_images(staging: &TestRegistry) -> Vec<hoist::digest::Digest> {
    let client = seed::client(staging);
    let reference = format!("{}/apps/web", staging.host());
    let ci = Signer::load("ci");
    ["1.0.0", "1.1.0"]
        .into_iter()
        .map(|tag| {
            let image = seed::small_image(tag, Format::Oci);
            let digest = seed::push(client.as_ref(), "apps/web", tag, &image).digest;
            ci.sign(
                client.as_ref(),
                "apps/web",
                &digest,
                &reference,
                &[("team", "web")],
            );
            digest
        })
        .collect()
}

/// Deletes the `.sig` manifest of `subject` in `repository`.
fn delete_signature(registry: &TestRegistry, repository: &str, subject: &hoist::digest::Digest) {
    let client = seed::client(registry);
    let sig = client
        .manifest_head(repository, &signature_tag(subject))
        .unwrap()
        .expect("the signature tag");
    client.manifest_delete(repository, &sig.digest).unwrap();
}

#[test]
fn a_reviewed_plan_shows_the_verdict_and_apply_checks_it_again() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let digests = two_signed_images(&staging);
    let reviewed = tempfile::tempdir().unwrap();
    let plan_path = reviewed.path().join("plan.json");
    let plan_path = plan_path.to_str().unwrap();
    let planned = gated(Hoist::new(), &staging, &prod)
        .args(["plan", "--out", plan_path])
        .run()
        .success();
    // The reviewer sees what was verified, in the table and in the JSON.
    assert!(
        planned.stdout.contains("keys/ci.pub)") && planned.stdout.contains("signature verified ("),
        "{}",
        planned.stdout
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plan_path).unwrap()).unwrap();
    for entry in plan["entries"].as_array().unwrap() {
        if entry["role"]["kind"] == "attached" {
            continue;
        }
        let gate = &entry["gate"];
        assert_eq!(gate["verdict"], "verified", "{entry:#}");
        assert_eq!(gate["rule"], "web", "{entry:#}");
        // The key as the configuration names it, resolved from its directory.
        let by = gate["by"].as_str().unwrap_or_default();
        assert!(by.ends_with("/keys/ci.pub"), "{entry:#}");
    }

    // 1.1.0's signature is removed after the review.
    delete_signature(&staging, "apps/web", &digests[1]);

    let run = gated(Hoist::new(), &staging, &prod)
        .args(["apply", "--plan", plan_path, "--report", "report.json"])
        .run()
        .code(1);
    assert!(
        run.stdout.contains("blocked prod/apps/web:1.1.0")
            && run
                .stdout
                .contains("checked again before writing, not signed"),
        "{}",
        run.stdout
    );
    let mut tags = prod.read_tags("apps/web");
    tags.sort();
    // 1.0.0 and its signature land; neither 1.1.0 nor the floating tag
    // that followed it does.
    let mut expected = vec!["1.0.0".to_string(), signature_tag(&digests[0])];
    expected.sort();
    assert_eq!(tags, expected);
    let report = run.json_file("report.json");
    assert_eq!(report["summary"]["blocked"], 2, "{report:#}");
}

#[test]
fn verify_finds_a_target_whose_signature_was_lost() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let digests = two_signed_images(&staging);
    gated(Hoist::new(), &staging, &prod)
        .args(["apply"])
        .run()
        .success();
    gated(Hoist::new(), &staging, &prod)
        .args(["verify"])
        .run()
        .success();

    delete_signature(&prod, "apps/web", &digests[0]);
    let run = gated(Hoist::new(), &staging, &prod)
        .args(["verify"])
        .run()
        .code(1);
    let expected = format!(
        "prod/apps/web:1.0.0 ({}): require_signature: not signed",
        digests[0].short()
    );
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
    // Only the image that lost its signature is named.
    assert!(!run.stdout.contains("1.1.0"), "{}", run.stdout);
}

#[test]
fn promote_requires_a_signature_when_asked() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let digests = two_signed_images(&staging);
    let client = seed::client(&staging);
    seed::push(
        client.as_ref(),
        "apps/web",
        "2.0.0",
        &seed::small_image("2.0.0", Format::Oci),
    );
    let key = Signer::load("ci").public_key;
    let key = key.to_str().unwrap();
    let promote = |tag: &str, extra: &[&str]| {
        Hoist::new()
            .args(["promote", &format!("{}/apps/web:{tag}", staging.host())])
            .args([&format!("{}/apps/web:{tag}", prod.host())])
            .args(["--require-signature", key])
            .args(extra)
            .run()
    };
    promote("1.0.0", &["--signature-annotation", "team=web"]).success();
    let unsigned = promote("2.0.0", &[]).code(1);
    assert!(
        unsigned
            .stdout
            .contains("blocked: --require-signature: not signed"),
        "{}",
        unsigned.stdout
    );
    let wrong_team = promote("1.1.0", &["--signature-annotation", "team=db", "--dry-run"]).code(1);
    assert!(
        wrong_team
            .stdout
            .contains("annotation `team` is `web`, not `db`"),
        "{}",
        wrong_team.stdout
    );
    let mut tags = prod.read_tags("apps/web");
    tags.sort();
    let mut expected = vec!["1.0.0".to_string(), signature_tag(&digests[0])];
    expected.sort();
    assert_eq!(tags, expected);
}

/// The gate judges the source image: a multi-platform index signed at its
/// own digest passes, whether the rule copies it whole or filters it to one
/// platform (a new index, which the signature does not name, so the
/// signature stays behind with a note).
#[test]
fn a_multi_platform_index_signed_at_its_digest_passes_with_and_without_a_filter() {
    let (staging, whole, filtered) = (
        TestRegistry::start(),
        TestRegistry::start(),
        TestRegistry::start(),
    );
    let client = seed::client(&staging);
    let index = seed::push(
        client.as_ref(),
        "apps/web",
        "2.0.0",
        &seed::multi_platform_image("web", Format::Oci),
    );
    let reference = format!("{}/apps/web", staging.host());
    Signer::load("ci").sign(
        client.as_ref(),
        "apps/web",
        &index.digest,
        &reference,
        &[("team", "web")],
    );

    gated(Hoist::new(), &staging, &whole)
        .args(["apply"])
        .run()
        .success();
    assert_eq!(
        whole.read_manifest_digest("apps/web", "2.0.0"),
        Some(index.digest.to_string())
    );
    assert!(
        whole
            .read_tags("apps/web")
            .contains(&signature_tag(&index.digest))
    );

    let hoist = gated_with(
        Hoist::new(),
        &staging,
        &filtered,
        "platforms = [\"linux/arm64\"]\n",
    );
    let run = hoist.args(["apply"]).run().success();
    let written = filtered
        .read_manifest_digest("apps/web", "2.0.0")
        .expect("the filtered index");
    assert_ne!(written, index.digest.to_string(), "a new, filtered index");
    assert_eq!(
        filtered.read_tags("apps/web").len(),
        2,
        "2.0.0 and 2, no .sig"
    );
    assert!(run.stdout.contains("skipped"), "{}", run.stdout);
}
