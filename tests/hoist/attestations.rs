//! Gates on attestations (issue 31): `require_attestation` promotes an
//! image only when an in-toto attestation of the type, signed by a trusted
//! key, about that image, has a predicate meeting every condition; every
//! other image is blocked with which attestation, condition and value.

use serde_json::{Value, json};

use crate::apply::config_at;
use crate::support::cosign::{Signer, attach_attestation, statement};
use crate::support::seed;
use crate::support::{Hoist, TestRegistry};

const SLSA: &str = "https://slsa.dev/provenance/v1";
const VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
const BUILDER: &str =
    "https://github.com/acme/platform/.github/workflows/build.yml@refs/heads/main";

fn provenance(builder: &str, repository: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": { "workflow": { "repository": repository, "ref": "refs/heads/main" } }
        },
        "runDetails": { "builder": { "id": builder } }
    })
}

fn scan(severities: &[&str]) -> Value {
    let found: Vec<Value> = severities
        .iter()
        .map(|s| json!({ "VulnerabilityID": "CVE-2026-0001", "Severity": s }))
        .collect();
    json!({ "scanner": { "uri": "pkg:github/aquasecurity/trivy@0.50.0",
        "result": { "Results": [ { "Target": "app", "Vulnerabilities": found } ] } } })
}

fn gated(staging: &TestRegistry, prod: &TestRegistry) -> String {
    let key = Signer::load("ci").public_key.display().to_string();
    config_at(
        &[("staging", staging.host()), ("prod", prod.host())],
        &format!(
            "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"apps/web\"]\n\n\
             [[promotion.require_attestation]]\npredicate_type = \"{SLSA}\"\nkeys = [\"{key}\"]\n\
             conditions = [\n  {{ path = \"runDetails.builder.id\", equals = \"{BUILDER}\" }},\n  \
             {{ path = \"buildDefinition.externalParameters.workflow.repository\", matches = \"https://github\\\\.com/acme/.*\" }},\n]\n\n\
             [[promotion.require_attestation]]\npredicate_type = \"{VULN}\"\nkeys = [\"{key}\"]\n\
             conditions = [ {{ path = \"scanner.result.Results[*].Vulnerabilities[*].Severity\", below_severity = \"high\" }} ]\n"
        ),
    )
}

#[test]
fn images_are_promoted_only_with_attestations_that_meet_every_condition() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let (ci, other) = (Signer::load("ci"), Signer::load("other"));
    let mut digest = Images::default();
    for tag in ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"] {
        digest.push(tag, seed::push_small(&staging, "apps/web", tag, tag).digest);
    }
    let repo = "https://github.com/acme/web";
    let attest = |signer: &Signer, tag: &str, kind: &str, predicate: Value| {
        signer.attest(
            client.as_ref(),
            "apps/web",
            digest.get(tag),
            &statement(digest.get(tag), kind, predicate),
        );
    };
    // 1.0.0: provenance from the right builder and repository, a clean scan.
    attest(&ci, "1.0.0", SLSA, provenance(BUILDER, repo));
    attest(&ci, "1.0.0", VULN, scan(&["LOW", "MEDIUM"]));
    // 1.1.0: built elsewhere.
    attest(
        &ci,
        "1.1.0",
        SLSA,
        provenance("https://evil.example/builder", repo),
    );
    attest(&ci, "1.1.0", VULN, scan(&[]));
    // 1.2.0: a high finding.
    attest(&ci, "1.2.0", SLSA, provenance(BUILDER, repo));
    attest(&ci, "1.2.0", VULN, scan(&["LOW", "HIGH"]));
    // 1.3.0: provenance signed by a key the rule does not trust.
    attest(&other, "1.3.0", SLSA, provenance(BUILDER, repo));
    attest(&ci, "1.3.0", VULN, scan(&[]));
    // 1.4.0: no attestation. 1.5.0: provenance without a builder id.
    attest(
        &ci,
        "1.5.0",
        SLSA,
        json!({ "buildDefinition": { "externalParameters": { "workflow": { "repository": repo } } } }),
    );
    attest(&ci, "1.5.0", VULN, scan(&[]));

    let config = gated(&staging, &prod);
    let plan = Hoist::new()
        .config(&config)
        .args(["plan", "--format", "json"])
        .run()
        .success();
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let reason = |tag: &str| -> String {
        let entry = plan["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"]["tag"] == tag)
            .unwrap_or_else(|| panic!("no entry for {tag}: {plan:#}"));
        entry["reason"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(reason("1.0.0"), "", "{plan:#}");
    assert_eq!(
        reason("1.1.0"),
        format!(
            "require_attestation[0] ({SLSA}): attested by a trusted key, but `runDetails.builder.id` is `https://evil.example/builder`, not `{BUILDER}`"
        )
    );
    assert_eq!(
        reason("1.2.0"),
        format!(
            "require_attestation[1] ({VULN}): attested by a trusted key, but `scanner.result.Results[*].Vulnerabilities[*].Severity` has a finding of severity `HIGH`, at or above High"
        )
    );
    assert_eq!(
        reason("1.3.0"),
        format!("require_attestation[0] ({SLSA}): attested, but not by any key in its keys")
    );
    assert_eq!(
        reason("1.4.0"),
        format!("require_attestation[0] ({SLSA}): no attestation of this type is attached")
    );
    assert_eq!(
        reason("1.5.0"),
        format!(
            "require_attestation[0] ({SLSA}): attested by a trusted key, but `runDetails.builder.id` is absent"
        )
    );

    Hoist::new().config(&config).args(["apply"]).run().code(1);
    assert_eq!(
        prod.read_tags("apps/web")
            .iter()
            .filter(|t| !t.contains('-'))
            .collect::<Vec<_>>(),
        ["1.0.0"]
    );
}

