//! Content digests (`sha256:<hex>`) and a reader that verifies them while bytes stream.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

/// A validated content digest such as `sha256:4f3c…`.
///
/// Only `sha256` and `sha512` are accepted, with lowercase hex of the exact
/// length, so a digest can be used safely as a file name or URL segment.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// The hash algorithms a digest may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`, what every registry uses.
    Sha256,
    /// `sha512`, allowed by the OCI image spec.
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a valid digest (expected sha256:<64 lowercase hex digits>)")]
pub struct InvalidDigest(pub String);

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex(&Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` with the same algorithm as `self`.
    pub fn recompute(&self, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(self.algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// The algorithm name, e.g. `sha256`.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm.name()
    }

    /// The hex part, validated: safe as a path component.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm and the first 12 hex digits (`sha256:0123456789ab`):
    /// enough of a digest for people.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm(), &self.hex[..12])
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidDigest(s.to_string());
        let (algorithm, hex) = s.split_once(':').ok_or_else(invalid)?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(invalid()),
        };
        let well_formed = hex.len() == algorithm.hex_len()
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(invalid());
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl TryFrom<String> for Digest {
    type Error = InvalidDigest;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// In schemas, a string of the algorithm and its lowercase hex.
impl schemars::JsonSchema for Digest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Digest".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A content digest: `sha256:` and 64 lowercase hex digits (or `sha512:` and 128).",
            "type": "string",
            "pattern": "^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$"
        })
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// An incremental hasher for either algorithm: digests a stream as it passes.
pub struct Hasher(HashState);

enum HashState {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher producing a digest of `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        Hasher(match algorithm {
            Algorithm::Sha256 => HashState::Sha256(Sha256::new()),
            Algorithm::Sha512 => HashState::Sha512(Sha512::new()),
        })
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            HashState::Sha256(h) => h.update(bytes),
            HashState::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything added.
    pub fn finish(self) -> Digest {
        match self.0 {
            HashState::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex(&h.finalize()),
            },
            HashState::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex(&h.finalize()),
            },
        }
    }
}

/// A reader that hashes what passes through it and fails unless the stream is
/// exactly `size` bytes with digest `expected`.
///
/// The check fires on the read that delivers the last expected byte, before
/// those bytes are handed on: a consumer that stops reading at `size` (an
/// HTTP body with a Content-Length) still never forwards unverified bytes.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    size: u64,
    seen: u64,
    hasher: Option<Hasher>,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, which must yield exactly `size` bytes hashing to `expected`.
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        let hasher = Some(Hasher::new(expected.algorithm));
        VerifyingReader {
            inner,
            expected,
            size,
            seen: 0,
            hasher,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.seen
    }

    fn mismatch(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            BlobMismatch {
                kind: ContentKind::Blob,
                digest: self.expected.clone(),
                what,
            },
        )
    }
}

/// What content failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    /// A layer or config blob.
    Blob,
    /// A manifest or index.
    Manifest,
}

impl fmt::Display for ContentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContentKind::Blob => "blob",
            ContentKind::Manifest => "manifest",
        })
    }
}

/// A blob or manifest whose bytes do not match its digest or size.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {digest} failed verification: {what}")]
pub struct BlobMismatch {
    /// What the bytes were.
    pub kind: ContentKind,
    /// The digest the bytes were supposed to have.
    pub digest: Digest,
    /// What was wrong.
    pub what: String,
}

impl<R: Read> VerifyingReader<R> {
    fn verify(&mut self) -> io::Result<()> {
        let actual = self.hasher.take().map(Hasher::finish);
        match actual {
            Some(actual) if actual != self.expected => {
                Err(self.mismatch(format!("content hashes to {actual}")))
            }
            _ => Ok(()),
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.hasher.is_none() {
            // Verified already: anything further is surplus.
            if n > 0 {
                return Err(self.mismatch(format!("more than the expected {} bytes", self.size)));
            }
            return Ok(0);
        }
        if n == 0 {
            if self.seen == self.size {
                // Only an empty blob gets here: nothing was read, the digest still counts.
                self.verify()?;
                return Ok(0);
            }
            return Err(self.mismatch(format!(
                "stream ended after {} of {} bytes",
                self.seen, self.size
            )));
        }
        self.seen += n as u64;
        if self.seen > self.size {
            return Err(self.mismatch(format!("more than the expected {} bytes", self.size)));
        }
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&buf[..n]);
        }
        if self.seen == self.size {
            self.verify()?;
            // Read to the end of the stream now, whether or not the caller
            // asks again: an HTTP body read to its end hands its connection
            // back to the pool (a blob's next GET then skips the TCP and TLS
            // handshakes), and a longer stream is refused here.
            let mut probe = [0_u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                return Err(self.mismatch(format!("more than the expected {} bytes", self.size)));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(d.short(), "sha256:aaaaaaaaaaaa");
        for bad in [
            "sha256:../../etc",
            "sha256:ABC",
            "md5:abc",
            "sha256",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}/", "a".repeat(63)),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn serde_is_the_string() {
        let d = Digest::sha256_of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:abc\"").is_err());
    }

    #[test]
    fn verifying_reader_accepts_exact_bytes() {
        let data = b"hello world".to_vec();
        let digest = Digest::sha256_of(&data);
        let mut out = Vec::new();
        let mut r = VerifyingReader::new(&data[..], digest, data.len() as u64);
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn verifying_reader_rejects_before_last_byte_is_forwarded() {
        let data = b"hello world".to_vec();
        let digest = Digest::sha256_of(b"hello worle");
        let mut r = VerifyingReader::new(&data[..], digest, data.len() as u64);
        let mut buf = [0u8; 64];
        let err = r.read(&mut buf).unwrap_err();
        assert!(err.to_string().contains("failed verification"), "{err}");
    }

    #[test]
    fn verifying_reader_checks_empty_blobs() {
        let empty = Digest::sha256_of(b"");
        let mut r = VerifyingReader::new(&b""[..], empty, 0);
        assert_eq!(r.read_to_end(&mut Vec::new()).unwrap(), 0);
        let mut r = VerifyingReader::new(&b""[..], Digest::sha256_of(b"x"), 0);
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn verifying_reader_rejects_short_and_long_streams() {
        let data = b"hello".to_vec();
        let digest = Digest::sha256_of(&data);
        let mut r = VerifyingReader::new(&data[..], digest.clone(), 6);
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        let mut r = VerifyingReader::new(&data[..], digest, 4);
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }
}
