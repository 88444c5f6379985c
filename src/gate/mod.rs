//! Promotion gates (`require_signature`): an image passes when one of its
//! cosign signatures verifies against one of the rule's public keys, names
//! the image's digest, and carries the annotations the rule asks for.
//!
//! cosign's format: the manifest tagged `sha256-<hex>.sig` beside the image
//! has one layer per signature, a simple-signing payload whose
//! `dev.cosignproject.cosign/signature` annotation is the base64 ECDSA
//! (ASN.1) signature of the payload's bytes; the payload's
//! `critical.image.docker-manifest-digest` names the signed image and its
//! `optional` section carries the signer's annotations.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::digest::Digest;
use crate::registry::{ReadOnly, RegistryError};

pub mod attestation;
pub mod keyless;
pub mod keys;
pub mod trusted_root;

pub use keyless::{Keyless, KeylessError, Matcher};
pub use keys::{KeyError, PublicKey};
pub use trusted_root::TrustedRoot;

/// The layer annotation that carries a cosign signature.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotations of a keyless signature.
const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// Payloads larger than this are not read.
const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;
/// Signatures read per image, at most.
const MAX_SIGNATURES: usize = 32;
/// The setting of a gate that refused an image.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GateSetting {
    /// `require_signature`.
    #[default]
    RequireSignature,
    /// `require_attestation`.
    RequireAttestation,
}

impl GateSetting {
    /// `require_signature`.
    pub fn is_signature(&self) -> bool {
        *self == GateSetting::RequireSignature
    }
}

/// What a rule requires of the images it promotes.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    /// Keys one of which must have signed the image.
    pub keys: Vec<PublicKey>,
    /// Or a keyless signature: the identity, issuer and trusted root.
    pub keyless: Option<Keyless>,
    /// Annotations the signed payload must carry, with these values.
    pub annotations: BTreeMap<String, String>,
    /// Attestations it must carry (`require_attestation`), each checked.
    pub attestations: Vec<attestation::Requirement>,
}

impl Gate {
    /// Whether it asks for a signature (keys or a keyless signer), not
    /// only for attestations.
    pub fn wants_signature(&self) -> bool {
        !self.keys.is_empty() || self.keyless.is_some()
    }
}

/// Whether an image passed a gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A signature by this key verifies, for this image, with the annotations.
    Verified {
        /// The key, as the rule names it.
        key: String,
    },
    /// Why not, as the plan says it.
    Refused(String),
    /// Signed as asked (or no signature asked for), but an attestation
    /// requirement fails: which, and why.
    AttestationRefused(String),
}

/// The cosign signature tag of `digest`: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}.sig", digest.to_string().replacen(':', "-", 1))
}

/// Checks image `digest` of `repository` against `gate`; `tags` are the
/// repository's tags (where the signature tag is looked for).
pub fn check(
    store: &ReadOnly,
    repository: &str,
    digest: &Digest,
    tags: &[String],
    gate: &Gate,
) -> Result<Verdict, RegistryError> {
    let mut by = Vec::new();
    if gate.wants_signature() {
        match check_signature(store, repository, digest, tags, gate)? {
            Verdict::Verified { key } => by.push(key),
            refused => return Ok(refused),
        }
    }
    if !gate.attestations.is_empty() {
        match attestation::check(store, repository, digest, tags, &gate.attestations)? {
            Ok(passed) => by.extend(passed.into_iter().map(|p| format!("attestation {p}"))),
            Err(reason) => return Ok(Verdict::AttestationRefused(reason)),
        }
    }
    Ok(Verdict::Verified { key: by.join("; ") })
}

/// The signature part of [`check`].
fn check_signature(
    store: &ReadOnly,
    repository: &str,
    digest: &Digest,
    tags: &[String],
    gate: &Gate,
) -> Result<Verdict, RegistryError> {
    let manifests = signature_manifests(store, repository, digest, tags)?;
    if manifests.is_empty() {
        return Ok(Verdict::Refused(format!(
            "not signed: no `{}` beside it, and no signature among its referrers",
            signature_tag(digest)
        )));
    }
    let signatures: Vec<SignatureLayer> = manifests
        .iter()
        .flat_map(|manifest| signature_layers(&manifest.bytes))
        .collect();
    let mut best = Refusal::Unsigned;
    for layer in signatures.iter().take(MAX_SIGNATURES) {
        let Some(signature) = STANDARD.decode(&layer.signature).ok() else {
            continue;
        };
        let bytes = read_payload(store, repository, &layer.payload)?;
        let signer = match trusted_signer(gate, layer, &bytes, &signature) {
            Ok(signer) => signer,
            Err(refusal) => {
                best = best.max(refusal);
                continue;
            }
        };
        match judge_payload(&bytes, digest, &gate.annotations) {
            Ok(()) => return Ok(Verdict::Verified { key: signer }),
            Err(refusal) => best = best.max(refusal),
        }
    }
    Ok(Verdict::Refused(best.to_string()))
}

