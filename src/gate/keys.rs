//! Public keys hoist verifies signatures with: cosign key files (PEM
//! `PUBLIC KEY`, a DER `SubjectPublicKeyInfo`) and the keys inside
//! certificates and the trusted root. ECDSA P-256 and P-384, Ed25519 and RSA,
//! all verified by `ring`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::der::Decode as _;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A public key hoist can verify with (`name`: how the rule or the
/// certificate names it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// How the rule names it (its path), or what it belongs to.
    pub name: String,
    kind: KeyKind,
}

/// The algorithm of a key and the bytes `ring` takes for it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyKind {
    /// An uncompressed P-256 point.
    P256(Vec<u8>),
    /// An uncompressed P-384 point.
    P384(Vec<u8>),
    /// The 32-byte Ed25519 key.
    Ed25519(Vec<u8>),
    /// The PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
}

/// The digest a signature was made over (ECDSA and RSA); Ed25519 has its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256: cosign's signatures, Rekor's timestamps, most certificates.
    Sha256,
    /// SHA-384: certificates signed by a P-384 CA (Fulcio's).
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Why a key file is not a key hoist can verify with.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM has no `PUBLIC KEY` block, or its base64 is broken.
    #[error("not a PEM public key (-----BEGIN PUBLIC KEY-----)")]
    NotPem,
    /// The DER is not a `SubjectPublicKeyInfo`.
    #[error("not a DER SubjectPublicKeyInfo")]
    NotSpki,
    /// An algorithm or curve hoist does not verify.
    #[error(
        "unsupported key algorithm {0} (hoist verifies ECDSA P-256 and P-384, Ed25519 and RSA)"
    )]
    Unsupported(String),
    /// The key file could not be read.
    #[error("{0}")]
    Read(std::io::Error),
}

impl PublicKey {
    /// Reads the key file at `path` (named by it): what is wrong, if it
    /// cannot be read or is no key hoist verifies with.
    pub fn read(path: &str) -> Result<PublicKey, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(KeyError::Read)?;
        PublicKey::from_pem(path, &pem)
    }

    /// Reads a PEM `PUBLIC KEY` (cosign's `cosign.pub`, `openssl pkey -pubout`).
    pub fn from_pem(name: &str, pem: &str) -> Result<PublicKey, KeyError> {
        let der = pem_blocks(pem, "PUBLIC KEY")
            .into_iter()
            .next()
            .ok_or(KeyError::NotPem)?;
        PublicKey::from_spki_der(name, &der)
    }

    /// Reads a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(name: &str, der: &[u8]) -> Result<PublicKey, KeyError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der).map_err(|_| KeyError::NotSpki)?;
        PublicKey::from_spki(name, &spki)
    }

    /// The key of a parsed `SubjectPublicKeyInfo`.
    pub fn from_spki(name: &str, spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKey, KeyError> {
        let bits = spki.subject_public_key.raw_bytes().to_vec();
        let algorithm = spki.algorithm.oid;
        let kind = if algorithm == EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(c) if c == P256 && bits.len() == 65 && bits[0] == 4 => KeyKind::P256(bits),
                Some(c) if c == P384 && bits.len() == 97 && bits[0] == 4 => KeyKind::P384(bits),
                other => {
                    let curve = other.map_or_else(|| "none".to_string(), |c| c.to_string());
                    return Err(KeyError::Unsupported(format!("ECDSA on curve {curve}")));
                }
            }
        } else if algorithm == ED25519 && bits.len() == 32 {
            KeyKind::Ed25519(bits)
        } else if algorithm == RSA {
            KeyKind::Rsa(bits)
        } else {
            return Err(KeyError::Unsupported(algorithm.to_string()));
        };
        Ok(PublicKey {
            name: name.to_string(),
            kind,
        })
    }

    /// The algorithm, as a person names it.
    pub fn algorithm(&self) -> &'static str {
        match self.kind {
            KeyKind::P256(_) => "ECDSA P-256",
            KeyKind::P384(_) => "ECDSA P-384",
            KeyKind::Ed25519(_) => "Ed25519",
            KeyKind::Rsa(_) => "RSA",
        }
    }

    /// Whether `signature` is this key's over `message`, made as cosign
    /// makes signatures: ECDSA (ASN.1) and RSA (PKCS#1 v1.5, or PSS) over
    /// SHA-256, Ed25519 over the message itself; a P-384 key's over SHA-384
    /// too (sigstore's default for that curve).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifies_with(Hash::Sha256, message, signature)
            || (matches!(self.kind, KeyKind::P384(_))
                && self.verifies_with(Hash::Sha384, message, signature))
    }

    /// Whether `signature` is this key's over `message` hashed with `hash`
    /// (a certificate's signature algorithm names the hash).
    pub fn verifies_with(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let check = |algorithm: &'static dyn VerificationAlgorithm, key: &[u8]| {
            UnparsedPublicKey::new(algorithm, key)
                .verify(message, signature)
                .is_ok()
        };
        match (&self.kind, hash) {
            (KeyKind::P256(point), Hash::Sha256) => {
                check(&signature::ECDSA_P256_SHA256_ASN1, point)
            }
            (KeyKind::P256(point), Hash::Sha384) => {
                check(&signature::ECDSA_P256_SHA384_ASN1, point)
            }
            (KeyKind::P384(point), Hash::Sha256) => {
                check(&signature::ECDSA_P384_SHA256_ASN1, point)
            }
            (KeyKind::P384(point), Hash::Sha384) => {
                check(&signature::ECDSA_P384_SHA384_ASN1, point)
            }
            (KeyKind::P256(_) | KeyKind::P384(_), Hash::Sha512) => false,
            (KeyKind::Ed25519(key), _) => check(&signature::ED25519, key),
            (KeyKind::Rsa(key), Hash::Sha256) => {
                check(&signature::RSA_PKCS1_2048_8192_SHA256, key)
                    || check(&signature::RSA_PSS_2048_8192_SHA256, key)
            }
            (KeyKind::Rsa(key), Hash::Sha384) => {
                check(&signature::RSA_PKCS1_2048_8192_SHA384, key)
                    || check(&signature::RSA_PSS_2048_8192_SHA384, key)
            }
            (KeyKind::Rsa(key), Hash::Sha512) => {
                check(&signature::RSA_PKCS1_2048_8192_SHA512, key)
                    || check(&signature::RSA_PSS_2048_8192_SHA512, key)
            }
        }
    }
}

/// The DER of every `-----BEGIN {label}-----` block of `pem`, in order;
/// blocks whose base64 is broken are left out.
pub fn pem_blocks(pem: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line == begin {
            body = Some(String::new());
        } else if line.starts_with("-----END") {
            if let Some(der) = body.take().and_then(|b| STANDARD.decode(b).ok()) {
                blocks.push(der);
            }
        } else if let Some(body) = &mut body {
            body.push_str(line);
        }
    }
    blocks
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
