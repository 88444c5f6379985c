//! Manifests over the wire: HEAD, GET with every digest checked, PUT,
//! DELETE, and the referrers API. Caching is `cache.rs`'s business.

use std::collections::HashSet;

use ureq::http::{self, Method, Response};

use super::DistributionRegistry;
use super::http::{Body, header, header_in, read_json};
use super::link;
use super::tokens::Scopes;
use crate::digest::{BlobMismatch, ContentKind, Digest, InvalidDigest};
use crate::manifest::{ACCEPT_MANIFESTS, Descriptor, MAX_MANIFEST_BYTES, Manifest, OCI_INDEX};
use crate::registry::{ManifestHead, Registry, RegistryError, Result, is_digest_reference};

/// Pages of one referrers listing followed, as a guard against a registry
/// that never ends.
const MAX_REFERRER_PAGES: usize = 1000;

impl DistributionRegistry {
    /// What a HEAD tells of a manifest; `None` when absent. A registry that
    /// does not send the digest on HEAD gets a (cached) GET instead.
    pub(super) fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let scopes = Scopes::repository(repository, "pull");
        let response = self.send(
            Method::HEAD,
            &url,
            &scopes,
            &[("Accept", ACCEPT_MANIFESTS)],
            Body::Empty,
        )?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let response = self.expect_status("HEAD", &url, response, &[200])?;
        let digest =
            header(&response, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
        let media_type = header(&response, "content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let size = header(&response, "content-length").and_then(|l| l.parse::<u64>().ok());
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size)) if !media_type.is_empty() => {
                Ok(Some(ManifestHead {
                    digest,
                    media_type,
                    size,
                }))
            }
            // Not every registry sends the digest on HEAD: fetch and hash.
            _ => {
                let manifest = Registry::manifest_get(self, repository, reference)?;
                Ok(Some(ManifestHead {
                    size: manifest.bytes.len() as u64,
                    digest: manifest.digest,
                    media_type: manifest.media_type,
                }))
            }
        }
    }

    /// A manifest by tag or digest, from the registry, checked against the
    /// digest it announced and the one asked for.
    pub(super) fn fetch_manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let scopes = Scopes::repository(repository, "pull");
        let (headers, bytes) = self.read_retrying("GET", &url, MAX_MANIFEST_BYTES, || {
            self.request_manifest(&url, &scopes, repository, reference)
        })?;
        self.checked_manifest(repository, reference, &headers, bytes)
    }

    /// Sends the manifest GET and checks the answer before its body is read.
    fn request_manifest(
        &self,
        url: &str,
        scopes: &Scopes,
        repository: &str,
        reference: &str,
    ) -> Result<Response<ureq::Body>> {
        let response = self.send(
            Method::GET,
            url,
            scopes,
            &[("Accept", ACCEPT_MANIFESTS)],
            Body::Empty,
        )?;
        if response.status().as_u16() == 404 {
            let err = self.status_error("GET", url, response);
            return Err(match err {
                RegistryError::Status { .. }
                    if err.has_code("NAME_UNKNOWN") || err.has_code("MANIFEST_UNKNOWN") =>
                {
                    RegistryError::NotFound {
                        what: format!("manifest {}/{repository}:{reference}", self.endpoint.host),
                    }
                }
                other => other,
            });
        }
        let response = self.expect_status("GET", url, response, &[200])?;
        if header(&response, "content-length")
            .and_then(|l| l.parse::<u64>().ok())
            .is_some_and(|l| l > MAX_MANIFEST_BYTES)
        {
            return Err(self.protocol(format!(
                "{url}: manifest larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        Ok(response)
    }

    /// The manifest in `bytes`, refused unless it hashes to the digest the
    /// registry announced and, when asked for by digest, to that one.
    fn checked_manifest(
        &self,
        repository: &str,
        reference: &str,
        headers: &http::HeaderMap,
        bytes: Vec<u8>,
    ) -> Result<Manifest> {
        let content_type = header_in(headers, "content-type");
        let announced = header_in(headers, "docker-content-digest");
        let separator = if is_digest_reference(reference) {
            '@'
        } else {
            ':'
        };
        let what = format!("{}/{repository}{separator}{reference}", self.endpoint.host);
        let mut manifest =
            Manifest::from_bytes(bytes, content_type.as_deref()).map_err(|source| {
                RegistryError::Manifest {
                    what: what.clone(),
                    source,
                }
            })?;
        let mut expected: Vec<Digest> = announced.iter().filter_map(|d| d.parse().ok()).collect();
        let by_digest = if is_digest_reference(reference) {
            let digest: Digest = reference
                .parse()
                .map_err(|e: InvalidDigest| self.protocol(e.to_string()))?;
            expected.push(digest.clone());
            Some(digest)
        } else {
            None
        };
        for digest in expected {
            let actual = digest.recompute(&manifest.bytes);
            if actual != digest {
                return Err(RegistryError::Verification(BlobMismatch {
                    kind: ContentKind::Manifest,
                    digest,
                    what: format!("{what} served bytes that hash to {actual}"),
                }));
            }
        }
        if let Some(digest) = by_digest {
            // Asked for by a sha512 digest, it is known by that digest.
            manifest.digest = digest;
        }
        Ok(manifest)
    }

    /// Stores a manifest under `reference`, refusing a registry that rewrote it.
    pub(super) fn store_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<()> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let scopes = Scopes::repository(repository, "pull,push");
        let response = self.send(
            Method::PUT,
            &url,
            &scopes,
            &[],
            Body::Bytes(&manifest.bytes, &manifest.media_type),
        )?;
        let response = self.expect_status("PUT", &url, response, &[200, 201, 202])?;
        if let Some(stored) =
            header(&response, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok())
            && stored.algorithm() == manifest.digest.algorithm()
            && stored != manifest.digest
        {
            return Err(self.protocol(format!(
                "{url}: stored the manifest as {stored}, not {} (the registry rewrote it)",
                manifest.digest
            )));
        }
        Ok(())
    }

    /// Deletes a manifest by digest.
    pub(super) fn delete_manifest(&self, repository: &str, digest: &Digest) -> Result<()> {
        let url = self.url(&format!("/v2/{repository}/manifests/{digest}"));
        let scopes = Scopes::repository(repository, "pull,push,delete");
        let response = self.send(Method::DELETE, &url, &scopes, &[], Body::Empty)?;
        self.expect_status("DELETE", &url, response, &[200, 202, 204])?;
        Ok(())
    }

    /// Deletes one tag; `Ok(false)` when the registry deletes by digest only.
    pub(super) fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/{repository}/manifests/{tag}"));
        let scopes = Scopes::repository(repository, "pull,push,delete");
        let response = self.send(Method::DELETE, &url, &scopes, &[], Body::Empty)?;
        match response.status().as_u16() {
            200 | 202 | 204 => Ok(true),
            404 => Err(RegistryError::NotFound {
                what: format!("tag {}/{repository}:{tag}", self.endpoint.host),
            }),
            // Distribution before OCI 1.1 deletes by digest only.
            400 | 405 => Ok(false),
            _ => Err(self.status_error("DELETE", &url, response)),
        }
    }

    /// The referrers of `digest` through the OCI 1.1 API, every page of
    /// them; `None` when the registry has no such API (remembered, so it
    /// is asked once).
    pub(super) fn list_referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<Descriptor>>> {
        let scopes = Scopes::repository(repository, "pull");
        let mut url = self.url(&format!("/v2/{repository}/referrers/{digest}"));
        let mut seen = HashSet::new();
        let mut referrers = Vec::new();
        for _ in 0..MAX_REFERRER_PAGES {
            if !seen.insert(url.clone()) {
                return Err(self.protocol(format!("referrers pagination loops back to {url}")));
            }
            let Some((page, next)) = self.referrers_page(&url, &scopes)? else {
                return Ok(None);
            };
            referrers.extend(page);
            match next {
                Some(next) => url = self.same_origin(&next, "referrers pagination link")?,
                None => return Ok(Some(referrers)),
            }
        }
        Err(self.protocol(format!(
            "more than {MAX_REFERRER_PAGES} pages of referrers of {digest}"
        )))
    }

    /// One page of a referrers listing and the link to the next; `None`
    /// when the registry has no referrers API.
    fn referrers_page(
        &self,
        url: &str,
        scopes: &Scopes,
    ) -> Result<Option<(Vec<Descriptor>, Option<String>)>> {
        let response = self.send(
            Method::GET,
            url,
            scopes,
            &[("Accept", OCI_INDEX)],
            Body::Empty,
        )?;
        match response.status().as_u16() {
            200 => {}
            // No referrers API (a registry that has one never answers 404
            // here): the caller falls back to the tag convention, and the
            // registry is not asked again.
            404 | 405 => {
                self.referrers_api.found(super::Api::Absent);
                return Ok(None);
            }
            // A 400 may be about this request only: this time without.
            400 => return Ok(None),
            _ => return Err(self.status_error("GET", url, response)),
        }
        let next = header(&response, "link").and_then(|h| link::next_link(&h));
        #[derive(serde::Deserialize)]
        struct Listing {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let listing: Listing = read_json(response, MAX_MANIFEST_BYTES)
            .map_err(|e| self.protocol(format!("{url}: invalid referrers index: {e}")))?;
        Ok(Some((listing.manifests, next)))
    }
}
