//! Keyless signatures, verified offline: the signing key is in a short-lived
//! certificate (Fulcio) whose identity is the pipeline's, and the signature
//! was logged (Rekor) while the certificate was valid. cosign keeps both in
//! the signature layer's annotations: `dev.sigstore.cosign/certificate` (PEM),
//! `dev.sigstore.cosign/chain` (the issuing CA certificates, PEM) and
//! `dev.sigstore.cosign/bundle` (the log's signed entry timestamp, SET, over
//! the entry). A layer passes when, in this order:
//! 1. the signature verifies with the certificate's key;
//! 2. the SET verifies with the key of a log in the trusted root (at the
//!    entry's time) and the entry is this signature, payload and certificate;
//! 3. the certificate was valid at the entry's time;
//! 4. it chains to a certificate authority of the trusted root, each
//!    certificate valid at that time, the leaf for code signing;
//! 5. its subject alternative name is the identity and its Fulcio issuer
//!    extension the issuer the rule names.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;
use x509_cert::der::Decode as _;
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};

use super::keys::{Hash, PublicKey, pem_blocks};
use super::trusted_root::TrustedRoot;

/// Fulcio's issuer extension, v1: the issuer's URL as raw bytes.
const ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's issuer extension, v2: a DER UTF8String.
const ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Extended key usage: code signing.
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Certificates between the leaf and the trusted root, at most.
const MAX_CHAIN: usize = 4;

/// The keyless half of a gate: who must have signed, and what to trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyless {
    /// The certificate's subject alternative name (URI or email).
    pub identity: Matcher,
    /// The OIDC issuer that vouched for the identity.
    pub issuer: Matcher,
    /// Certificate authorities and transparency logs.
    pub root: Arc<TrustedRoot>,
}

/// A value to match: exactly, or by a regular expression that must match it
/// whole.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// This very string.
    Exact(String),
    /// The pattern as written, and compiled anchored at both ends.
    Pattern(String, regex_lite::Regex),
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        match (self, other) {
            (Matcher::Exact(a), Matcher::Exact(b))
            | (Matcher::Pattern(a, _), Matcher::Pattern(b, _)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A regular expression that must match a whole value.
    pub fn pattern(pattern: &str) -> Result<Matcher, regex_lite::Error> {
        let regex = regex_lite::Regex::new(&format!("^(?:{pattern})$"))?;
        Ok(Matcher::Pattern(pattern.to_string(), regex))
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(wanted) => wanted == value,
            Matcher::Pattern(_, regex) => regex.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "`{s}`"),
            Matcher::Pattern(p, _) => write!(f, "matching /{p}/"),
        }
    }
}

/// One signature layer's keyless material, from its annotations.
#[derive(Clone, Copy, Debug)]
pub struct SignedLayer<'a> {
    /// The signed bytes (the layer's blob).
    pub payload: &'a [u8],
    /// The signature over them.
    pub signature: &'a [u8],
    /// `dev.sigstore.cosign/certificate`.
    pub certificate: Option<&'a str>,
    /// `dev.sigstore.cosign/chain`.
    pub chain: Option<&'a str>,
    /// `dev.sigstore.cosign/bundle`.
    pub bundle: Option<&'a str>,
}

