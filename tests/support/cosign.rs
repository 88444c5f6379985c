//! Signs images the way cosign does with a key pair (`cosign sign --key`):
//! a simple-signing payload naming the image's digest, signed with ECDSA
//! P-256 over SHA-256, base64 of the ASN.1 signature in the layer annotation
//! `dev.cosignproject.cosign/signature`, one layer per signature in the
//! manifest tagged `sha256-<hex>.sig` beside the image. Signing again adds a
//! layer, so the tag moves to a new manifest, as a re-sign with cosign does.
//! Keys: tests/fixtures/cosign (made with openssl, see its README).

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hoist::digest::Digest;
use hoist::gate::TrustedRoot;
use hoist::gate::keyless::{LogEntry, hex};
use hoist::manifest::Manifest;
use hoist::registry::Registry;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use super::artifacts::put_blob;

/// The simple-signing payload's media type.
pub const PAYLOAD_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that carries the signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// A cosign key pair from tests/fixtures/cosign.
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// Where its public key is (for `require_signature`).
    pub public_key: PathBuf,
}

impl Signer {
    /// The key pair `name` (`ci`, `other`).
    pub fn load(name: &str) -> Signer {
        let dir = fixtures();
        let pem = std::fs::read_to_string(dir.join(format!("{name}.key.pem"))).expect("test key");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).expect("PEM body");
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng)
            .expect("P-256 PKCS#8 key");
        Signer {
            key,
            rng,
            public_key: dir.join(format!("{name}.pub")),
        }
    }

    /// Signs `subject` (in `repository` of `store`, named `reference` in the
    /// payload) with `annotations` in the payload's `optional` section: adds
    /// a signature layer to its `.sig` manifest. Returns the new manifest.
    pub fn sign(
        &self,
        store: &dyn Registry,
        repository: &str,
        subject: &Digest,
        reference: &str,
        annotations: &[(&str, &str)],
    ) -> Manifest {
        let payload = simple_signing_payload(subject, reference, annotations);
        self.sign_payload(store, repository, subject, &payload)
    }

    /// Adds a layer with this exact payload, signed, to `subject`'s `.sig`
    /// manifest (a payload for another digest makes a misattributed signature).
    pub fn sign_payload(
        &self,
        store: &dyn Registry,
        repository: &str,
        subject: &Digest,
        payload: &[u8],
    ) -> Manifest {
        let tag = signature_tag(subject);
        let mut layers = existing_layers(store, repository, &tag);
        layers.push(self.signed_layer(store, repository, payload));
        let manifest = signature_manifest(store, repository, layers);
        store
            .manifest_put(repository, &tag, &manifest)
            .expect("push the signature manifest");
        manifest
    }

    /// The layer cosign writes for one signature: `payload` pushed as a
    /// blob, its ECDSA signature in the layer's annotation. The same layer
    /// goes into a `.sig` manifest and into an OCI 1.1 signature referrer
    /// (`cosign sign --registry-referrers-mode=oci-1-1`).
    pub fn signed_layer(&self, store: &dyn Registry, repository: &str, payload: &[u8]) -> Value {
        let signature = self.key.sign(&self.rng, payload).expect("ECDSA signature");
        let layer = put_blob(store, repository, payload);
        json!({
            "mediaType": PAYLOAD_TYPE,
            "size": payload.len(),
            "digest": layer.to_string(),
            "annotations": { SIGNATURE_ANNOTATION: STANDARD.encode(signature.as_ref()) },
        })
    }
}

impl Signer {
    /// Attests `statement` (an in-toto statement) about `subject` as
    /// `cosign attest` does: a DSSE envelope signed over its
    /// pre-authentication encoding, one layer of the `sha256-<hex>.att`
    /// manifest, annotated with the predicate type.
    pub fn attest(
        &self,
        store: &dyn Registry,
        repository: &str,
        subject: &Digest,
        statement: &Value,
    ) {
        let payload = statement.to_string().into_bytes();
        let kind = "application/vnd.in-toto+json";
        let mut pae = format!("DSSEv1 {} {kind} {} ", kind.len(), payload.len()).into_bytes();
        pae.extend_from_slice(&payload);
        let signature = self.key.sign(&self.rng, &pae).expect("ECDSA signature");
        let envelope = json!({
            "payloadType": kind,
            "payload": STANDARD.encode(&payload),
            "signatures": [{ "keyid": "", "sig": STANDARD.encode(signature.as_ref()) }],
        })
        .to_string()
        .into_bytes();
        let kind = statement["predicateType"].as_str().unwrap_or_default();
        attach_attestation(store, repository, subject, &envelope, kind);
    }
}