/// The manifests that may hold the signatures of image `digest`: cosign's
/// `.sig` tag beside it (when `tags` has it), and its OCI 1.1 referrers
/// (`cosign sign --registry-referrers-mode=oci-1-1`) where the store lists
/// them; an index among the referrers is not a signature.
fn signature_manifests(
    store: &ReadOnly,
    repository: &str,
    digest: &Digest,
    tags: &[String],
) -> Result<Vec<crate::manifest::Manifest>, RegistryError> {
    let mut manifests = Vec::new();
    let tag = signature_tag(digest);
    if tags.contains(&tag) {
        manifests.push(store.manifest_get(repository, &tag)?);
    }
    let referrers = store.referrers(repository, digest)?.unwrap_or_default();
    for referrer in referrers
        .iter()
        .filter(|r| !crate::manifest::is_index(&r.media_type))
        .take(MAX_SIGNATURES)
    {
        manifests.push(store.manifest_get(repository, &referrer.digest.to_string())?);
    }
    Ok(manifests)
}

/// Why the best signature of an image failed, most specific last.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
enum Refusal {
    /// No layer carries a signature.
    #[error("not signed: its `.sig` manifest holds no cosign signature")]
    Unsigned,
    /// Signed, by keys the rule does not trust.
    #[error("signed, but not by any key in require_signature.keys")]
    OtherKey,
    /// A keyless signature (or one the keyless check saw) not trusted, and why.
    #[error("signed, but {0}")]
    Untrusted(String),
    /// A trusted signature over a payload that is not JSON.
    #[error("signed by a trusted key, but the payload is not a cosign simple-signing payload")]
    BadPayload,
    /// A trusted signature for another image.
    #[error("signed by a trusted key, but the payload names another image ({0})")]
    OtherDigest(String),
    /// A trusted signature without the annotations asked for.
    #[error("signed by a trusted key, but annotation `{key}` is {found}, not `{wanted}`")]
    Annotation {
        /// The annotation.
        key: String,
        /// Its value in the payload, quoted, or `missing`.
        found: String,
        /// The value asked for.
        wanted: String,
    },
}

/// Whether a verified payload names `digest` and carries `annotations`.
fn judge_payload(
    bytes: &[u8],
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    let payload: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| Refusal::BadPayload)?;
    let named = payload["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .ok_or(Refusal::BadPayload)?;
    if named != digest.to_string() {
        return Err(Refusal::OtherDigest(named.to_string()));
    }
    for (key, wanted) in annotations {
        let found = &payload["optional"][key];
        if found.as_str() != Some(wanted.as_str()) {
            return Err(Refusal::Annotation {
                key: key.clone(),
                found: match found {
                    serde_json::Value::Null => "missing".to_string(),
                    other => format!("`{}`", other.as_str().unwrap_or(&other.to_string())),
                },
                wanted: wanted.clone(),
            });
        }
    }
    Ok(())
}

/// Who signed a layer, as the verdict names them: a rule's key, or the
/// identity of a keyless certificate; otherwise why the signature is not
/// trusted.
fn trusted_signer(
    gate: &Gate,
    layer: &SignatureLayer,
    payload: &[u8],
    signature: &[u8],
) -> Result<String, Refusal> {
    if let Some(key) = gate.keys.iter().find(|k| k.verifies(payload, signature)) {
        return Ok(key.name.clone());
    }
    let Some(keyless) = &gate.keyless else {
        return Err(Refusal::OtherKey);
    };
    let annotation = |name: &str| layer.annotations.get(name).map(String::as_str);
    keyless
        .verify(&keyless::SignedLayer {
            payload,
            signature,
            certificate: annotation(CERTIFICATE_ANNOTATION),
            chain: annotation(CHAIN_ANNOTATION),
            bundle: annotation(BUNDLE_ANNOTATION),
        })
        .map(|identity| format!("keyless: {identity}"))
        .map_err(|why| Refusal::Untrusted(why.to_string()))
}

/// A signature layer: its payload descriptor, the base64 signature and the
/// layer's annotations (where a keyless signature keeps its certificate).
struct SignatureLayer {
    payload: crate::manifest::Descriptor,
    signature: String,
    annotations: BTreeMap<String, String>,
}

/// The layers of a `.sig` manifest that carry a signature.
fn signature_layers(manifest: &[u8]) -> Vec<SignatureLayer> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(manifest) else {
        return Vec::new();
    };
    let layers = value["layers"].as_array().cloned().unwrap_or_default();
    layers
        .into_iter()
        .filter_map(|layer| {
            let annotations: BTreeMap<String, String> =
                serde_json::from_value(layer["annotations"].clone()).ok()?;
            let signature = annotations.get(SIGNATURE_ANNOTATION)?.clone();
            let payload = serde_json::from_value(layer).ok()?;
            Some(SignatureLayer {
                payload,
                signature,
                annotations,
            })
        })
        .collect()
}

/// A payload's bytes (digest-checked by the store), when small enough.
fn read_payload(
    store: &ReadOnly,
    repository: &str,
    payload: &crate::manifest::Descriptor,
) -> Result<Vec<u8>, RegistryError> {
    if payload.size > MAX_PAYLOAD_BYTES {
        return Ok(Vec::new());
    }
    store.blob_bytes(
        repository,
        &payload.digest,
        payload.size,
        "the signed payload",
    )
}

#[cfg(test)]
mod tests;
