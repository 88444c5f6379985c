//! Writing blobs: cross-repository mounts, starting an upload, and the
//! upload strategies. A strategy is chosen per blob from what the
//! configuration and the registry said so far ([`UploadStrategy`]).

use std::io::Read;

use ureq::http::{Method, Response};

use super::http::{Body, OCTET_STREAM, header, redact_query};
use super::tokens::Scopes;
use super::upload_rules::UploadStrategy;
use super::{DistributionRegistry, link};
use crate::digest::Digest;
use crate::registry::{Counters, MountOutcome, RegistryError, Result, UploadSession};

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