/// Adds a DSSE envelope (made here or elsewhere: tests/fixtures/attestations)
/// to `subject`'s `sha256-<hex>.att` manifest, as `cosign attest` does.
pub fn attach_attestation(
    store: &dyn Registry,
    repository: &str,
    subject: &Digest,
    envelope: &[u8],
    predicate_type: &str,
) {
    let layer = put_blob(store, repository, envelope);
    let tag = format!("{}.att", subject.to_string().replacen(':', "-", 1));
    let mut layers = existing_layers(store, repository, &tag);
    layers.push(json!({
        "mediaType": "application/vnd.dsse.envelope.v1+json",
        "size": envelope.len(),
        "digest": layer.to_string(),
        "annotations": { "predicateType": predicate_type },
    }));
    let manifest = signature_manifest(store, repository, layers);
    store
        .manifest_put(repository, &tag, &manifest)
        .expect("push the attestation manifest");
}

/// An in-toto statement v1 about `subject` with `predicate` of `kind`.
pub fn statement(subject: &Digest, kind: &str, predicate: Value) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "image", "digest": { subject.algorithm(): subject.hex() } }],
        "predicateType": kind,
        "predicate": predicate,
    })
}

/// cosign's tag for the signatures of `subject`: `sha256-<hex>.sig`.
pub fn signature_tag(subject: &Digest) -> String {
    format!("{}.sig", subject.to_string().replacen(':', "-", 1))
}

/// The payload cosign signs: the image's digest and name, and the user's
/// annotations under `optional`.
pub fn simple_signing_payload(
    subject: &Digest,
    reference: &str,
    annotations: &[(&str, &str)],
) -> Vec<u8> {
    let optional: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let mut payload = json!({
        "critical": {
            "identity": { "docker-reference": reference },
            "image": { "docker-manifest-digest": subject.to_string() },
            "type": "cosign container image signature",
        },
        "optional": Value::Null,
    });
    if !optional.is_empty() {
        payload["optional"] = Value::Object(optional);
    }
    payload.to_string().into_bytes()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cosign")
}

/// The signature layers already in `tag`'s manifest, if it exists.
fn existing_layers(store: &dyn Registry, repository: &str, tag: &str) -> Vec<Value> {
    if store
        .manifest_head(repository, tag)
        .expect("HEAD the signature tag")
        .is_none()
    {
        return Vec::new();
    }
    let manifest = store
        .manifest_get(repository, tag)
        .expect("signature manifest");
    let value: Value = serde_json::from_slice(&manifest.bytes).expect("manifest JSON");
    value["layers"].as_array().cloned().unwrap_or_default()
}

/// The manifest holding `layers`, with the config cosign writes for them.
fn signature_manifest(store: &dyn Registry, repository: &str, layers: Vec<Value>) -> Manifest {
    let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": diff_ids.iter().map(|_| json!({"created": "0001-01-01T00:00:00Z"})).collect::<Vec<_>>(),
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    })
    .to_string()
    .into_bytes();
    let config_digest = put_blob(store, repository, &config);
    let body = json!({
        "schemaVersion": 2,
        "mediaType": hoist::manifest::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": config_digest.to_string(),
        },
        "layers": layers,
    })
    .to_string()
    .into_bytes();
    Manifest {
        digest: Digest::sha256_of(&body),
        bytes: body,
        media_type: hoist::manifest::OCI_MANIFEST.to_string(),
    }
}