/// Why a keyless signature is not trusted; each says which step failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeylessError {
    /// No certificate annotation: a key-based signature.
    #[error("it has no certificate (a key-based signature, by no key this rule lists)")]
    NoCertificate,
    /// The certificate annotation is not a certificate.
    #[error("its certificate cannot be read ({0})")]
    BadCertificate(String),
    /// The signature is not the certificate key's.
    #[error("the signature does not verify with its certificate's key")]
    BadSignature,
    /// No transparency log entry to show when it was signed.
    #[error(
        "no transparency log bundle (dev.sigstore.cosign/bundle); hoist verifies offline and needs it"
    )]
    NoBundle,
    /// The bundle is not cosign's.
    #[error("its transparency log bundle cannot be read ({0})")]
    BadBundle(String),
    /// The entry is from a log the trusted root does not list.
    #[error("its log entry is from log {0}, which the trusted root does not list")]
    UnknownLog(String),
    /// The signed entry timestamp does not verify.
    #[error("the log's signed entry timestamp does not verify with the log's key")]
    BadSet,
    /// The log entry is about something else.
    #[error("the log entry is for another {0}")]
    EntryMismatch(&'static str),
    /// The log's key was not trusted at the entry's time.
    #[error("the log entry's time {0} is outside the log key's validity in the trusted root")]
    LogNotValid(i64),
    /// The certificate had expired, or was not yet valid, when logged.
    #[error(
        "the certificate was not valid at the log entry's time {time} (valid {not_before} to {not_after})"
    )]
    NotValidAtLogTime {
        /// The entry's integrated time (Unix seconds).
        time: i64,
        /// The certificate's notBefore.
        not_before: i64,
        /// The certificate's notAfter.
        not_after: i64,
    },
    /// Not issued for code signing.
    #[error("the certificate is not for code signing")]
    NotCodeSigning,
    /// No chain to a trusted certificate authority.
    #[error("its certificate does not chain to a certificate authority of the trusted root")]
    UntrustedChain,
    /// Another signer.
    #[error("the certificate's identity is {found}, not {wanted}")]
    WrongIdentity {
        /// The subject alternative names, quoted.
        found: String,
        /// The identity asked for.
        wanted: String,
    },
    /// The certificate does not say which issuer vouched for the identity.
    #[error("the certificate names no OIDC issuer (no Fulcio issuer extension)")]
    NoIssuer,
    /// Another issuer.
    #[error("the certificate's OIDC issuer is `{found}`, not {wanted}")]
    WrongIssuer {
        /// The issuer in the certificate.
        found: String,
        /// The issuer asked for.
        wanted: String,
    },
}

/// A log entry as cosign's bundle carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The entry, base64 of its canonical JSON.
    pub body: String,
    /// When it was logged (Unix seconds).
    pub integrated_time: i64,
    /// Its index in the log.
    pub log_index: i64,
    /// The log's id, hex.
    pub log_id: String,
    /// The log's signature over the four fields above.
    pub set: Vec<u8>,
}

impl LogEntry {
    /// Parses the `dev.sigstore.cosign/bundle` annotation.
    pub fn from_bundle(bundle: &str) -> Result<LogEntry, KeylessError> {
        let bad = |why: &str| KeylessError::BadBundle(why.to_string());
        let value: Value = serde_json::from_str(bundle).map_err(|e| bad(&e.to_string()))?;
        let payload = &value["Payload"];
        let set = value["SignedEntryTimestamp"]
            .as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .ok_or_else(|| bad("no base64 SignedEntryTimestamp"))?;
        Ok(LogEntry {
            body: payload["body"]
                .as_str()
                .ok_or_else(|| bad("no Payload.body"))?
                .to_string(),
            integrated_time: payload["integratedTime"]
                .as_i64()
                .ok_or_else(|| bad("no Payload.integratedTime"))?,
            log_index: payload["logIndex"]
                .as_i64()
                .ok_or_else(|| bad("no Payload.logIndex"))?,
            log_id: payload["logID"]
                .as_str()
                .ok_or_else(|| bad("no Payload.logID"))?
                .to_string(),
            set,
        })
    }

