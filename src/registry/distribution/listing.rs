//! Paginated listings: `_catalog` and `tags/list`, following `Link` headers
//! exactly as the registry gives them, on the registry's own host only.

use std::collections::HashSet;

use ureq::http::Method;

use super::DistributionRegistry;
use super::http::{Body, header_in};
use super::link;
use super::tokens::Scopes;
use crate::registry::{RegistryError, Result};

/// Pages followed for one listing, as a last guard against a registry that never ends.
const MAX_PAGES: usize = 100_000;
/// Largest page read.
const MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;

impl DistributionRegistry {
    /// Every repository in the registry. A 404 here says the registry has
    /// no catalog (Docker Hub, GHCR), not that something is missing: it
    /// stays the status it is, for [`RegistryError::catalog_refusal`].
    pub(super) fn list_catalog(&self) -> Result<Vec<String>> {
        let path = format!("/v2/_catalog?n={}", self.endpoint.page_size);
        match self.list_pages(&path, "repositories", &Scopes::catalog()) {
            Err(RegistryError::LoginRefused { registry, origin }) => {
                Err(self.catalog_login_refused(registry, origin))
            }
            other => other,
        }
    }

    /// A catalog that refused the login sent: some registries offer their
    /// catalog to no one (a 401 even to good credentials), so the login is
    /// tried on `/v2/` itself. Refused there too, the credentials are wrong,
    /// and that is what is said, as every other request says it; accepted,
    /// the catalog alone is refused.
    fn catalog_login_refused(&self, registry: String, origin: String) -> RegistryError {
        let url = self.url("/v2/");
        match self.send(Method::GET, &url, &Scopes::none(), &[], Body::Empty) {
            Err(RegistryError::LoginRefused { registry, origin }) => RegistryError::Auth {
                registry,
                message: format!("the registry refused the credentials from {origin}"),
            },
            Ok(response) => {
                super::http::discard(response);
                RegistryError::LoginRefused { registry, origin }
            }
            Err(_) => RegistryError::LoginRefused { registry, origin },
        }
    }

    /// Every tag of `repository`. A repository is absent only when the
    /// registry says so (404 with `NAME_UNKNOWN`, or Harbor's `NOT_FOUND`);
    /// any other 404 (an empty body, a router's "404 page not found") is a
    /// registry that does not list tags, not an empty repository.
    pub(super) fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        let path = format!("/v2/{repository}/tags/list?n={}", self.endpoint.page_size);
        self.list_pages(&path, "tags", &Scopes::repository(repository, "pull"))
            .map_err(|error| match error {
                RegistryError::Status {
                    status: 404, codes, ..
                } if codes
                    .iter()
                    .any(|c| c == "NAME_UNKNOWN" || c == "NOT_FOUND") =>
                {
                    RegistryError::NotFound {
                        what: format!("repository `{repository}` on {}", self.endpoint.host),
                    }
                }
                RegistryError::Status {
                    status: 404,
                    url,
                    codes,
                    ..
                } => RegistryError::TagsUnlisted {
                    registry: self.endpoint.host.clone(),
                    repository: repository.to_string(),
                    said: match codes.is_empty() {
                        true => format!("GET {url}: HTTP 404 without NAME_UNKNOWN"),
                        false => format!("GET {url}: HTTP 404 {}", codes.join(", ")),
                    },
                },
                other => other,
            })
    }

    /// Lists a paginated collection (`_catalog` or `tags/list`), following `Link` headers.
    fn list_pages(&self, first_path: &str, key: &str, scopes: &Scopes) -> Result<Vec<String>> {
        let mut url = self.url(first_path);
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            if !seen.insert(url.clone()) {
                return Err(self.protocol(format!("pagination loops back to {url}")));
            }
            let (headers, bytes) = self.read_retrying("GET", &url, MAX_PAGE_BYTES, || {
                let response = self.send(
                    Method::GET,
                    &url,
                    scopes,
                    &[("Accept", "application/json")],
                    Body::Empty,
                )?;
                if response.status().as_u16() == 404 {
                    // Kept whole: whether the registry named an error code
                    // (`NAME_UNKNOWN`) tells an absent repository from a
                    // missing endpoint.
                    return Err(self.status_error("GET", &url, response));
                }
                self.expect_status("GET", &url, response, &[200])
            })?;
            let next = header_in(&headers, "link").and_then(|h| link::next_link(&h));
            let page: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| self.protocol(format!("{url}: invalid JSON listing: {e}")))?;
            match page.get(key) {
                Some(serde_json::Value::Array(values)) => {
                    items.extend(values.iter().filter_map(|v| v.as_str().map(str::to_string)));
                }
                Some(serde_json::Value::Null) | None => {}
                Some(_) => return Err(self.protocol(format!("{url}: `{key}` is not a list"))),
            }
            match next {
                Some(next) => url = self.same_origin(&next, "pagination link")?,
                None => return Ok(items),
            }
        }
        Err(self.protocol(format!("more than {MAX_PAGES} pages listing {first_path}")))
    }
}
