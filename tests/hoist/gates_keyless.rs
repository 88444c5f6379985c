//! Keyless gates (issue 18 point 5) and signatures by real signers: a rule
//! with `require_signature = { identity, issuer, trusted_root }` promotes
//! only images signed keylessly by that identity, checked offline against
//! the trusted root; signatures made by cosign and the Open Build Service
//! (tests/fixtures/cosign/real) verify through the registry path.

use std::path::Path;

use crate::apply::config_at;
use crate::support::cosign::{
    KeylessSigner, Signer, attach, fixture, real_signature, signature_tag,
};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

const IDENTITY: &str =
    "https://github.com/hoist-test/app/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Copies `from` into the test's directory as `to` (paths in the
/// configuration are relative to it).
fn place(hoist: &Hoist, from: &Path, to: &str) {
    let target = hoist.dir().join(to);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(from, target).unwrap();
}

/// The plan's entries by target tag: (action, reason).
fn verdicts(plan: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let plan: serde_json::Value = serde_json::from_str(plan).unwrap();
    plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                format!(
                    "{}:{}",
                    e["target"]["repository"].as_str().unwrap(),
                    e["target"]["tag"].as_str().unwrap()
                ),
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["reason"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

fn push_images(
    staging: &TestRegistry,
    repository: &str,
    tags: &[&str],
) -> Vec<hoist::digest::Digest> {
    let client = seed::client(staging);
    tags.iter()
        .map(|tag| {
            seed::push(
                client.as_ref(),
                repository,
                tag,
                &seed::small_image(&format!("{repository}{tag}"), Format::Oci),
            )
            .digest
        })
        .collect()
}

#[test]
fn only_images_signed_keylessly_by_the_pipeline_are_promoted() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let digests = push_images(
        &staging,
        "apps/web",
        &["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"],
    );
    let reference = format!("{}/apps/web", staging.host());
    // 1.0.0: the release workflow, keylessly. 1.1.0: another identity and
    // issuer under the same CA. 1.2.0: a key-based signature. 1.3.0: a real
    // keyless signature from sigstore's public-good instance, whose log this
    // trusted root does not list. 1.4.0: unsigned.
    KeylessSigner::load("leaf").sign(client.as_ref(), "apps/web", &digests[0], &reference);
    KeylessSigner::load("leaf_v1").sign(client.as_ref(), "apps/web", &digests[1], &reference);
    Signer::load("ci").sign(client.as_ref(), "apps/web", &digests[2], &reference, &[]);
    let (payload, annotations) = real_signature("keyless-2021");
    attach(
        client.as_ref(),
        "apps/web",
        &digests[3],
        &payload,
        &annotations,
    );

    let gated = || {
        let hoist = Hoist::new();
        place(
            &hoist,
            &KeylessSigner::trusted_root(),
            "sigstore/trusted_root.json",
        );
        hoist.config(&config_at(
            &[("staging", staging.host()), ("prod", prod.host())],
            &format!(
                "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
                 repositories = [\"apps/web\"]\nfloating = [\"latest\"]\n\
                 require_signature = {{ identity = \"{IDENTITY}\", issuer = \"{ISSUER}\", \
                 trusted_root = \"sigstore/trusted_root.json\" }}\n"
            ),
        ))
    };
    let plan = gated().args(["plan", "--format", "json"]).run().success();
    let verdicts = verdicts(&plan.stdout);
    assert_eq!(verdicts["apps/web:1.0.0"].0, "create", "{verdicts:#?}");
    for (tag, reason) in [
        (
            "1.1.0",
            "the certificate's identity is `release@hoist-test.example`",
        ),
        (
            "1.2.0",
            "signed, but it has no certificate (a key-based signature, by no key this rule lists)",
        ),
        (
            "1.3.0",
            "from log c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d, which the trusted root does not list",
        ),
        ("1.4.0", "not signed"),
    ] {
        let (action, why) = &verdicts[&format!("apps/web:{tag}")];
        assert_eq!(action, "blocked", "{tag}");
        assert!(
            why.starts_with("require_signature: ") && why.contains(reason),
            "{tag}: {why}"
        );
    }
    // `latest` follows the highest image that passed.
    assert_eq!(verdicts["apps/web:latest"].0, "create");

    let run = gated().args(["apply"]).run();
    assert_eq!(run.code, 1, "blocked entries fail the run: {}", run.stderr);
    let mut tags = prod.read_tags("apps/web");
    tags.sort();
    let mut expected = vec![
        "1.0.0".to_string(),
        "latest".to_string(),
        signature_tag(&digests[0]),
    ];
    expected.sort();
    assert_eq!(tags, expected);
    assert_eq!(
        prod.read_manifest_digest("apps/web", "latest"),
        Some(digests[0].to_string())
    );
}

#[test]
fn signatures_by_real_signers_verify_beside_images_they_do_not_name() {
    // The real payloads name images whose manifests are not in any test
    // data, so they sit beside images of another digest: the gate refuses
    // them for naming another image, which it says only of a signature that
    // verified (with the signer's key, or through the whole keyless chain).
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let keyed = push_images(&staging, "apps/keyed", &["1.0.0", "1.1.0", "1.2.0"]);
    let keyless = push_images(&staging, "apps/keyless", &["1.0.0"]);
    for (digest, name) in [(&keyed[0], "cosign-ecdsa"), (&keyed[1], "obs-rsa")] {
        let (payload, annotations) = real_signature(name);
        attach(
            client.as_ref(),
            "apps/keyed",
            digest,
            &payload,
            &annotations,
        );
    }
    // 1.2.0: a signature of our own by a key the rule does not list.
    Signer::load("ci").sign(client.as_ref(), "apps/keyed", &keyed[2], "r/keyed", &[]);
    let (payload, annotations) = real_signature("keyless-2021");
    attach(
        client.as_ref(),
        "apps/keyless",
        &keyless[0],
        &payload,
        &annotations,
    );

    let hoist = Hoist::new();
    place(&hoist, &fixture("real/cosign-ecdsa.pub"), "keys/cosign.pub");
    place(&hoist, &fixture("real/obs-rsa.pub"), "keys/obs.pub");
    place(
        &hoist,
        &fixture("real/trusted_root.json"),
        "sigstore/trusted_root.json",
    );
    let plan = hoist
        .config(&config_at(
            &[("staging", staging.host()), ("prod", prod.host())],
            "[[promotion]]\nname = \"keyed\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"apps/keyed\"]\n\
             require_signature = { keys = [\"keys/cosign.pub\", \"keys/obs.pub\"] }\n\n\
             [[promotion]]\nname = \"keyless\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"apps/keyless\"]\n\
             require_signature = { identity = \"flavio@castelli.me\", issuer_regexp = \".*\", \
             trusted_root = \"sigstore/trusted_root.json\" }\n",
        ))
        .args(["plan", "--format", "json"])
        .run()
        .success();
    let verdicts = verdicts(&plan.stdout);
    for (target, reason) in [
        (
            "apps/keyed:1.0.0",
            "signed by a trusted key, but the payload names another image (sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b)",
        ),
        (
            "apps/keyed:1.1.0",
            "signed by a trusted key, but the payload names another image (sha256:356631f7603526a0af827741f5fe005acf19b7ef7705a34241a91c2d47a6db5e)",
        ),
        (
            "apps/keyed:1.2.0",
            "signed, but not by any key in require_signature.keys",
        ),
        // Signature, log entry, validity at log time, chain to Fulcio's
        // 2021 CA and identity pass; Fulcio wrote no issuer in 2021.
        (
            "apps/keyless:1.0.0",
            "signed, but the certificate names no OIDC issuer",
        ),
    ] {
        let (action, why) = &verdicts[target];
        assert_eq!(action, "blocked", "{target}");
        assert!(why.contains(reason), "{target}: {why}");
    }
}

#[test]
fn unusable_keys_trusted_roots_and_patterns_are_configuration_errors() {
    let hoist = Hoist::new();
    place(
        &hoist,
        &fixture("keyless/root.pem"),
        "sigstore/not-a-root.json",
    );
    let run = hoist
        .config(
            "[registries.staging]\nurl = \"127.0.0.1:9\"\n\n\
             [[promotion]]\nname = \"a\"\nfrom = \"staging\"\nto = \"staging\"\nrepositories = [\"x\"]\ntarget = \"a/{path}\"\n\
             require_signature = { keys = [\"keys/missing.pub\"], identity_regexp = \"(unclosed\", \
             issuer = \"https://token.actions.githubusercontent.com\", trusted_root = \"sigstore/missing.json\" }\n\n\
             [[promotion]]\nname = \"b\"\nfrom = \"staging\"\nto = \"staging\"\nrepositories = [\"x\"]\ntarget = \"b/{path}\"\n\
             require_signature = { identity = \"x\", identity_regexp = \"y\", trusted_root = \"sigstore/not-a-root.json\" }\n",
        )
        .args(["check"])
        .run()
        .code(2);
    for expected in [
        "6 problems",
        "keys/missing.pub`: No such file",
        "`(unclosed` is not a regular expression",
        "sigstore/missing.json`: No such file",
        "`identity` and `identity_regexp` both given",
        "a keyless require_signature needs `issuer` or `issuer_regexp`",
        "sigstore/not-a-root.json`: not a sigstore trusted_root.json",
        "promotions.toml:10:154",
        "promotions.toml:18:57",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing `{expected}` in\n{}",
            run.stderr
        );
    }
}

#[test]
fn an_image_signed_by_the_sigstore_crate_with_each_key_type_is_promoted() {
    // tests/fixtures/cosign/real/sigstore-rs-*: key pairs made and a payload
    // signed by the sigstore crate (crates.io) outside hoist, for the digest
    // of this deterministic image; see that directory's README.
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let names = ["p256", "p384", "ed25519", "rsa"];
    let mut rules = String::new();
    let hoist = Hoist::new();
    for name in names {
        let repository = format!("apps/{name}");
        let image = seed::push(
            client.as_ref(),
            &repository,
            "1.0.0",
            &seed::small_image("sigstore-rs", Format::Oci),
        );
        assert_eq!(
            image.digest.to_string(),
            "sha256:6a67b8bcf8f5782ef81e11cf214aa277bfff85f813b752909dc22b4b826f6fbb",
            "the seeded image changed: sign its new digest again (real/README.md)"
        );
        let payload = std::fs::read(fixture("real/sigstore-rs.payload.json")).unwrap();
        let signature =
            std::fs::read_to_string(fixture(&format!("real/sigstore-rs-{name}.sig"))).unwrap();
        attach(
            client.as_ref(),
            &repository,
            &image.digest,
            &payload,
            &[(
                crate::support::cosign::SIGNATURE_ANNOTATION,
                signature.trim().to_string(),
            )],
        );
        place(
            &hoist,
            &fixture(&format!("real/sigstore-rs-{name}.pub")),
            &format!("keys/{name}.pub"),
        );
        rules.push_str(&format!(
            "[[promotion]]\nname = \"{name}\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"{repository}\"]\n\
             require_signature = {{ keys = [\"keys/{name}.pub\"], annotations = {{ team = \"web\" }} }}\n\n"
        ));
    }
    let config = config_at(
        &[("staging", staging.host()), ("prod", prod.host())],
        &rules,
    );
    let plan = hoist
        .config(&config)
        .args(["plan", "--format", "json"])
        .run()
        .success();
    let verdicts = verdicts(&plan.stdout);
    for name in names {
        assert_eq!(
            verdicts[&format!("apps/{name}:1.0.0")].0,
            "create",
            "{name}: {verdicts:#?}"
        );
    }
    let hoist = Hoist::new();
    for name in names {
        place(
            &hoist,
            &fixture(&format!("real/sigstore-rs-{name}.pub")),
            &format!("keys/{name}.pub"),
        );
    }
    hoist.config(&config).args(["apply"]).run().success();
    for name in names {
        assert_eq!(
            prod.read_manifest_digest(&format!("apps/{name}"), "1.0.0")
                .as_deref(),
            Some("sha256:6a67b8bcf8f5782ef81e11cf214aa277bfff85f813b752909dc22b4b826f6fbb")
        );
    }
}
