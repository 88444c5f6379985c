//! The key promotion records are signed with: an unencrypted PKCS#8 PEM
//! (`openssl genpkey`), ECDSA P-256 or Ed25519, read from a file or from
//! an environment variable, never from the configuration itself.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use sha2::{Digest as _, Sha256};

use crate::gate::{KeyError, PublicKey};

/// DER prefix of a P-256 `SubjectPublicKeyInfo`, before the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER prefix of an Ed25519 `SubjectPublicKeyInfo`, before the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A private key hoist signs records with.
pub struct SigningKey {
    /// Where it came from (a path, or `$VARIABLE`), for messages.
    pub name: String,
    pair: Pair,
    rng: SystemRandom,
}

enum Pair {
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        write!(f, "SigningKey({}, {})", self.name, self.algorithm())
    }
}

/// Why a signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The file could not be read.
    #[error("cannot read {name}: {source}")]
    Read {
        /// The path.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The environment variable is not set.
    #[error("the environment variable {0} that `record` names is not set")]
    Unset(String),
    /// An encrypted key (cosign's own format, or PKCS#8 with a password).
    #[error(
        "{0} is encrypted; hoist signs with an unencrypted PKCS#8 key (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`, or `-algorithm ed25519`), kept in a file only the promoter reads or in an environment variable"
    )]
    Encrypted(String),
    /// Not a PEM `PRIVATE KEY`.
    #[error(
        "{0} is not a PEM PKCS#8 private key (-----BEGIN PRIVATE KEY-----); convert a SEC1 `EC PRIVATE KEY` with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    NotPem(String),
    /// A key of another algorithm.
    #[error("{0} is not an ECDSA P-256 or Ed25519 private key, the two hoist signs with")]
    Unsupported(String),
}

impl SigningKey {
    /// Reads the key at `path`.
    pub fn read(path: &std::path::Path) -> Result<SigningKey, SigningKeyError> {
        let name = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|source| SigningKeyError::Read {
            name: name.clone(),
            source,
        })?;
        SigningKey::from_pem(&name, &pem)
    }

    /// Reads the key whose PEM the environment variable `variable` holds.
    pub fn from_env(variable: &str) -> Result<SigningKey, SigningKeyError> {
        let pem =
            std::env::var(variable).map_err(|_| SigningKeyError::Unset(variable.to_string()))?;
        SigningKey::from_pem(&format!("${variable}"), &pem)
    }

    /// Parses a PEM PKCS#8 private key named `name`.
    pub fn from_pem(name: &str, pem: &str) -> Result<SigningKey, SigningKeyError> {
        if pem.contains("ENCRYPTED") {
            return Err(SigningKeyError::Encrypted(name.to_string()));
        }
        let body: String = pem
            .lines()
            .skip_while(|l| l.trim() != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = STANDARD
            .decode(body.trim())
            .ok()
            .filter(|der| !der.is_empty())
            .ok_or_else(|| SigningKeyError::NotPem(name.to_string()))?;
        let rng = SystemRandom::new();
        let pair = if let Ok(pair) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng)
        {
            Pair::P256(pair)
        } else if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            Pair::Ed25519(pair)
        } else {
            return Err(SigningKeyError::Unsupported(name.to_string()));
        };
        Ok(SigningKey {
            name: name.to_string(),
            pair,
            rng,
        })
    }

    /// The algorithm, as a person names it.
    pub fn algorithm(&self) -> &'static str {
        match self.pair {
            Pair::P256(_) => "ECDSA P-256",
            Pair::Ed25519(_) => "Ed25519",
        }
    }

    /// Signs `message`: ECDSA over SHA-256 (ASN.1), as cosign signs, or
    /// Ed25519 over the message itself.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.pair {
            // ring fails only when its random source does, which the OS
            // never lets happen in practice; an empty signature then
            // fails verification instead of the process.
            Pair::P256(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            Pair::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// The public key's DER `SubjectPublicKeyInfo`.
    pub fn public_der(&self) -> Vec<u8> {
        let (prefix, key): (&[u8], &[u8]) = match &self.pair {
            Pair::P256(pair) => (&P256_SPKI_PREFIX, pair.public_key().as_ref()),
            Pair::Ed25519(pair) => (&ED25519_SPKI_PREFIX, pair.public_key().as_ref()),
        };
        [prefix, key].concat()
    }

    /// The public key, to verify what this key signs.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_spki_der(&self.name, &self.public_der())
    }

    /// The hint a bundle names the key by: the base64 SHA-256 of its
    /// `SubjectPublicKeyInfo` (what sigstore's tools print for a key).
    pub fn hint(&self) -> String {
        STANDARD.encode(Sha256::digest(self.public_der()))
    }
}