    /// A `hashedrekord` entry, as cosign logs it, of `signature` over
    /// `payload` by the key of `certificate` (PEM): what [`Self::records`]
    /// checks. Not signed by a log yet (`set` is empty): for fixtures.
    pub fn hashedrekord(
        payload: &[u8],
        signature: &[u8],
        certificate: &str,
        (integrated_time, log_index, log_id): (i64, i64, String),
    ) -> LogEntry {
        let body = serde_json::json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex(&Sha256::digest(payload))}},
                "signature": {
                    "content": STANDARD.encode(signature),
                    "publicKey": {"content": STANDARD.encode(certificate)},
                },
            },
        });
        LogEntry {
            body: STANDARD.encode(body.to_string()),
            integrated_time,
            log_index,
            log_id,
            set: Vec::new(),
        }
    }

    /// The `dev.sigstore.cosign/bundle` annotation carrying the entry:
    /// what [`Self::from_bundle`] reads.
    pub fn to_bundle(&self) -> String {
        serde_json::json!({
            "SignedEntryTimestamp": STANDARD.encode(&self.set),
            "Payload": {
                "body": self.body,
                "integratedTime": self.integrated_time,
                "logIndex": self.log_index,
                "logID": self.log_id,
            },
        })
        .to_string()
    }

    /// What the log signed: the canonical JSON (sorted keys, no spaces) of
    /// the entry's body, time, log id and index.
    pub fn signed_bytes(&self) -> Vec<u8> {
        serde_json::json!({
            "body": self.body,
            "integratedTime": self.integrated_time,
            "logID": self.log_id,
            "logIndex": self.log_index,
        })
        .to_string()
        .into_bytes()
    }

    /// Checks the SET with the trusted root's log of this id.
    pub fn verify(&self, root: &TrustedRoot) -> Result<(), KeylessError> {
        let log = root
            .logs
            .iter()
            .find(|log| hex(&log.id).eq_ignore_ascii_case(&self.log_id))
            .ok_or_else(|| KeylessError::UnknownLog(self.log_id.clone()))?;
        if !log.key.verifies(&self.signed_bytes(), &self.set) {
            return Err(KeylessError::BadSet);
        }
        if !log.valid.contains(self.integrated_time) {
            return Err(KeylessError::LogNotValid(self.integrated_time));
        }
        Ok(())
    }

    /// Checks that the entry records this payload, signature and certificate
    /// (a `hashedrekord` or `rekord` entry, as cosign writes).
    pub fn records(
        &self,
        payload: &[u8],
        signature: &[u8],
        certificate: &[u8],
    ) -> Result<(), KeylessError> {
        let body = STANDARD
            .decode(&self.body)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .ok_or_else(|| KeylessError::BadBundle("its body is not base64 JSON".to_string()))?;
        let spec = &body["spec"];
        let hash = spec["data"]["hash"]["value"].as_str();
        let content = spec["data"]["content"]
            .as_str()
            .and_then(|c| STANDARD.decode(c).ok());
        let payload_logged = match (hash, content) {
            (Some(hash), _) => hash.eq_ignore_ascii_case(&hex(&Sha256::digest(payload))),
            (None, Some(content)) => content == payload,
            (None, None) => false,
        };
        if !payload_logged {
            return Err(KeylessError::EntryMismatch("payload"));
        }
        let decoded = |v: &Value| v.as_str().and_then(|s| STANDARD.decode(s).ok());
        if decoded(&spec["signature"]["content"]).as_deref() != Some(signature) {
            return Err(KeylessError::EntryMismatch("signature"));
        }
        let logged = decoded(&spec["signature"]["publicKey"]["content"])
            .and_then(|pem| String::from_utf8(pem).ok())
            .map(|pem| pem_blocks(&pem, "CERTIFICATE"));
        if logged.as_ref().and_then(|c| c.first()).map(Vec::as_slice) != Some(certificate) {
            return Err(KeylessError::EntryMismatch("certificate"));
        }
        Ok(())
    }
}

