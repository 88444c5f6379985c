//! Promotion records (issue 31): every image `apply` writes gets one signed
//! in-toto statement attached as a referrer (the fallback tag on
//! Distribution, which has no referrers API), written after its tags; a
//! re-run adds none, a new tag adds one; `history` lists and checks them.

use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde_json::Value;

use crate::apply::config_at;
use crate::support::seed;
use crate::support::{Hoist, TestRegistry};

const USER: &str = "promoter";
const PASSWORD: &str = "s3cret-record-pw";

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/cosign/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// staging → prod (credentials in the environment: no record may hold them) for `apps/web`, `{major}` floating,
/// records signed by the fixture key `ci`.
fn recorded(staging: &TestRegistry, prod: &TestRegistry) -> String {
    let mut text = format!(
        "[settings]\nrecord = {{ key = \"{}\" }}\n\n",
        fixture("ci.key.pem")
    );
    text.push_str(&config_at(
        &[("staging", staging.host())],
        &format!(
            "[registries.prod]\nurl = \"{}\"\nusername_env = \"PROD_USER\"\npassword_env = \"PROD_PASS\"\n\n\
             [[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"apps/web\"]\nfloating = [\"{{major}}\"]\n",
            prod.host()
        ),
    ));
    text
}

fn hoist(config: &str) -> Hoist {
    Hoist::new()
        .config(config)
        .env("PROD_USER", USER)
        .env("PROD_PASS", PASSWORD)
}

/// The statements attached to `digest` in prod, read and verified here with
/// ring over DSSE's encoding, not with hoist's reader.
fn statements(prod: &TestRegistry, digest: &str) -> Vec<Value> {
    let client = seed::client(prod);
    let fallback = digest.replace(':', "-");
    let Ok(index) = client.manifest_get("apps/web", &fallback) else {
        return Vec::new();
    };
    let index: Value = serde_json::from_slice(&index.bytes).unwrap();
    let public = public_point(&std::fs::read_to_string(fixture("ci.pub")).unwrap());
    let mut out = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        assert_eq!(
            entry["artifactType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
        let manifest = client
            .manifest_get("apps/web", entry["digest"].as_str().unwrap())
            .unwrap();
        let manifest: Value = serde_json::from_slice(&manifest.bytes).unwrap();
        assert_eq!(manifest["subject"]["digest"], digest);
        let layer = &manifest["layers"][0];
        let mut bundle = Vec::new();
        client
            .blob_get(
                "apps/web",
                &layer["digest"].as_str().unwrap().parse().unwrap(),
                layer["size"].as_u64().unwrap(),
            )
            .unwrap()
            .read_to_end(&mut bundle)
            .unwrap();
        let bundle: Value = serde_json::from_slice(&bundle).unwrap();
        let envelope = &bundle["dsseEnvelope"];
        let payload = STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        let kind = envelope["payloadType"].as_str().unwrap();
        let mut pae = format!("DSSEv1 {} {kind} {} ", kind.len(), payload.len()).into_bytes();
        pae.extend_from_slice(&payload);
        let sig = STANDARD
            .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &public)
            .verify(&pae, &sig)
            .expect("the record verifies against ci.pub");
        let text = String::from_utf8(payload).unwrap();
        assert!(!text.contains(PASSWORD) && !text.contains(USER), "{text}");
        out.push(serde_json::from_str(&text).unwrap());
    }
    out
}

/// The uncompressed point of a P-256 `PUBLIC KEY` PEM (the last 65 bytes
/// of its SubjectPublicKeyInfo).
fn public_point(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    der[der.len() - 65..].to_vec()
}

