//! The one interface through which hoist talks to image stores, with two
//! implementations: the Distribution API over HTTP, and OCI layouts on disk.

pub mod adaptive;
pub mod distribution;
mod error;
pub mod limits;
pub mod oci_layout;
#[cfg(test)]
pub mod recording;
pub mod retry;
pub mod spec;
pub mod stores;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

pub use error::{CatalogRefusal, RegistryError};

use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest};

/// Open stores by registry name.
pub type StoreMap = std::collections::BTreeMap<String, std::sync::Arc<dyn Registry>>;

/// Result of registry operations.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// What a manifest HEAD tells without downloading the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHead {
    /// Digest of the manifest bytes.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A started upload that a failed mount handed back, to be used by the next `blob_put`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSession(pub String);

/// What a cross-repository mount attempt achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum MountOutcome {
    /// The blob is now in the target repository; no bytes moved.
    Mounted,
    /// The registry did not mount; it may have opened an upload session instead.
    NotMounted(Option<UploadSession>),
}

/// A blob stream whose digest and size are checked as it is read.
pub type BlobReader<'a> = Box<dyn Read + Send + 'a>;

/// An image store: a registry speaking the Distribution API, or a directory of OCI layouts.
///
/// All methods block; callers run them on a thread pool.
pub trait Registry: Send + Sync {
    /// How the store is named in messages (`host:port` or `oci-layout:DIR`).
    fn display_name(&self) -> String;

    /// Identity of the store: two handles with the same identity share blobs,
    /// so a blob can be mounted from one repository into another.
    fn store_id(&self) -> String;

    /// Where the store really is, whatever it is called: the socket
    /// addresses its host resolves to, with the API path (`127.0.0.1:5000`,
    /// `[::1]:5000` for `localhost:5000`), or an OCI layout's canonical
    /// directory. Two handles sharing any of these are one store, so a
    /// move between them would delete what it wrote (see [`one_store`]).
    fn locations(&self) -> Vec<String> {
        vec![self.store_id()]
    }

    /// Every repository in the store, following pagination to the end.
    fn catalog(&self) -> Result<Vec<String>>;

    /// Every tag of a repository, following pagination to the end.
    fn tags(&self, repository: &str) -> Result<Vec<String>>;

    /// Digest, media type and size of a manifest by tag or digest; `None` when absent.
    fn manifest_head(&self, repository: &str, reference: &str) -> Result<Option<ManifestHead>>;

    /// The manifest by tag or digest, byte for byte; its digest is checked when
    /// the reference is a digest.
    fn manifest_get(&self, repository: &str, reference: &str) -> Result<Manifest>;

    /// Stores a manifest under a tag or its digest.
    fn manifest_put(&self, repository: &str, reference: &str, manifest: &Manifest) -> Result<()>;

    /// Deletes a manifest by digest (and with it every tag pointing at it).
    fn manifest_delete(&self, repository: &str, digest: &Digest) -> Result<()>;

    /// Deletes one tag, leaving the manifest and its other tags. `Ok(false)`
    /// when the store cannot delete tags (Distribution before OCI 1.1).
    fn tag_delete(&self, repository: &str, tag: &str) -> Result<bool>;

    /// Whether [`Registry::tag_delete`] is known to delete a tag alone
    /// without asking (an OCI layout does); `false` when only a request
    /// can tell (a registry answers 400 or 405 when it cannot).
    fn deletes_tags_alone(&self) -> bool {
        false
    }

    /// Manifests whose `subject` is `digest` (OCI 1.1 referrers API);
    /// `None` when the store does not offer the API.
    fn referrers(&self, repository: &str, digest: &Digest) -> Result<Option<Vec<Descriptor>>>;

    /// Whether a blob is present in the repository.
    fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool>;

    /// Whether the blob can really be read from the repository: asked with
    /// a read of its first byte, not a HEAD, because some registries
    /// (Artifactory) answer a HEAD with 200 for a blob a GET does not find.
    /// For re-checking an image whose manifest the registry refused.
    fn blob_readable(&self, repository: &str, digest: &Digest) -> Result<bool>;

    /// Streams a blob; reading fails unless it has exactly `size` bytes hashing to `digest`.
    fn blob_get<'a>(
        &'a self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader<'a>>;

