use super::*;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/cosign/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

fn key(name: &str) -> PublicKey {
    PublicKey::from_pem(name, &fixture(&format!("{name}.pub"))).unwrap()
}

/// Signs `message` with the fixture key `name`, as cosign does.
fn sign(name: &str, message: &[u8]) -> Vec<u8> {
    let pem = fixture(&format!("{name}.key.pem"));
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng).unwrap();
    pair.sign(&rng, message).unwrap().as_ref().to_vec()
}

#[test]
fn cosign_keys_verify_their_own_signatures_only() {
    let message = b"payload";
    let signature = sign("ci", message);
    assert!(key("ci").verifies(message, &signature));
    assert!(!key("other").verifies(message, &signature));
    assert!(!key("ci").verifies(b"another payload", &signature));
}

fn payload(digest: &str, optional: serde_json::Value) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": "r/app"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": optional,
    })
    .to_string()
    .into_bytes()
}

#[test]
fn payloads_must_name_the_image_and_carry_the_annotations() {
    let digest = Digest::sha256_of(b"image");
    let wanted: BTreeMap<String, String> = [("team".to_string(), "web".to_string())].into();
    let good = payload(
        &digest.to_string(),
        serde_json::json!({"team": "web", "x": "y"}),
    );
    assert_eq!(judge_payload(&good, &digest, &wanted), Ok(()));
    let other = Digest::sha256_of(b"other");
    assert_eq!(
        judge_payload(
            &payload(&other.to_string(), serde_json::json!({"team": "web"})),
            &digest,
            &wanted
        ),
        Err(Refusal::OtherDigest(other.to_string()))
    );
    let wrong = judge_payload(
        &payload(&digest.to_string(), serde_json::json!({"team": "db"})),
        &digest,
        &wanted,
    );
    assert_eq!(
        wrong.unwrap_err().to_string(),
        "signed by a trusted key, but annotation `team` is `db`, not `web`"
    );
    let missing = judge_payload(
        &payload(&digest.to_string(), serde_json::Value::Null),
        &digest,
        &wanted,
    );
    assert_eq!(
        missing.unwrap_err().to_string(),
        "signed by a trusted key, but annotation `team` is missing, not `web`"
    );
    assert_eq!(
        judge_payload(b"not json", &digest, &wanted),
        Err(Refusal::BadPayload)
    );
}

#[test]
fn the_most_specific_refusal_is_the_one_told() {
    assert!(Refusal::OtherKey > Refusal::Unsigned);
    assert!(Refusal::OtherDigest(String::new()) > Refusal::OtherKey);
}