#[test]
fn each_promotion_gets_one_signed_record_and_a_rerun_adds_none() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let old = seed::push_small(&staging, "apps/web", "1.0.0", "old");
    let new = seed::push_small(&staging, "apps/web", "1.1.0", "new");
    let config = recorded(&staging, &prod);

    let run = hoist(&config)
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_REPOSITORY", "acme/deploy")
        .env("GITHUB_RUN_ID", "77")
        .args(["apply", "--report", "report.json"])
        .run()
        .success();
    let report = run.json_file("report.json");
    assert_eq!(report["records"].as_array().unwrap().len(), 2, "{report:#}");

    let old_records = statements(&prod, &old.digest.to_string());
    assert_eq!(old_records.len(), 1);
    let statement = &old_records[0];
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://in-toto.io/attestation/promotion-record/v1"
    );
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        old.digest.hex()
    );
    let predicate = &statement["predicate"];
    assert_eq!(predicate["tags"], serde_json::json!(["1.0.0"]));
    assert_eq!(predicate["rules"], serde_json::json!(["web"]));
    assert_eq!(predicate["source"]["registry"], "staging");
    assert_eq!(
        predicate["srcRef"],
        format!("{}/apps/web@{}", staging.host(), old.digest)
    );
    assert_eq!(
        predicate["run"]["url"],
        "https://github.example/acme/deploy/actions/runs/77"
    );
    // The floating tag went with the newest version: both in one record.
    let new_records = statements(&prod, &new.digest.to_string());
    assert_eq!(new_records.len(), 1);
    assert_eq!(
        new_records[0]["predicate"]["tags"],
        serde_json::json!(["1.1.0", "1"])
    );

    // Nothing to write: no record.
    let again = hoist(&config)
        .args(["apply", "--report", "report.json"])
        .run()
        .success();
    assert!(again.json_file("report.json").get("records").is_none());
    assert_eq!(statements(&prod, &old.digest.to_string()).len(), 1);

    // The same image under a new tag: a record for that promotion.
    let client = seed::client(&staging);
    let manifest = client.manifest_get("apps/web", "1.0.0").unwrap();
    client.manifest_put("apps/web", "lts", &manifest).unwrap();
    hoist(&config).args(["apply"]).run().success();
    let records = statements(&prod, &old.digest.to_string());
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["predicate"]["tags"], serde_json::json!(["lts"]));
}

#[test]
fn history_lists_each_record_and_checks_it_against_the_keys_given() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let image = seed::push_small(&staging, "apps/web", "2.0.0", "two");
    let config = recorded(&staging, &prod);
    hoist(&config).args(["apply"]).run().success();

    let run = hoist(&config)
        .args(["history", "prod/apps/web:2.0.0", "--key"])
        .args([fixture("ci.pub")])
        .args(["--format", "json"])
        .run()
        .success();
    let history: Value = serde_json::from_str(&run.stdout).unwrap();
    let images = history["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{history:#}");
    assert_eq!(images[0]["digest"], image.digest.to_string());
    let records = images[0]["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["verified"], true);
    assert_eq!(
        records[0]["promotion"]["tags"],
        serde_json::json!(["2.0.0", "2"])
    );

    // The table, for people: when, where from, by which rule, verified.
    let table = hoist(&config)
        .args(["history", "prod/apps/web", "--key"])
        .args([fixture("ci.pub")])
        .run()
        .success();
    assert!(table.stdout.contains("by rule web"), "{}", table.stdout);
    assert!(table.stdout.contains("verified ("), "{}", table.stdout);

    // Against another key: shown as not verified, and exit 1.
    let other = hoist(&config)
        .args(["history", "prod/apps/web:2", "--key"])
        .args([fixture("other.pub")])
        .run()
        .code(1);
    assert!(other.stdout.contains("NOT VERIFIED"), "{}", other.stdout);
}

#[test]
fn a_record_key_that_cannot_be_read_stops_apply_before_any_write() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    seed::push_small(&staging, "apps/web", "1.0.0", "one");
    let config = config_at(
        &[("staging", staging.host()), ("prod", prod.host())],
        "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/web\"]\n",
    );
    let config =
        format!("[settings]\nrecord = {{ key_env = \"HOIST_TEST_NO_SUCH_KEY\" }}\n\n{config}");
    let run = Hoist::new()
        .config(&config)
        .env_remove("HOIST_TEST_NO_SUCH_KEY")
        .args(["apply"])
        .run()
        .code(2);
    assert!(
        run.stderr.contains("HOIST_TEST_NO_SUCH_KEY"),
        "{}",
        run.stderr
    );
    assert!(prod.read_tags("apps/web").is_empty());

    let both = format!(
        "[settings]\nrecord = {{ key = \"k.pem\", key_env = \"K\" }}\n\n{}",
        config_at(&[("staging", staging.host())], "")
    );
    let run = Hoist::new().config(&both).args(["check"]).run().code(2);
    assert!(
        run.stderr.contains("both `key` and `key_env`"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_fails_an_image_whose_record_is_missing_or_signed_by_another_key() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let one = seed::push_small(&staging, "apps/web", "1.0.0", "one");
    // 0.9.0 reached prod without hoist: the same image, no record (and no
    // floating tag moves to it, which would be a promotion with a record).
    seed::push_small(&staging, "apps/web", "0.9.0", "hand");
    let hand = seed::push_small(&prod, "apps/web", "0.9.0", "hand");
    let config = recorded(&staging, &prod).replace(
        "floating = [\"{major}\"]\n",
        "require_record = { keys = [\"KEY\"] }\n",
    );
    let requiring = |key: &str| config.replace("KEY", &fixture(key));
    hoist(&requiring("ci.pub")).args(["apply"]).run().success();

    let run = hoist(&requiring("ci.pub")).args(["verify"]).run().code(1);
    assert_eq!(
        run.lines(),
        [format!(
            "prod/apps/web:0.9.0 ({}): require_record: no promotion record",
            hand.digest.short()
        )],
    );
    let run = hoist(&requiring("other.pub"))
        .args(["verify"])
        .run()
        .code(1);
    assert!(
        run.stdout.contains(&format!(
            "prod/apps/web:1.0.0 ({}): require_record: 1 promotion record, none signed by a key of require_record",
            one.digest.short()
        )),
        "{}",
        run.stdout
    );
    assert_eq!(run.lines().len(), 2, "{}", run.stdout);
}

#[test]
fn promote_records_what_it_promotes_when_the_configuration_asks() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let image = seed::push_small(&staging, "apps/web", "3.0.0", "three");
    let config = recorded(&staging, &prod);
    hoist(&config)
        .args(["promote", "staging/apps/web:3.0.0", "prod/apps/web:3.0.0"])
        .run()
        .success();
    let records = statements(&prod, &image.digest.to_string());
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["predicate"]["rules"],
        serde_json::json!(["promote"])
    );
    assert_eq!(
        records[0]["predicate"]["tags"],
        serde_json::json!(["3.0.0"])
    );
}