    /// Makes a blob of another repository of the same store available in `repository`.
    fn blob_mount(&self, repository: &str, digest: &Digest, from: &str) -> Result<MountOutcome>;

    /// Uploads a blob of known digest and size from a stream.
    fn blob_put(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
        session: Option<UploadSession>,
    ) -> Result<()>;

    /// The store answered 429 to a request the caller retries itself (a
    /// streamed upload): every thread waits `pause` before its next request.
    fn throttle(&self, _pause: std::time::Duration) {}

    /// Readies the store for the requests to come: a registry is pinged
    /// for its authentication challenge, on a connection later requests
    /// reuse. A failure is left for those requests to report.
    fn prepare(&self) {}

    /// Request and byte counters for reports and benchmarks.
    fn counters(&self) -> &Counters;
}

/// Counts what a registry handle did, for summaries, reports and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    /// HTTP requests sent (0 for OCI layouts).
    pub requests: AtomicU64,
    /// Blob bytes written into this store.
    pub bytes_uploaded: AtomicU64,
    /// Requests that change something (PUT, POST, PATCH, DELETE).
    pub writes: AtomicU64,
}

impl Counters {
    /// Adds one request.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one request that changes something.
    pub fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Writing requests so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Adds uploaded bytes.
    pub fn uploaded(&self, bytes: u64) {
        self.bytes_uploaded.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Requests so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Bytes uploaded so far.
    pub fn bytes_uploaded(&self) -> u64 {
        self.bytes_uploaded.load(Ordering::Relaxed)
    }
}

/// Where two stores are one, whatever their names: a location both
/// reach (see [`Registry::locations`]); `None` when they are apart as far
/// as name resolution can tell.
pub fn one_store(a: &[String], b: &[String]) -> Option<String> {
    a.iter().find(|location| b.contains(location)).cloned()
}

/// Whether a reference is a digest rather than a tag.
pub fn is_digest_reference(reference: &str) -> bool {
    reference.contains(':')
}

/// A store seen through its read operations only. Planning and `--dry-run`
/// hold nothing else, so they cannot write to a registry by construction.
#[derive(Clone)]
pub struct ReadOnly(std::sync::Arc<dyn Registry>);

impl ReadOnly {
    /// Wraps a store.
    pub fn new(store: std::sync::Arc<dyn Registry>) -> ReadOnly {
        ReadOnly(store)
    }

    /// See [`Registry::store_id`].
    pub fn store_id(&self) -> String {
        self.0.store_id()
    }

    /// See [`Registry::locations`].
    pub fn locations(&self) -> Vec<String> {
        self.0.locations()
    }

    /// See [`Registry::catalog`].
    pub fn catalog(&self) -> Result<Vec<String>> {
        self.0.catalog()
    }

    /// See [`Registry::tags`].
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        self.0.tags(repository)
    }

    /// See [`Registry::manifest_head`].
    pub fn manifest_head(&self, repository: &str, reference: &str) -> Result<Option<ManifestHead>> {
        self.0.manifest_head(repository, reference)
    }

    /// See [`Registry::referrers`].
    pub fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<crate::manifest::Descriptor>>> {
        self.0.referrers(repository, digest)
    }

    /// See [`Registry::manifest_get`].
    pub fn manifest_get(&self, repository: &str, reference: &str) -> Result<Manifest> {
        self.0.manifest_get(repository, reference)
    }

    /// A small blob's bytes (checked against `digest`), for what hoist
    /// parses rather than copies: signed payloads, attestations, records.
    /// `what` names it in an error.
    pub fn blob_bytes(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.blob_get(repository, digest, size)?
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Protocol {
                registry: repository.to_string(),
                message: format!("reading {what} {digest}: {e}"),
            })?;
        Ok(bytes)
    }

    /// See [`Registry::blob_get`].
    pub fn blob_get<'a>(
        &'a self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader<'a>> {
        self.0.blob_get(repository, digest, size)
    }

    /// See [`Registry::counters`].
    pub fn counters(&self) -> &Counters {
        self.0.counters()
    }

    /// See [`Registry::prepare`].
    pub fn prepare(&self) {
        self.0.prepare();
    }
}
