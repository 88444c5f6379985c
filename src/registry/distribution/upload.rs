//! Writing blobs: cross-repository mounts, starting an upload, and the
//! upload strategies. A strategy is chosen per blob from what the
//! configuration and the registry said so far ([`UploadStrategy`]).

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ureq::http::{Method, Response};

use super::auth::Scopes;
use super::transport::{Body, OCTET_STREAM, header, redact_query};
use super::{DistributionRegistry, endpoint, link};
use crate::digest::Digest;
use crate::registry::{Counters, MountOutcome, RegistryError, Result, UploadSession};

/// Smallest chunk hoist shrinks to after 413 answers.
const MIN_CHUNK_AFTER_413: u64 = 64 * 1024;

/// How one blob goes up, chosen from what the configuration and the
/// registry said so far ([`UploadRules`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UploadStrategy {
    /// One `PUT` with the whole blob: the fewest requests.
    Monolithic,
    /// `PATCH` chunks of this many bytes, then a closing `PUT`: for
    /// registries (or proxies) that refuse large bodies.
    Chunked(u64),
}

/// What a registry has said about uploads, kept for the rest of the run:
/// monolithic first; chunked once a monolithic `PUT` is refused; chunks no
/// smaller than an announced `OCI-Chunk-Min-Length` (ECR: 5 MiB) and no
/// larger than a body the registry accepts (GHCR answers 413 over 4 MiB).
#[derive(Debug, Default)]
pub(super) struct UploadRules {
    /// Set once the registry refused a monolithic upload.
    chunked: AtomicBool,
    /// The largest chunk to send (0: no cap known), halved on each 413.
    max_chunk: AtomicU64,
    /// The smallest chunk the registry takes (all but the last), as announced.
    min_chunk: AtomicU64,
}

impl UploadRules {
    /// The strategy for a blob of `size` bytes; `configured` is the
    /// registry's `upload_chunk_size`.
    fn strategy(&self, configured: Option<u64>, size: u64) -> UploadStrategy {
        let chunked = configured.is_some() || self.chunked.load(Ordering::Relaxed);
        if !chunked || size == 0 {
            return UploadStrategy::Monolithic;
        }
        let mut chunk = configured.unwrap_or(endpoint::DEFAULT_CHUNK_SIZE);
        let cap = self.max_chunk.load(Ordering::Relaxed);
        if cap > 0 {
            chunk = chunk.min(cap);
        }
        // The registry's minimum wins over everything but the blob's end.
        UploadStrategy::Chunked(chunk.max(self.min_chunk.load(Ordering::Relaxed)).max(1))
    }

    /// A monolithic `PUT` of `size` bytes was refused: chunks from now on;
    /// after a 413 no chunk is larger than half of what was refused.
    fn refused_monolithic(&self, status: u16, size: u64) {
        self.chunked.store(true, Ordering::Relaxed);
        if status == 413 {
            self.too_large(size.max(2));
        }
    }

    /// A body of `size` bytes was too large (413): cap chunks below it.
    /// Whether the next upload sends smaller bodies (false at the floor).
    fn too_large(&self, size: u64) -> bool {
        let cap = (size / 2).max(MIN_CHUNK_AFTER_413);
        let _ = self
            .max_chunk
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                (now == 0 || cap < now).then_some(cap)
            });
        self.max_chunk.load(Ordering::Relaxed) < size
    }

    /// Reads `OCI-Chunk-Min-Length` from an answer that opened an upload.
    fn announced(&self, response: &Response<ureq::Body>) {
        if let Some(min) = header(response, "oci-chunk-min-length").and_then(|v| v.parse().ok()) {
            self.min_chunk.fetch_max(min, Ordering::Relaxed);
        }
    }
}

impl DistributionRegistry {
    /// Asks the registry to mount the blob from `from`; a registry that does
    /// not may open an upload session instead, handed back for `upload_blob`.
    pub(super) fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<MountOutcome> {
        let url = self.url(&format!(
            "/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"
        ));
        // Mounting needs push on the target and pull on the source.
        let scopes = Scopes::repository(repository, "pull,push").with_repository(from, "pull");
        let response = self.post_upload(&url, &scopes)?;
        match response.status().as_u16() {
            201 => Ok(MountOutcome::Mounted),
            202 => {
                self.uploads.announced(&response);
                Ok(MountOutcome::NotMounted(Some(UploadSession(
                    self.upload_location(&response)?,
                ))))
            }
            _ => Err(self.status_error("POST", &url, response)),
        }
    }