/// A source without the referrers API lists a signature under the image's
/// fallback tag: prod's index gets it and then the record. A re-run finds
/// prod's index listing all the source's and leaves it (the record stays
/// listed, `verify` is content); a signature added to the source later is
/// merged in beside the record, never written over it.
#[test]
fn a_record_stays_listed_beside_the_sources_referrers() {
    use crate::support::artifacts::{add_to_fallback_index, attach_signature, read_fallback_index};
    use crate::support::cosign::Signer;
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let image = seed::push_small(&staging, "apps/web", "1.0.0", "signed");
    let client = seed::client(&staging);
    let signed = |signer: &str| {
        let signature =
            attach_signature(&Signer::load(signer), client.as_ref(), "apps/web", &image);
        add_to_fallback_index(client.as_ref(), "apps/web", &signature);
        signature.digest.to_string()
    };
    let first = signed("ci");
    let config = recorded(&staging, &prod);
    let listed = || -> Vec<String> {
        let index = read_fallback_index(&prod, "apps/web", &image.digest).expect("fallback index");
        index
            .iter()
            .map(|d| d["artifactType"].as_str().unwrap().to_string())
            .collect()
    };
    let bundle = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let cosign = "application/vnd.dev.cosign.artifact.sig.v1+json";

    hoist(&config).args(["apply"]).run().success();
    assert_eq!(listed(), [cosign, bundle]);

    let plan = hoist(&config)
        .args(["plan", "--detailed-exitcode"])
        .run()
        .code(0);
    assert!(
        plan.stdout
            .contains("0 to create, 0 to update, 3 unchanged"),
        "{}",
        plan.stdout
    );
    hoist(&config).args(["apply"]).run().success();
    assert_eq!(listed(), [cosign, bundle]);
    hoist(&config).args(["verify"]).run().success();

    let second = signed("other");
    let plan = hoist(&config)
        .args(["plan", "--detailed-exitcode"])
        .run()
        .code(3);
    assert!(plan.stdout.contains("sha256-"), "{}", plan.stdout);
    hoist(&config).args(["apply"]).run().success();
    assert_eq!(listed(), [cosign, bundle, cosign]);
    let index = read_fallback_index(&prod, "apps/web", &image.digest).unwrap();
    let digests: Vec<&str> = index
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!((digests[0], digests[2]), (first.as_str(), second.as_str()));
    hoist(&config).args(["verify"]).run().success();
    assert_eq!(
        statements_of_kind(&prod, &image.digest.to_string(), bundle),
        1
    );
}

/// How many entries of `kind` the fallback index of `digest` lists in prod.
fn statements_of_kind(prod: &TestRegistry, digest: &str, kind: &str) -> usize {
    let client = seed::client(prod);
    let index = client
        .manifest_get("apps/web", &digest.replace(':', "-"))
        .expect("fallback index");
    let index: Value = serde_json::from_slice(&index.bytes).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    entries.iter().filter(|e| e["artifactType"] == kind).count()
}
