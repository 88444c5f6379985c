//! Writing blobs: cross-repository mounts, starting an upload, and the
//! upload strategies. A strategy is chosen per blob from what the
//! configuration and the registry said so far ([`UploadStrategy`]).

use std::io::Read;
use std::sync::atomic::Ordering;

use ureq::http::{Method, Response};

use super::auth::Scopes;
use super::transport::{Body, header, redact_query};
use super::{DistributionRegistry, endpoint, link};
use crate::digest::Digest;
use crate::registry::{Counters, MountOutcome, Result, UploadSession};

/// How one blob goes up.
///
/// What the registry announces or answers decides, and each quirk it shows
/// becomes a field or a variant here, chosen in [`DistributionRegistry::upload_strategy`]
/// and carried out in [`DistributionRegistry::upload_blob`]: that is where
/// the next strategies go (an `OCI-Chunk-Min-Length` announced at the start
/// of an upload, smaller chunks after a 413 to a chunk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UploadStrategy {
    /// One `PUT` with the whole blob: the fewest requests.
    Monolithic,
    /// `PATCH` chunks of this many bytes, then a closing `PUT`: for
    /// registries (or proxies) that refuse large bodies.
    Chunked(u64),
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
            202 => Ok(MountOutcome::NotMounted(Some(UploadSession(
                self.upload_location(&response)?,
            )))),
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
        match self.upload_strategy(size) {
            UploadStrategy::Monolithic => {
                self.put_monolithic(repository, &location, digest, size, &mut counted)
            }
            UploadStrategy::Chunked(chunk) => {
                self.put_chunked(repository, location, digest, size, chunk, &mut counted)
            }
        }
    }

    /// Chunked when configured, or once the registry refused a monolithic
    /// upload (413); an empty blob always goes in one `PUT`.
    fn upload_strategy(&self, size: u64) -> UploadStrategy {
        let chunked =
            self.endpoint.chunk_size.is_some() || self.needs_chunked.load(Ordering::Relaxed);
        if chunked && size > 0 {
            let chunk = self
                .endpoint
                .chunk_size
                .unwrap_or(endpoint::DEFAULT_CHUNK_SIZE)
                .max(1);
            UploadStrategy::Chunked(chunk)
        } else {
            UploadStrategy::Monolithic
        }
    }

    /// Opens an upload session; its URL.
    fn start_upload(&self, repository: &str) -> Result<String> {
        let url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let scopes = Scopes::repository(repository, "pull,push");
        let response = self.post_upload(&url, &scopes)?;
        let response = self.expect_status("POST", &url, response, &[202])?;
        self.upload_location(&response)
    }

    /// The empty `POST` that opens an upload (or asks for a mount).
    fn post_upload(&self, url: &str, scopes: &Scopes) -> Result<Response<ureq::Body>> {
        self.send(
            Method::POST,
            url,
            scopes,
            &[("Content-Length", "0")],
            Body::Empty,
        )
    }

    /// Where the upload continues, which must stay on the registry.
    fn upload_location(&self, response: &Response<ureq::Body>) -> Result<String> {
        let location = header(response, "location")
            .ok_or_else(|| self.protocol("upload answer without a Location header".into()))?;
        self.same_origin(&location, "upload Location")
    }

    /// The whole blob in one `PUT`; a 413 switches this registry to chunks
    /// (the caller retries the blob).
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
        if response.status().as_u16() == 413 {
            self.needs_chunked.store(true, Ordering::Relaxed);
        }
        self.expect_status("PUT", &redact_query(&url), response, &[201])?;
        Ok(())
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
            let response =
                self.expect_status("PATCH", &redact_query(&location), response, &[202, 204])?;
            location = self.upload_location(&response)?;
            offset += length;
        }
        let url = link::with_query(&location, "digest", &digest.to_string());
        let response = self.send(
            Method::PUT,
            &url,
            &scopes,
            &[("Content-Length", "0")],
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