impl Keyless {
    /// Verifies one layer; the certificate's identity when it passes.
    pub fn verify(&self, layer: &SignedLayer<'_>) -> Result<String, KeylessError> {
        let pem = layer.certificate.ok_or(KeylessError::NoCertificate)?;
        let der = pem_blocks(pem, "CERTIFICATE")
            .into_iter()
            .next()
            .ok_or_else(|| KeylessError::BadCertificate("no PEM CERTIFICATE".to_string()))?;
        let leaf =
            Certificate::from_der(&der).map_err(|e| KeylessError::BadCertificate(e.to_string()))?;
        let key = PublicKey::from_spki(
            "certificate",
            leaf.tbs_certificate().subject_public_key_info(),
        )
        .map_err(|e| KeylessError::BadCertificate(e.to_string()))?;
        if !key.verifies(layer.payload, layer.signature) {
            return Err(KeylessError::BadSignature);
        }
        let entry = LogEntry::from_bundle(layer.bundle.ok_or(KeylessError::NoBundle)?)?;
        entry.verify(&self.root)?;
        entry.records(layer.payload, layer.signature, &der)?;
        let time = entry.integrated_time;
        let (not_before, not_after) = validity(&leaf);
        if !(not_before <= time && time <= not_after) {
            return Err(KeylessError::NotValidAtLogTime {
                time,
                not_before,
                not_after,
            });
        }
        let code_signing = leaf
            .tbs_certificate()
            .get_extension::<ExtendedKeyUsage>()
            .ok()
            .flatten()
            .is_some_and(|(_, usage)| usage.0.contains(&CODE_SIGNING));
        if !code_signing {
            return Err(KeylessError::NotCodeSigning);
        }
        let chain: Vec<Parsed> = layer
            .chain
            .map(|pem| pem_blocks(pem, "CERTIFICATE"))
            .unwrap_or_default()
            .iter()
            .filter_map(|der| Parsed::read(der))
            .collect();
        let parsed = Parsed {
            der: der.clone(),
            certificate: leaf.clone(),
        };
        chains_to_root(parsed, &chain, &self.root, time)?;
        let identities = identities(&leaf);
        let Some(identity) = identities.iter().find(|i| self.identity.matches(i)) else {
            return Err(KeylessError::WrongIdentity {
                found: if identities.is_empty() {
                    "missing".to_string()
                } else {
                    identities
                        .iter()
                        .map(|i| format!("`{i}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                wanted: self.identity.to_string(),
            });
        };
        let issuer = issuer(&leaf).ok_or(KeylessError::NoIssuer)?;
        if !self.issuer.matches(&issuer) {
            return Err(KeylessError::WrongIssuer {
                found: issuer,
                wanted: self.issuer.to_string(),
            });
        }
        Ok(identity.clone())
    }
}

/// The subject alternative names a Fulcio certificate carries the signer's
/// identity in: URIs (workflows) and emails.
pub fn identities(certificate: &Certificate) -> Vec<String> {
    let Ok(Some((_, names))) = certificate
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
    else {
        return Vec::new();
    };
    names
        .0
        .iter()
        .filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            GeneralName::Rfc822Name(email) => Some(email.to_string()),
            _ => None,
        })
        .collect()
}

/// The OIDC issuer in Fulcio's extension (v2 DER UTF8String, else v1 raw).
pub fn issuer(certificate: &Certificate) -> Option<String> {
    let extensions = certificate.tbs_certificate().extensions()?;
    let value = |oid| {
        extensions
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    };
    if let Some(v2) = value(ISSUER_V2).and_then(|der| Utf8StringRef::from_der(der).ok()) {
        return Some(v2.as_str().to_string());
    }
    value(ISSUER_V1).and_then(|raw| String::from_utf8(raw.to_vec()).ok())
}

/// notBefore and notAfter, Unix seconds.
fn validity(certificate: &Certificate) -> (i64, i64) {
    let validity = certificate.tbs_certificate().validity();
    let seconds = |t: x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    (seconds(validity.not_before), seconds(validity.not_after))
}

/// Whether `certificate` was valid at `time`.
fn valid_at(certificate: &Certificate, time: i64) -> bool {
    let (not_before, not_after) = validity(certificate);
    not_before <= time && time <= not_after
}

/// A certificate and the DER it was read from (what its issuer signed).
#[derive(Clone)]
struct Parsed {
    der: Vec<u8>,
    certificate: Certificate,
}

impl Parsed {
    fn read(der: &[u8]) -> Option<Parsed> {
        Some(Parsed {
            der: der.to_vec(),
            certificate: Certificate::from_der(der).ok()?,
        })
    }
}

/// Walks from `leaf` up through `chain` to a certificate of a certificate
/// authority the root trusts at `time`; each link's signature, names and
/// validity checked.
fn chains_to_root(
    leaf: Parsed,
    chain: &[Parsed],
    root: &TrustedRoot,
    time: i64,
) -> Result<(), KeylessError> {
    let trusted: Vec<Parsed> = root
        .authorities
        .iter()
        .filter(|authority| authority.valid.contains(time))
        .flat_map(|authority| authority.certificates.iter())
        .filter_map(|der| Parsed::read(der))
        .filter(|anchor| valid_at(&anchor.certificate, time))
        .collect();
    let mut current = leaf;
    for _ in 0..=MAX_CHAIN {
        if trusted
            .iter()
            .any(|anchor| issued(&current, &anchor.certificate))
        {
            return Ok(());
        }
        let Some(next) = chain.iter().find(|ca| {
            is_ca(&ca.certificate)
                && valid_at(&ca.certificate, time)
                && issued(&current, &ca.certificate)
        }) else {
            break;
        };
        current = next.clone();
    }
    Err(KeylessError::UntrustedChain)
}

/// Whether `issuer` issued `certificate`: names match and its key verifies
/// the certificate's signature over its `tbsCertificate` as read.
fn issued(certificate: &Parsed, issuer: &Certificate) -> bool {
    let subject = &certificate.certificate;
    if subject.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return false;
    }
    let Ok(key) =
        PublicKey::from_spki("issuer", issuer.tbs_certificate().subject_public_key_info())
    else {
        return false;
    };
    let (Some(hash), Some(tbs), Some(signature)) = (
        signature_hash(&subject.signature_algorithm().oid),
        first_element(&certificate.der),
        subject.signature().as_bytes(),
    ) else {
        return false;
    };
    key.verifies_with(hash, tbs, signature)
}

