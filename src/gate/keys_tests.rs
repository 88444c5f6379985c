use super::*;

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
    RsaKeyPair,
};

use crate::gate::trusted_root::{TrustedRoot, unix_seconds};

fn fixture(path: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/cosign/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key(path: &str) -> PublicKey {
    PublicKey::from_pem(path, &fixture(path)).unwrap()
}

fn private(name: &str) -> Vec<u8> {
    pem_blocks(&fixture(&format!("{name}.key.pem")), "PRIVATE KEY").remove(0)
}

#[test]
fn ed25519_rsa_and_p384_keys_verify_their_own_signatures_only() {
    let rng = SystemRandom::new();
    let message = b"payload";
    let ed = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&private("ed25519")).unwrap();
    let ed_signature = ed.sign(message).as_ref().to_vec();
    let rsa = RsaKeyPair::from_pkcs8(&private("rsa")).unwrap();
    let mut pkcs1 = vec![0; rsa.public().modulus_len()];
    rsa.sign(&RSA_PKCS1_SHA256, &rng, message, &mut pkcs1)
        .unwrap();
    let mut pss = vec![0; rsa.public().modulus_len()];
    rsa.sign(&RSA_PSS_SHA256, &rng, message, &mut pss).unwrap();
    let p384 =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &private("p384"), &rng).unwrap();
    let p384_signature = p384.sign(&rng, message).unwrap().as_ref().to_vec();
    assert_eq!(key("ed25519.pub").algorithm(), "Ed25519");
    assert_eq!(key("rsa.pub").algorithm(), "RSA");
    assert_eq!(key("p384.pub").algorithm(), "ECDSA P-384");
    assert!(key("ed25519.pub").verifies(message, &ed_signature));
    assert!(key("rsa.pub").verifies(message, &pkcs1));
    assert!(key("rsa.pub").verifies(message, &pss));
    assert!(key("p384.pub").verifies_with(Hash::Sha384, message, &p384_signature));
    assert!(key("p384.pub").verifies(message, &p384_signature));
    assert!(!key("p384.pub").verifies_with(Hash::Sha256, message, &p384_signature));
    for (name, signature) in [
        ("ed25519.pub", &ed_signature),
        ("rsa.pub", &pkcs1),
        ("rsa.pub", &pss),
    ] {
        assert!(!key(name).verifies(b"another payload", signature), "{name}");
        assert!(!key("ci.pub").verifies(message, signature), "{name}");
    }
    assert!(!key("ed25519.pub").verifies(message, &pkcs1));
}

#[test]
fn real_key_based_cosign_signatures_verify() {
    // tests/fixtures/cosign/real: made by cosign (ECDSA) and by the Open
    // Build Service (RSA), not by hoist.
    for name in ["cosign-ecdsa", "obs-rsa"] {
        let public = key(&format!("real/{name}.pub"));
        let payload = fixture(&format!("real/{name}.payload.json"));
        let signature = STANDARD
            .decode(fixture(&format!("real/{name}.sig")).trim())
            .unwrap();
        assert!(public.verifies(payload.as_bytes(), &signature), "{name}");
        let tampered = payload.replace("\"optional\"", "\"Optional\"");
        assert!(!public.verifies(tampered.as_bytes(), &signature), "{name}");
    }
    assert_eq!(key("real/obs-rsa.pub").algorithm(), "RSA");
    // Made by the sigstore crate, one payload, four key types.
    let payload = fixture("real/sigstore-rs.payload.json");
    for (name, algorithm) in [
        ("p256", "ECDSA P-256"),
        ("p384", "ECDSA P-384"),
        ("ed25519", "Ed25519"),
        ("rsa", "RSA"),
    ] {
        let public = key(&format!("real/sigstore-rs-{name}.pub"));
        assert_eq!(public.algorithm(), algorithm);
        let signature = STANDARD
            .decode(fixture(&format!("real/sigstore-rs-{name}.sig")).trim())
            .unwrap();
        assert!(public.verifies(payload.as_bytes(), &signature), "{name}");
        assert!(!public.verifies(b"{}", &signature), "{name}");
    }
}

#[test]
fn what_is_not_a_usable_key_is_refused_by_name() {
    assert!(matches!(
        PublicKey::from_pem("x", "not a key"),
        Err(KeyError::NotPem)
    ));
    let not_spki = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert!(matches!(
        PublicKey::from_pem("x", not_spki),
        Err(KeyError::NotSpki)
    ));
    // RFC 8410's X25519 example key: a key agreement key, not for signatures.
    let x25519 = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEAhSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n-----END PUBLIC KEY-----\n";
    let refused = PublicKey::from_pem("x", x25519).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("unsupported key algorithm 1.3.101.110"),
        "{refused}"
    );
}

#[test]
fn trusted_roots_are_read_with_their_windows() {
    let real = TrustedRoot::from_json("real", &fixture("real/trusted_root.json")).unwrap();
    assert!(!real.authorities.is_empty() && !real.logs.is_empty());
    let rekor = real
        .logs
        .iter()
        .find(|log| log.key.name == "https://rekor.sigstore.dev")
        .unwrap();
    assert_eq!(rekor.valid.start, Some(1_610_452_407));
    assert!(rekor.valid.contains(1_634_714_717));
    assert!(!rekor.valid.contains(1_600_000_000));
    assert!(TrustedRoot::from_json("x", "{}").is_err());
    assert!(TrustedRoot::from_json("x", "[]").is_err());
}

#[test]
fn rfc3339_times_become_unix_seconds() {
    assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        unix_seconds("2021-01-12T11:53:27.000Z"),
        Some(1_610_452_407)
    );
    assert_eq!(
        unix_seconds("2021-01-12T12:53:27+01:00"),
        Some(1_610_452_407)
    );
    assert_eq!(unix_seconds("2000-02-29T00:00:00Z"), Some(951_782_400));
    assert_eq!(unix_seconds("yesterday"), None);
    assert_eq!(unix_seconds("2021-13-01T00:00:00Z"), None);
}
