use super::*;
use crate::gate::PublicKey;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/cosign/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn promoted() -> Promoted {
    Promoted {
        rules: vec!["apps".into()],
        source: Endpoint {
            registry: "staging".into(),
            location: "staging.example:5000".into(),
        },
        source_repository: "team/app".into(),
        source_digest: Digest::sha256_of(b"index"),
        source_tags: vec!["v1.2.0".into()],
        target: Endpoint {
            registry: "prod".into(),
            location: "prod.example".into(),
        },
        repository: "app".into(),
        digest: Digest::sha256_of(b"image"),
        tags: vec!["v1.2.0".into(), "1.2".into()],
        gate: None,
        subject: None,
        fallback_absent: false,
    }
}

#[test]
fn pae_is_dsse_v1_pre_authentication_encoding() {
    // The example of the DSSE protocol's specification.
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
    );
}

#[test]
fn both_key_types_sign_envelopes_their_public_keys_verify() {
    for (private, public) in [("ci.key.pem", "ci.pub"), ("ed25519.key.pem", "ed25519.pub")] {
        let key = SigningKey::from_pem(private, &fixture(private)).unwrap();
        let trusted = PublicKey::from_pem(public, &fixture(public)).unwrap();
        let other = PublicKey::from_pem("other.pub", &fixture("other.pub")).unwrap();
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD, b"{\"a\":1}", &key);
        let keys = [other.clone(), trusted];
        assert_eq!(
            envelope.signed_by(&keys).map(|k| k.name.as_str()),
            Some(public)
        );
        assert!(envelope.signed_by(&[other]).is_none(), "{private}");
        assert_eq!(key.public_key().unwrap().algorithm(), key.algorithm());
        let mut tampered = envelope.clone();
        tampered.payload_type = "text/plain".into();
        assert!(
            tampered.signed_by(&keys).is_none(),
            "the type is signed too"
        );
    }
}

#[test]
fn keys_hoist_cannot_sign_with_are_named_with_what_to_do() {
    let p384 = SigningKey::from_pem("p384.key.pem", &fixture("p384.key.pem")).unwrap_err();
    assert!(matches!(p384, SigningKeyError::Unsupported(_)), "{p384}");
    let public = SigningKey::from_pem("ci.pub", &fixture("ci.pub")).unwrap_err();
    assert!(public.to_string().contains("PKCS#8"), "{public}");
    let encrypted = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
    let error = SigningKey::from_pem("cosign.key", encrypted).unwrap_err();
    assert!(error.to_string().contains("unencrypted"), "{error}");
    assert!(
        !format!(
            "{:?}",
            SigningKey::from_pem("k", &fixture("ci.key.pem")).unwrap()
        )
        .contains("MIG")
    );
}

#[test]
fn a_statement_names_the_target_image_and_where_it_came_from() {
    let recorder = Recorder::new(
        SigningKey::from_pem("ci", &fixture("ci.key.pem")).unwrap(),
        None,
        Some(Digest::sha256_of(b"plan")),
    );
    let statement = recorder.statement(&promoted(), 1_796_601_600);
    let json = serde_json::to_value(&statement).unwrap();
    assert_eq!(json["_type"], STATEMENT_TYPE);
    assert_eq!(json["predicateType"], PROMOTION_PREDICATE);
    assert_eq!(json["subject"][0]["name"], "prod.example/app");
    assert_eq!(
        json["subject"][0]["digest"]["sha256"],
        Digest::sha256_of(b"image").hex()
    );
    let predicate = &json["predicate"];
    assert_eq!(
        predicate["srcRef"],
        format!(
            "staging.example:5000/team/app@{}",
            Digest::sha256_of(b"index")
        )
    );
    assert_eq!(predicate["timestamp"], "2026-12-07T00:00:00Z");
    assert_eq!(predicate["tags"], serde_json::json!(["v1.2.0", "1.2"]));
    assert_eq!(
        predicate["planDigest"],
        Digest::sha256_of(b"plan").to_string()
    );
    assert!(predicate.get("run").is_none() && predicate.get("gate").is_none());
}

#[test]
fn rfc3339_renders_the_times_unix_seconds_reads() {
    for text in [
        "1970-01-01T00:00:00Z",
        "2000-02-29T23:59:59Z",
        "2026-12-07T16:40:05Z",
    ] {
        let seconds = crate::gate::trusted_root::unix_seconds(text).unwrap();
        assert_eq!(rfc3339(seconds as u64), text);
    }
}

#[test]
fn the_ci_run_comes_from_the_environment_each_system_sets() {
    let github = |name: &str| match name {
        "GITHUB_SERVER_URL" => Some("https://github.com".to_string()),
        "GITHUB_REPOSITORY" => Some("acme/app".to_string()),
        "GITHUB_RUN_ID" => Some("42".to_string()),
        _ => None,
    };
    let run = CiRun::from_env(&github).unwrap();
    assert_eq!(run.url, "https://github.com/acme/app/actions/runs/42");
    let gitlab =
        |name: &str| (name == "CI_JOB_URL").then(|| "https://gitlab.example/j/7".to_string());
    assert_eq!(CiRun::from_env(&gitlab).unwrap().system, "gitlab-ci");
    assert!(CiRun::from_env(&|_: &str| None).is_none());
}
