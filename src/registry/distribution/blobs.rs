//! Reading blobs: presence checks and verified streams, following redirects
//! to storage hosts without the registry's credentials.

use ureq::SendBody;
use ureq::http::{self, Method, Response};

use super::DistributionRegistry;
use super::http::{Body, header, redact_query};
use super::link;
use super::tokens::Scopes;
use crate::digest::{Digest, VerifyingReader};
use crate::registry::{BlobReader, RegistryError, Result};

/// Redirects followed for one request (blob GETs go to storage hosts).
const MAX_REDIRECTS: usize = 5;

impl DistributionRegistry {
    /// Whether `repository` holds the blob.
    pub(super) fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let scopes = Scopes::repository(repository, "pull");
        let response = self.send(Method::HEAD, &url, &scopes, &[], Body::Empty)?;
        match response.status().as_u16() {
            200 => Ok(true),
            // A redirect to a storage host means the registry has it.
            301 | 302 | 303 | 307 | 308 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error("HEAD", &url, response)),
        }
    }

    /// Whether the blob can be read: a GET of its first byte
    /// (`Range: bytes=0-0`), status only. The body is dropped unread (the
    /// connection closes with it), so a registry that ignores the range and
    /// answers 200 with the whole blob sends next to nothing of it.
    pub(super) fn reads_blob(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let (url, response) = self.get_blob(repository, digest, &[("Range", "bytes=0-0")])?;
        match response.status().as_u16() {
            200 | 206 => Ok(true),
            // An empty blob has no first byte, but it is there.
            416 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error("GET", &redact_query(&url), response)),
        }
    }

    /// A stream of the blob that fails unless it has `size` bytes hashing to `digest`.
    pub(super) fn open_blob<'a>(
        &'a self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader<'a>> {
        let (url, response) = self.get_blob(repository, digest, &[])?;
        match response.status().as_u16() {
            200 => {
                let reader = response.into_body().into_with_config().limit(size).reader();
                Ok(Box::new(VerifyingReader::new(reader, digest.clone(), size)))
            }
            404 => Err(RegistryError::NotFound {
                what: format!("blob {}/{repository}@{digest}", self.endpoint.host),
            }),
            _ => Err(self.status_error("GET", &redact_query(&url), response)),
        }
    }

    /// GET of a blob, following redirects to storage hosts (without the
    /// registry's credentials): the last URL asked and its answer, which
    /// is not a redirect.
    fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
        headers: &[(&str, &str)],
    ) -> Result<(String, Response<ureq::Body>)> {
        let scopes = Scopes::repository(repository, "pull");
        let mut url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let origin = link::origin(self.endpoint.base_url()).to_string();
        for _ in 0..=MAX_REDIRECTS {
            let response = if link::origin(&url) == origin {
                self.send(Method::GET, &url, &scopes, headers, Body::Empty)?
            } else {
                // A storage host: never send the registry's credentials there.
                let mut request = http::Request::get(&url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                self.send_once(request.body(SendBody::none()), &redact_query(&url))?
            };
            if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok((url, response));
            }
            let location = header(&response, "location")
                .ok_or_else(|| self.protocol(format!("{url}: redirect without Location")))?;
            url = link::resolve(&url, &location);
        }
        Err(self.protocol(format!(
            "blob {digest}: more than {MAX_REDIRECTS} redirects"
        )))
    }
}