/// Whether a certificate may issue others.
fn is_ca(certificate: &Certificate) -> bool {
    certificate
        .tbs_certificate()
        .get_extension::<BasicConstraints>()
        .ok()
        .flatten()
        .is_some_and(|(_, constraints)| constraints.ca)
}

/// The hash a certificate signature algorithm names.
fn signature_hash(algorithm: &ObjectIdentifier) -> Option<Hash> {
    match algorithm.to_string().as_str() {
        "1.2.840.10045.4.3.2" | "1.2.840.113549.1.1.11" => Some(Hash::Sha256),
        "1.2.840.10045.4.3.3" | "1.2.840.113549.1.1.12" => Some(Hash::Sha384),
        "1.2.840.10045.4.3.4" | "1.2.840.113549.1.1.13" => Some(Hash::Sha512),
        // Ed25519 hashes inside the algorithm.
        "1.3.101.112" => Some(Hash::Sha512),
        _ => None,
    }
}

/// The first element (with its header) inside a DER SEQUENCE: a
/// certificate's `tbsCertificate`, as signed.
fn first_element(der: &[u8]) -> Option<&[u8]> {
    let (header, _) = der_header(der)?;
    let inner = der.get(header..)?;
    let (header, length) = der_header(inner)?;
    inner.get(..header.checked_add(length)?)
}

/// A DER element's header length and content length.
fn der_header(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 {
        return None;
    }
    let length = der
        .get(2..2 + count)?
        .iter()
        .fold(0usize, |n, b| (n << 8) | usize::from(*b));
    Some((2 + count, length))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "keyless_tests.rs"]
mod tests;
