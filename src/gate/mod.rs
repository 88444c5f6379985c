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
use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

use crate::digest::Digest;
use crate::registry::{ReadOnly, RegistryError};

/// The layer annotation that carries a cosign signature.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Payloads larger than this are not read.
const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;
/// Signatures read per image, at most.
const MAX_SIGNATURES: usize = 32;
/// DER of a P-256 `SubjectPublicKeyInfo` up to its 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// What a rule requires of the images it promotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// Keys one of which must have signed the image.
    pub keys: Vec<PublicKey>,
    /// Annotations the signed payload must carry, with these values.
    pub annotations: BTreeMap<String, String>,
}

/// A cosign public key (ECDSA P-256, as `cosign generate-key-pair` makes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// How the rule names it (its path as written).
    pub name: String,
    /// The uncompressed point.
    point: Vec<u8>,
}

/// Why a key file is not a key hoist can verify with.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM has no `PUBLIC KEY` block, or its base64 is broken.
    #[error("not a PEM public key (-----BEGIN PUBLIC KEY-----)")]
    NotPem,
    /// Another algorithm or curve.
    #[error("not an ECDSA P-256 public key (cosign's default)")]
    NotP256,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (cosign's `cosign.pub`).
    pub fn from_pem(name: &str, pem: &str) -> Result<PublicKey, KeyError> {
        let body: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        if body.is_empty() {
            return Err(KeyError::NotPem);
        }
        let der = STANDARD.decode(body.trim()).map_err(|_| KeyError::NotPem)?;
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .filter(|point| point.len() == 65 && point[0] == 0x04)
            .ok_or(KeyError::NotP256)?;
        Ok(PublicKey {
            name: name.to_string(),
            point: point.to_vec(),
        })
    }

    /// Whether `signature` (ASN.1 DER) is this key's over `message`.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .is_ok()
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
    let tag = signature_tag(digest);
    if !tags.contains(&tag) {
        return Ok(Verdict::Refused(format!(
            "not signed: no `{tag}` in the source"
        )));
    }
    let manifest = store.manifest_get(repository, &tag)?;
    let signatures = signature_layers(&manifest.bytes);
    let mut best = Refusal::Unsigned;
    for (payload, signature) in signatures.iter().take(MAX_SIGNATURES) {
        let Some(signature) = STANDARD.decode(signature).ok() else {
            continue;
        };
        let bytes = read_payload(store, repository, payload)?;
        let Some(key) = gate.keys.iter().find(|k| k.verifies(&bytes, &signature)) else {
            best = best.max(Refusal::OtherKey);
            continue;
        };
        match judge_payload(&bytes, digest, &gate.annotations) {
            Ok(()) => {
                return Ok(Verdict::Verified {
                    key: key.name.clone(),
                });
            }
            Err(refusal) => best = best.max(refusal),
        }
    }
    Ok(Verdict::Refused(best.to_string()))
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

/// A signature layer: its payload descriptor and the base64 signature.
type SignatureLayer = (crate::manifest::Descriptor, String);

/// The layers of a `.sig` manifest that carry a signature.
fn signature_layers(manifest: &[u8]) -> Vec<SignatureLayer> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(manifest) else {
        return Vec::new();
    };
    let layers = value["layers"].as_array().cloned().unwrap_or_default();
    layers
        .into_iter()
        .filter_map(|layer| {
            let signature = layer["annotations"][SIGNATURE_ANNOTATION]
                .as_str()?
                .to_string();
            let descriptor = serde_json::from_value(layer).ok()?;
            Some((descriptor, signature))
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
    let mut bytes = Vec::new();
    store
        .blob_get(repository, &payload.digest, payload.size)?
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Protocol {
            registry: repository.to_string(),
            message: format!("reading the signed payload {}: {e}", payload.digest),
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;
