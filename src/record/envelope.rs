//! DSSE envelopes (<https://github.com/secure-systems-lab/dsse>) and the
//! Sigstore bundle (v0.3) that carries one, as cosign writes them for
//! `cosign attest --new-bundle-format` and reads them back with
//! `cosign verify-attestation --new-bundle-format`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::key::SigningKey;
use crate::gate::PublicKey;

/// The payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD: &str = "application/vnd.in-toto+json";
/// The media type of a Sigstore bundle, v0.3.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A signed envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The base64 payload.
    pub payload: String,
    /// What the payload is.
    pub payload_type: String,
    /// Signatures over the pre-authentication encoding.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The base64 signature.
    pub sig: String,
    /// Which key, when the signer names it.
    #[serde(default)]
    pub keyid: String,
}

/// DSSE's pre-authentication encoding of a payload: what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// `payload` of `payload_type`, signed by `key`.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
        let signature = key.sign(&pae(payload_type, payload));
        Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_string(),
            signatures: vec![EnvelopeSignature {
                sig: STANDARD.encode(signature),
                keyid: String::new(),
            }],
        }
    }

    /// The payload's bytes, when its base64 decodes.
    pub fn payload_bytes(&self) -> Option<Vec<u8>> {
        STANDARD.decode(&self.payload).ok()
    }

    /// The first of `keys` one of the signatures verifies against.
    pub fn signed_by<'k>(&self, keys: &'k [PublicKey]) -> Option<&'k PublicKey> {
        let payload = self.payload_bytes()?;
        let message = pae(&self.payload_type, &payload);
        keys.iter().find(|key| {
            self.signatures.iter().any(|s| {
                STANDARD
                    .decode(&s.sig)
                    .is_ok_and(|sig| key.verifies(&message, &sig))
            })
        })
    }
}

/// A Sigstore bundle holding a DSSE envelope signed by a key (no
/// certificate, no transparency-log entry: a private promoter's key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// [`BUNDLE_MEDIA_TYPE`].
    pub media_type: String,
    /// How to verify it: the key's hint.
    pub verification_material: VerificationMaterial,
    /// The envelope.
    pub dsse_envelope: Envelope,
}

/// What a verifier needs besides the envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// The key, by its hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<KeyHint>,
    /// Transparency-log entries (none: records are not logged publicly).
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
}

/// A key named by a hint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHint {
    /// Its hint.
    pub hint: String,
}

impl Bundle {
    /// An in-toto statement, signed by `key` into a bundle.
    pub fn of_statement(statement: &[u8], key: &SigningKey) -> Bundle {
        Bundle {
            media_type: BUNDLE_MEDIA_TYPE.to_string(),
            verification_material: VerificationMaterial {
                public_key: Some(KeyHint { hint: key.hint() }),
                tlog_entries: Vec::new(),
            },
            dsse_envelope: Envelope::sign(IN_TOTO_PAYLOAD, statement, key),
        }
    }
}