/// Adds a layer carrying `payload` with exactly these annotations (a
/// signature made elsewhere: tests/fixtures/cosign/real) to `subject`'s
/// `.sig` manifest.
pub fn attach(
    store: &dyn Registry,
    repository: &str,
    subject: &Digest,
    payload: &[u8],
    annotations: &[(&str, String)],
) {
    let layer = put_blob(store, repository, payload);
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v.clone())))
        .collect();
    let tag = signature_tag(subject);
    let mut layers = existing_layers(store, repository, &tag);
    layers.push(json!({
        "mediaType": PAYLOAD_TYPE,
        "size": payload.len(),
        "digest": layer.to_string(),
        "annotations": annotations,
    }));
    let manifest = signature_manifest(store, repository, layers);
    store
        .manifest_put(repository, &tag, &manifest)
        .expect("push the signature manifest");
}

/// A keyless signer as GitHub Actions with cosign would be, made from the
/// synthetic CA and log of tests/fixtures/cosign/keyless: the leaf
/// certificate's key signs, the log key writes the signed entry timestamp.
pub struct KeylessSigner {
    leaf: EcdsaKeyPair,
    log: EcdsaKeyPair,
    certificate: String,
    chain: String,
    rng: SystemRandom,
}

impl KeylessSigner {
    /// The leaf `name` (`leaf`: the release workflow's identity; `leaf_v1`:
    /// an email identity from Google's issuer).
    pub fn load(name: &str) -> KeylessSigner {
        let dir = fixtures().join("keyless");
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).expect("keyless fixture");
        let rng = SystemRandom::new();
        let pair = |file: &str| {
            let pem = read(file);
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = STANDARD.decode(body).expect("PEM body");
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng).expect("P-256")
        };
        KeylessSigner {
            leaf: pair(&format!("{name}.key.pem")),
            log: pair("log.key.pem"),
            certificate: read(&format!("{name}.pem")),
            chain: read("intermediate.pem") + &read("root.pem"),
            rng,
        }
    }

    /// The trusted root that trusts this CA and log.
    pub fn trusted_root() -> PathBuf {
        fixtures().join("keyless/trusted_root.json")
    }

    /// Signs `subject` keylessly (payload naming it as `reference`, logged
    /// now): adds the layer cosign writes, certificate, chain and bundle in
    /// its annotations.
    pub fn sign(&self, store: &dyn Registry, repository: &str, subject: &Digest, reference: &str) {
        let payload = simple_signing_payload(subject, reference, &[]);
        let signature = self.leaf.sign(&self.rng, &payload).expect("ECDSA");
        let root = std::fs::read_to_string(Self::trusted_root()).expect("trusted root");
        let root = TrustedRoot::from_json("keyless", &root).expect("trusted root");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        let logged = (
            i64::try_from(now.as_secs()).expect("time"),
            1,
            hex(&root.logs[0].id),
        );
        let mut entry =
            LogEntry::hashedrekord(&payload, signature.as_ref(), &self.certificate, logged);
        entry.set = self
            .log
            .sign(&self.rng, &entry.signed_bytes())
            .expect("ECDSA")
            .as_ref()
            .to_vec();
        attach(
            store,
            repository,
            subject,
            &payload,
            &[
                (SIGNATURE_ANNOTATION, STANDARD.encode(signature.as_ref())),
                ("dev.sigstore.cosign/certificate", self.certificate.clone()),
                ("dev.sigstore.cosign/chain", self.chain.clone()),
                ("dev.sigstore.cosign/bundle", entry.to_bundle()),
            ],
        );
    }
}

/// A signature by a real signer, from tests/fixtures/cosign/real: `name`'s
/// payload bytes and the annotations cosign stored with it.
pub fn real_signature(name: &str) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let dir = fixtures().join("real");
    let read = |suffix: &str| std::fs::read_to_string(dir.join(format!("{name}.{suffix}")));
    let payload = read("payload.json").expect("real payload").into_bytes();
    let mut annotations = vec![(
        SIGNATURE_ANNOTATION,
        read("sig").expect("real signature").trim().to_string(),
    )];
    for (annotation, suffix) in [
        ("dev.sigstore.cosign/certificate", "cert.pem"),
        ("dev.sigstore.cosign/chain", "chain.pem"),
        ("dev.sigstore.cosign/bundle", "bundle.json"),
    ] {
        if let Ok(value) = read(suffix) {
            annotations.push((annotation, value));
        }
    }
    (payload, annotations)
}

/// A file of tests/fixtures/cosign.
pub fn fixture(path: &str) -> PathBuf {
    fixtures().join(path)
}