/// Tags and their digests, in order.
#[derive(Default)]
struct Images(Vec<(String, hoist::digest::Digest)>);

impl Images {
    fn push(&mut self, tag: &str, digest: hoist::digest::Digest) {
        self.0.push((tag.to_string(), digest));
    }

    fn get(&self, tag: &str) -> &hoist::digest::Digest {
        &self.0.iter().find(|(t, _)| t == tag).unwrap().1
    }
}

/// The subject of the attestations in tests/fixtures/attestations, signed
/// there by securesystemslib (see its README).
const ATTESTED: &str = "sha256:a172d4aabd9f431801143eafd7b45e1b29027c7828989105fef872ccf1756ab4";

#[test]
fn attestations_signed_by_securesystemslib_pass_the_gate() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let image = seed::push_small(&staging, "apps/web", "2.0.0", "attested");
    assert_eq!(image.digest.to_string(), ATTESTED, "the fixtures' subject");
    let fixture = |name: &str| {
        std::fs::read(format!(
            "{}/tests/fixtures/attestations/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    attach_attestation(
        client.as_ref(),
        "apps/web",
        &image.digest,
        &fixture("provenance.dsse.json"),
        SLSA,
    );
    attach_attestation(
        client.as_ref(),
        "apps/web",
        &image.digest,
        &fixture("scan.dsse.json"),
        VULN,
    );
    let scanner = Signer::load("ci").public_key.with_file_name("ed25519.pub");
    let config = gated(&staging, &prod).replacen(
        &format!(
            "predicate_type = \"{VULN}\"\nkeys = [\"{}\"]",
            Signer::load("ci").public_key.display()
        ),
        &format!(
            "predicate_type = \"{VULN}\"\nkeys = [\"{}\"]",
            scanner.display()
        ),
        1,
    );
    let run = Hoist::new().config(&config).args(["apply"]).run().success();
    assert!(run.stdout.contains("2.0.0"), "{}", run.stdout);
    assert_eq!(
        prod.read_manifest_digest("apps/web", "2.0.0").as_deref(),
        Some(ATTESTED)
    );

    // A stricter rule: the scan's MEDIUM finding blocks it, named.
    let strict = config.replace("below_severity = \"high\"", "below_severity = \"medium\"");
    let plan = Hoist::new().config(&strict).args(["plan"]).run().success();
    assert!(
        plan.stdout
            .contains("has a finding of severity `MEDIUM`, at or above Medium"),
        "{}",
        plan.stdout
    );
}

#[test]
fn promote_takes_the_attestation_gate_as_flags() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let ci = Signer::load("ci");
    let repo = "https://github.com/acme/web";
    for (tag, builder) in [
        ("1.0.0", BUILDER),
        ("1.1.0", "https://evil.example/builder"),
    ] {
        let digest = seed::push_small(&staging, "apps/web", tag, tag).digest;
        let attestation = statement(&digest, SLSA, provenance(builder, repo));
        ci.attest(client.as_ref(), "apps/web", &digest, &attestation);
    }
    let key = ci.public_key.display().to_string();
    let promote = |tag: &str| {
        Hoist::new()
            .args(["promote", &format!("{}/apps/web:{tag}", staging.host())])
            .args([&format!("{}/apps/web:{tag}", prod.host())])
            .args(["--require-attestation", SLSA, "--attestation-key", &key])
            .args(["--attestation-condition", &format!("runDetails.builder.id={BUILDER}")])
            .args(["--attestation-condition", "buildDefinition.externalParameters.workflow.repository~https://github\\.com/acme/.*"])
            .run()
    };
    promote("1.0.0").success();
    let refused = promote("1.1.0").code(1);
    assert!(
        refused.stdout.contains(&format!(
            "blocked: require_attestation[0] ({SLSA}): attested by a trusted key, but `runDetails.builder.id` is `https://evil.example/builder`"
        )),
        "{}",
        refused.stdout
    );
    assert_eq!(prod.read_manifest_digest("apps/web", "1.1.0"), None);
    let bad = Hoist::new()
        .args([
            "promote",
            &format!("{}/apps/web:1.0.0", staging.host()),
            &format!("{}/x:1", prod.host()),
        ])
        .args([
            "--require-attestation",
            SLSA,
            "--attestation-key",
            &key,
            "--attestation-condition",
            "a[b=1",
        ])
        .run()
        .code(2);
    assert!(bad.stderr.contains("not a field path"), "{}", bad.stderr);
}
