use super::*;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

use crate::gate::trusted_root::{Authority, Window};

const IDENTITY: &str =
    "https://github.com/hoist-test/app/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn fixture(path: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/cosign/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key_pair(name: &str) -> EcdsaKeyPair {
    let der = pem_blocks(&fixture(&format!("keyless/{name}.key.pem")), "PRIVATE KEY").remove(0);
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &SystemRandom::new()).unwrap()
}

fn root(path: &str) -> TrustedRoot {
    TrustedRoot::from_json(path, &fixture(path)).unwrap()
}

/// The synthetic signer of tests/fixtures/cosign/keyless: a leaf
/// certificate's key signs, the log key logs, as Fulcio and Rekor would.
struct Signed {
    payload: Vec<u8>,
    signature: Vec<u8>,
    certificate: String,
    chain: String,
    bundle: String,
}

impl Signed {
    fn layer(&self) -> SignedLayer<'_> {
        SignedLayer {
            payload: &self.payload,
            signature: &self.signature,
            certificate: Some(&self.certificate),
            chain: Some(&self.chain),
            bundle: Some(&self.bundle),
        }
    }
}

fn now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

/// `payload` signed by `leaf`'s key and logged at `time`.
fn sign(leaf: &str, payload: &[u8], time: i64) -> Signed {
    let rng = SystemRandom::new();
    let signature = key_pair(leaf)
        .sign(&rng, payload)
        .unwrap()
        .as_ref()
        .to_vec();
    let certificate = fixture(&format!("keyless/{leaf}.pem"));
    let log_id = hex(&root("keyless/trusted_root.json").logs[0].id);
    let mut entry = LogEntry::hashedrekord(payload, &signature, &certificate, (time, 7, log_id));
    entry.set = key_pair("log")
        .sign(&rng, &entry.signed_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    Signed {
        payload: payload.to_vec(),
        signature,
        certificate,
        chain: fixture("keyless/intermediate.pem") + &fixture("keyless/root.pem"),
        bundle: entry.to_bundle(),
    }
}

fn gate(identity: Matcher, issuer: Matcher, root: TrustedRoot) -> Keyless {
    Keyless {
        identity,
        issuer,
        root: Arc::new(root),
    }
}

fn pipeline() -> Keyless {
    gate(
        Matcher::Exact(IDENTITY.to_string()),
        Matcher::Exact(ISSUER.to_string()),
        root("keyless/trusted_root.json"),
    )
}

#[test]
fn a_keyless_signature_by_the_pipeline_passes() {
    let signed = sign("leaf", b"payload", now());
    assert_eq!(pipeline().verify(&signed.layer()), Ok(IDENTITY.to_string()));
    // Without the chain annotation too: the trusted root holds the intermediate.
    let layer = SignedLayer {
        chain: None,
        ..signed.layer()
    };
    assert_eq!(pipeline().verify(&layer), Ok(IDENTITY.to_string()));
}

#[test]
fn another_identity_or_issuer_is_refused_by_name() {
    let signed = sign("leaf", b"payload", now());
    let other = gate(
        Matcher::Exact(
            "https://github.com/hoist-test/app/.github/workflows/other.yml@refs/heads/main"
                .to_string(),
        ),
        Matcher::Exact(ISSUER.to_string()),
        root("keyless/trusted_root.json"),
    );
    let refused = other.verify(&signed.layer()).unwrap_err();
    assert!(
        matches!(refused, KeylessError::WrongIdentity { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains(&format!("is `{IDENTITY}`")),
        "{refused}"
    );
    let issuer = gate(
        Matcher::Exact(IDENTITY.to_string()),
        Matcher::Exact("https://accounts.google.com".to_string()),
        root("keyless/trusted_root.json"),
    );
    assert_eq!(
        issuer.verify(&signed.layer()).unwrap_err().to_string(),
        format!("the certificate's OIDC issuer is `{ISSUER}`, not `https://accounts.google.com`")
    );
}

#[test]
fn identity_patterns_match_the_whole_identity() {
    let signed = sign("leaf", b"payload", now());
    let pattern = |p: &str| {
        gate(
            Matcher::pattern(p).unwrap(),
            Matcher::Exact(ISSUER.to_string()),
            root("keyless/trusted_root.json"),
        )
        .verify(&signed.layer())
    };
    assert!(pattern(r"https://github\.com/hoist-test/.*@refs/heads/main").is_ok());
    // Unanchored, this would match; anchored, a prefix is not the identity.
    assert!(matches!(
        pattern(r"https://github\.com/hoist-test/app"),
        Err(KeylessError::WrongIdentity { .. })
    ));
    assert!(Matcher::pattern("(unclosed").is_err());
}

#[test]
fn a_tampered_payload_or_a_foreign_certificate_does_not_verify() {
    let signed = sign("leaf", b"payload", now());
    let layer = SignedLayer {
        payload: b"another payload",
        ..signed.layer()
    };
    assert_eq!(pipeline().verify(&layer), Err(KeylessError::BadSignature));
    let v1 = fixture("keyless/leaf_v1.pem");
    let layer = SignedLayer {
        certificate: Some(&v1),
        ..signed.layer()
    };
    assert_eq!(pipeline().verify(&layer), Err(KeylessError::BadSignature));
    let layer = SignedLayer {
        certificate: None,
        ..signed.layer()
    };
    assert_eq!(pipeline().verify(&layer), Err(KeylessError::NoCertificate));
}

#[test]
fn a_certificate_from_another_ca_is_untrusted() {
    let signed = sign("leaf", b"payload", now());
    // The same log, but sigstore's public-good CAs instead of ours.
    let mut other = root("keyless/trusted_root.json");
    other.authorities = root("real/trusted_root.json").authorities;
    let refused = gate(
        Matcher::Exact(IDENTITY.into()),
        Matcher::Exact(ISSUER.into()),
        other,
    );
    assert_eq!(
        refused.verify(&signed.layer()),
        Err(KeylessError::UntrustedChain)
    );
    // Only our root trusted: the chain annotation's intermediate links to it;
    // without the annotation there is no path.
    let mut only_root = root("keyless/trusted_root.json");
    only_root.authorities[0].certificates.remove(0);
    let keyless = gate(
        Matcher::Exact(IDENTITY.into()),
        Matcher::Exact(ISSUER.into()),
        only_root,
    );
    assert_eq!(keyless.verify(&signed.layer()), Ok(IDENTITY.to_string()));
    let layer = SignedLayer {
        chain: None,
        ..signed.layer()
    };
    assert_eq!(keyless.verify(&layer), Err(KeylessError::UntrustedChain));
    // A CA trusted only before the signature was logged.
    let mut expired = root("keyless/trusted_root.json");
    expired.authorities = vec![Authority {
        certificates: expired.authorities[0].certificates.clone(),
        valid: Window {
            start: None,
            end: Some(now() - 86_400),
        },
    }];
    let keyless = gate(
        Matcher::Exact(IDENTITY.into()),
        Matcher::Exact(ISSUER.into()),
        expired,
    );
    assert_eq!(
        keyless.verify(&signed.layer()),
        Err(KeylessError::UntrustedChain)
    );
}

#[test]
fn a_certificate_expired_or_not_yet_valid_at_log_time_is_refused() {
    let leaf =
        Certificate::from_der(&pem_blocks(&fixture("keyless/leaf.pem"), "CERTIFICATE")[0]).unwrap();
    let (not_before, not_after) = validity(&leaf);
    for time in [not_before - 60, not_after + 60] {
        let signed = sign("leaf", b"payload", time);
        assert_eq!(
            pipeline().verify(&signed.layer()),
            Err(KeylessError::NotValidAtLogTime {
                time,
                not_before,
                not_after
            })
        );
    }
}

#[test]
fn a_bad_or_foreign_log_entry_is_refused() {
    let signed = sign("leaf", b"payload", now());
    let mut bundle: Value = serde_json::from_str(&signed.bundle).unwrap();
    bundle["Payload"]["logIndex"] = Value::from(8);
    let tampered = bundle.to_string();
    let layer = SignedLayer {
        bundle: Some(&tampered),
        ..signed.layer()
    };
    assert_eq!(pipeline().verify(&layer), Err(KeylessError::BadSet));
    bundle["Payload"]["logID"] = Value::from("00".repeat(32));
    let unknown = bundle.to_string();
    let layer = SignedLayer {
        bundle: Some(&unknown),
        ..signed.layer()
    };
    assert!(matches!(
        pipeline().verify(&layer),
        Err(KeylessError::UnknownLog(_))
    ));
    // A genuine entry, for another signature by the same certificate.
    let other = sign("leaf", b"other payload", now());
    let layer = SignedLayer {
        bundle: Some(&other.bundle),
        ..signed.layer()
    };
    assert_eq!(
        pipeline().verify(&layer),
        Err(KeylessError::EntryMismatch("payload"))
    );
    let layer = SignedLayer {
        bundle: None,
        ..signed.layer()
    };
    assert_eq!(pipeline().verify(&layer), Err(KeylessError::NoBundle));
    let layer = SignedLayer {
        bundle: Some("{}"),
        ..signed.layer()
    };
    assert!(matches!(
        pipeline().verify(&layer),
        Err(KeylessError::BadBundle(_))
    ));
}

#[test]
fn certificates_not_for_code_signing_are_refused() {
    let signed = sign("leaf_nosign", b"payload", now());
    assert_eq!(
        pipeline().verify(&signed.layer()),
        Err(KeylessError::NotCodeSigning)
    );
}

#[test]
fn the_legacy_issuer_extension_and_email_identities_are_read() {
    let signed = sign("leaf_v1", b"payload", now());
    let keyless = gate(
        Matcher::Exact("release@hoist-test.example".into()),
        Matcher::Exact("https://accounts.google.com".into()),
        root("keyless/trusted_root.json"),
    );
    assert_eq!(
        keyless.verify(&signed.layer()),
        Ok("release@hoist-test.example".to_string())
    );
}

/// sigstore-rs's keyless cosign image signature of 2021 (tests/fixtures/cosign/real).
fn real_2021() -> Signed {
    Signed {
        payload: fixture("real/keyless-2021.payload.json").into_bytes(),
        signature: STANDARD
            .decode(fixture("real/keyless-2021.sig").trim())
            .unwrap(),
        certificate: fixture("real/keyless-2021.cert.pem"),
        chain: fixture("real/keyless-2021.chain.pem"),
        bundle: fixture("real/keyless-2021.bundle.json"),
    }
}

#[test]
fn a_real_keyless_cosign_signature_verifies_up_to_its_missing_issuer() {
    let signed = real_2021();
    let public_good = |identity: &str| {
        gate(
            Matcher::Exact(identity.to_string()),
            Matcher::pattern(".*").unwrap(),
            root("real/trusted_root.json"),
        )
    };
    // Signature, SET with Rekor's key, the entry, validity at log time, the
    // chain to Fulcio's 2021 CA and the identity all pass; 2021's Fulcio
    // wrote no issuer extension, and an issuer is required.
    assert_eq!(
        public_good("flavio@castelli.me").verify(&signed.layer()),
        Err(KeylessError::NoIssuer)
    );
    assert!(matches!(
        public_good("someone@example.com").verify(&signed.layer()),
        Err(KeylessError::WrongIdentity { .. })
    ));
    let layer = SignedLayer {
        payload: b"{}",
        ..signed.layer()
    };
    assert_eq!(
        public_good("flavio@castelli.me").verify(&layer),
        Err(KeylessError::BadSignature)
    );
    // Our synthetic trusted root knows neither Rekor nor Fulcio.
    let ours = pipeline();
    assert!(matches!(
        ours.verify(&signed.layer()),
        Err(KeylessError::UnknownLog(_))
    ));
}

#[test]
fn a_real_github_actions_certificate_its_log_entry_and_signature_verify_step_by_step() {
    let bundle: Value =
        serde_json::from_str(&fixture("real/kubewarden-controller-v1.34.0.sigstore.json")).unwrap();
    let material = &bundle["verificationMaterial"];
    let der = STANDARD
        .decode(material["certificate"]["rawBytes"].as_str().unwrap())
        .unwrap();
    let leaf = Certificate::from_der(&der).unwrap();
    let identity = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
    assert_eq!(identities(&leaf), vec![identity.to_string()]);
    assert_eq!(issuer(&leaf).as_deref(), Some(ISSUER));
    let public_good = root("real/trusted_root.json");
    let tlog = &material["tlogEntries"][0];
    let time: i64 = tlog["integratedTime"].as_str().unwrap().parse().unwrap();
    let leaf = Parsed {
        der: der.clone(),
        certificate: leaf,
    };
    assert_eq!(
        chains_to_root(leaf.clone(), &[], &public_good, time),
        Ok(())
    );
    assert_eq!(
        chains_to_root(leaf.clone(), &[], &root("keyless/trusted_root.json"), time),
        Err(KeylessError::UntrustedChain)
    );
    let (not_before, not_after) = validity(&leaf.certificate);
    assert!(not_before <= time && time <= not_after);
    let entry = LogEntry {
        body: tlog["canonicalizedBody"].as_str().unwrap().to_string(),
        integrated_time: time,
        log_index: tlog["logIndex"].as_str().unwrap().parse().unwrap(),
        log_id: hex(&STANDARD
            .decode(tlog["logId"]["keyId"].as_str().unwrap())
            .unwrap()),
        set: STANDARD
            .decode(
                tlog["inclusionPromise"]["signedEntryTimestamp"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap(),
    };
    assert_eq!(entry.verify(&public_good), Ok(()));
    let forged = LogEntry {
        integrated_time: time + 1,
        ..entry.clone()
    };
    assert_eq!(forged.verify(&public_good), Err(KeylessError::BadSet));
    // The DSSE signature, over the pre-authentication encoding, with the
    // certificate's key.
    let envelope = &bundle["dsseEnvelope"];
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let kind = envelope["payloadType"].as_str().unwrap();
    let mut pae = format!("DSSEv1 {} {kind} {} ", kind.len(), payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    let signature = STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let key = PublicKey::from_spki(
        "leaf",
        leaf.certificate.tbs_certificate().subject_public_key_info(),
    )
    .unwrap();
    assert!(key.verifies(&pae, &signature));
    assert!(!key.verifies(&payload, &signature));
}

#[test]
fn canonical_json_of_a_log_entry_is_what_rekor_signs() {
    let entry = LogEntry {
        body: "Ym9keQ==".into(),
        integrated_time: 1,
        log_index: 2,
        log_id: "ab".into(),
        set: Vec::new(),
    };
    assert_eq!(
        String::from_utf8(entry.signed_bytes()).unwrap(),
        r#"{"body":"Ym9keQ==","integratedTime":1,"logID":"ab","logIndex":2}"#
    );
}