    /// Uploads a blob from `body`, in `session` if a mount opened one.
    pub(super) fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
        session: Option<UploadSession>,
    ) -> Result<()> {
        let location = match session {
            Some(UploadSession(location)) => location,
            None => self.start_upload(repository)?,
        };
        let mut counted = CountingReader {
            inner: body,
            counters: &self.counters,
        };
        match self.uploads.strategy(self.endpoint.chunk_size, size) {
            UploadStrategy::Monolithic => {
                self.put_monolithic(repository, &location, digest, size, &mut counted)
            }
            UploadStrategy::Chunked(chunk) => {
                self.put_chunked(repository, location, digest, size, chunk, &mut counted)
            }
        }
    }

    /// Opens an upload session; its URL.
    fn start_upload(&self, repository: &str) -> Result<String> {
        let url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let scopes = Scopes::repository(repository, "pull,push");
        let response = self.post_upload(&url, &scopes)?;
        let response = self.expect_status("POST", &url, response, &[202])?;
        self.uploads.announced(&response);
        self.upload_location(&response)
    }

    /// The empty `POST` that opens an upload (or asks for a mount).
    fn post_upload(&self, url: &str, scopes: &Scopes) -> Result<Response<ureq::Body>> {
        self.send(
            Method::POST,
            url,
            scopes,
            // Nexus refuses upload requests without it.
            &[("Content-Length", "0"), ("Content-Type", OCTET_STREAM)],
            Body::Empty,
        )
    }

    /// Where the upload continues, which must stay on the registry.
    fn upload_location(&self, response: &Response<ureq::Body>) -> Result<String> {
        let location = header(response, "location")
            .ok_or_else(|| self.protocol("upload answer without a Location header".into()))?;
        self.same_origin(&location, "upload Location")
    }

    /// The whole blob in one `PUT`; a refusal of its form switches this
    /// registry to chunks (the caller retries the blob).
    fn put_monolithic(
        &self,
        repository: &str,
        location: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
    ) -> Result<()> {
        let url = link::with_query(location, "digest", &digest.to_string());
        let scopes = Scopes::repository(repository, "pull,push");
        let response = self.send(Method::PUT, &url, &scopes, &[], Body::Stream(body, size))?;
        let status = response.status().as_u16();
        match self.expect_status("PUT", &redact_query(&url), response, &[201]) {
            // Whoever saw the refusal first, this registry gets chunks now.
            Err(e) if e.refuses_upload_form() => {
                self.uploads.refused_monolithic(status, size);
                Err(RegistryError::UploadAdapted(Box::new(e)))
            }
            other => other.map(|_| ()),
        }
    }

    /// The blob in `PATCH` chunks of `chunk` bytes, then a closing `PUT`.
    fn put_chunked(
        &self,
        repository: &str,
        mut location: String,
        digest: &Digest,
        size: u64,
        chunk: u64,
        body: &mut dyn Read,
    ) -> Result<()> {
        let scopes = Scopes::repository(repository, "pull,push");
        let mut offset = 0u64;
        while offset < size {
            let length = chunk.min(size - offset);
            let range = format!("{}-{}", offset, offset + length - 1);
            let mut part = body.take(length);
            let response = self.send(
                Method::PATCH,
                &location,
                &scopes,
                &[("Content-Range", range.as_str())],
                Body::Stream(&mut part, length),
            )?;
            let too_large = response.status().as_u16() == 413;
            // ECR answers a chunk with 201, others with 202 (or 204).
            let response = self
                .expect_status(
                    "PATCH",
                    &redact_query(&location),
                    response,
                    &[201, 202, 204],
                )
                .map_err(|e| match too_large && self.uploads.too_large(length) {
                    true => RegistryError::UploadAdapted(Box::new(e)),
                    false => e,
                })?;
            location = self.upload_location(&response)?;
            offset += length;
        }
        let url = link::with_query(&location, "digest", &digest.to_string());
        let response = self.send(
            Method::PUT,
            &url,
            &scopes,
            &[("Content-Length", "0"), ("Content-Type", OCTET_STREAM)],
            Body::Empty,
        )?;
        self.expect_status("PUT", &redact_query(&url), response, &[201])?;
        Ok(())
    }
}

/// Counts blob bytes as they are handed to the network.
struct CountingReader<'a> {
    inner: &'a mut dyn Read,
    counters: &'a Counters,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.uploaded(n as u64);
        Ok(n)
    }
}
