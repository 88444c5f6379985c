//! Typed registry errors. Messages carry the URL and the registry's own error
//! code, never a credential.

use crate::digest::BlobMismatch;
use crate::manifest::ManifestError;

/// Something a registry (or an OCI layout on disk) could not do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an unexpected HTTP status.
    #[error("{method} {url}: HTTP {status}{}", describe_codes(.codes, .message))]
    Status {
        /// Request method.
        method: String,
        /// URL without credentials.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Error codes from the OCI error envelope (`MANIFEST_UNKNOWN`, `DENIED`, …).
        codes: Vec<String>,
        /// Messages from the envelope, or a short excerpt of a non-JSON body.
        message: String,
        /// The wait the registry asked for (`Retry-After`), if any.
        retry_after: Option<std::time::Duration>,
    },
    /// The request never got an answer (connection, TLS, timeout).
    #[error("{method} {url}: {cause}")]
    Transport {
        /// Request method.
        method: String,
        /// URL without credentials.
        url: String,
        /// What went wrong: the socket's error, or the HTTP client's in one.
        #[source]
        cause: std::sync::Arc<std::io::Error>,
    },
    /// Credentials could not be found, or the registry refused them.
    #[error("authentication with {registry} failed: {message}")]
    Auth {
        /// Registry host.
        registry: String,
        /// What went wrong.
        message: String,
    },
    /// The registry answered 401 to basic credentials it was sent: wrong
    /// ones, or ones this request is not for (a catalog some registries
    /// offer no one).
    #[error(
        "authentication with {registry} failed: the registry refused the credentials from {origin}"
    )]
    LoginRefused {
        /// Registry host.
        registry: String,
        /// Where the credentials came from (never what they are).
        origin: String,
    },
    /// The registry broke the protocol (bad header, pagination loop, foreign host).
    #[error("{registry}: {message}")]
    Protocol {
        /// Registry host or store.
        registry: String,
        /// What it did wrong.
        message: String,
    },
    /// A manifest could not be understood.
    #[error("{what}: {source}")]
    Manifest {
        /// Which manifest.
        what: String,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// Content did not match its digest or size.
    #[error(transparent)]
    Verification(#[from] BlobMismatch),
    /// A file of an OCI layout could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The registry refused how a blob was sent (a monolithic `PUT`, a chunk
    /// too large) and the client changed how it uploads there: the blob is
    /// worth sending again at once.
    #[error(transparent)]
    UploadAdapted(Box<RegistryError>),
    /// A repository whose tag list is not served: `tags/list` answered 404
    /// without saying the repository is unknown (no `NAME_UNKNOWN`), as a
    /// registry or proxy without the endpoint does. Its tags can only be
    /// looked up one by one; it is not an empty repository.
    #[error("{registry} does not list the tags of `{repository}` ({said})")]
    TagsUnlisted {
        /// Registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// What the registry answered.
        said: String,
    },
    /// Something that is not there: manifest, tag, blob or repository.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
}

impl RegistryError {
    /// A request to `url` that got no answer, for `cause`.
    pub fn transport(method: &str, url: &str, cause: std::io::Error) -> RegistryError {
        RegistryError::Transport {
            method: method.into(),
            url: url.into(),
            cause: std::sync::Arc::new(cause),
        }
    }

    /// Whether a tag listing failed for want of the endpoint, not of the
    /// repository: see [`RegistryError::TagsUnlisted`].
    pub fn is_unlisted(&self) -> bool {
        matches!(self, RegistryError::TagsUnlisted { .. })
    }

    /// Whether the error means "does not exist".
    pub fn is_not_found(&self) -> bool {
        match self {
            RegistryError::NotFound { .. } => true,
            RegistryError::Status { status, .. } => *status == 404,
            _ => false,
        }
    }

    /// An upload refused for its form rather than its content: 413 too
    /// large, 405/501 not supported, 400 with an upload-shape code (ECR). The
    /// client then changes how it uploads to that registry, so the blob is
    /// worth sending again at once.
    pub fn refuses_upload_form(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => match status {
                405 | 413 | 501 => true,
                400 => ["BLOB_UPLOAD_INVALID", "SIZE_INVALID", "UNSUPPORTED"]
                    .iter()
                    .any(|code| self.has_code(code)),
                _ => false,
            },
            _ => false,
        }
    }

    /// A manifest refused because the registry lacks something it
    /// references: worth repairing the image and trying once more.
    /// Artifactory says `MANIFEST_INVALID` when a blob its HEAD vouched for
    /// cannot be read.
    pub fn lacks_reference(&self) -> bool {
        [
            "MANIFEST_BLOB_UNKNOWN",
            "BLOB_UNKNOWN",
            "MANIFEST_UNKNOWN",
            "MANIFEST_INVALID",
        ]
        .iter()
        .any(|code| self.has_code(code))
    }

    /// A write refused because its repository does not exist, on a
    /// registry that does not create repositories on push: 404 with
    /// `NAME_UNKNOWN` (ECR, GitLab), or Harbor's `project … not found`.
    pub fn names_missing_repository(&self) -> bool {
        match self {
            RegistryError::Status {
                status: 404,
                message,
                ..
            } => {
                let message = message.to_ascii_lowercase();
                self.has_code("NAME_UNKNOWN")
                    || (message.contains("project") && message.contains("not found"))
            }
            _ => false,
        }
    }

    /// A catalog request answered in a way that means the registry does not
    /// list its repositories (to these credentials), not that it failed:
    /// 404, 401 (also refused basic credentials), 403, 405, or a 4xx with
    /// `UNSUPPORTED` (Docker Hub, GHCR, ECR). What it answered, for the
    /// message; `None` for anything else (a 5xx, no answer, a bad token
    /// service, an OCI layout directory that is not there), which is a
    /// failure.
    pub fn catalog_refusal(&self) -> Option<CatalogRefusal> {
        match self {
            RegistryError::LoginRefused { .. } => Some(CatalogRefusal {
                status: 401,
                code: None,
            }),
            RegistryError::Status { status, codes, .. } => {
                let unsupported = codes.iter().find(|c| *c == "UNSUPPORTED");
                let refuses = matches!(status, 401 | 403 | 404 | 405)
                    || (unsupported.is_some() && (400..500).contains(status) && *status != 429);
                refuses.then(|| CatalogRefusal {
                    status: *status,
                    code: unsupported.cloned(),
                })
            }
            _ => None,
        }
    }

    /// Whether the error carries the given OCI error code, e.g. `BLOB_UNKNOWN`.
    pub fn has_code(&self, code: &str) -> bool {
        matches!(self, RegistryError::Status { codes, .. } if codes.iter().any(|c| c == code))
    }

    /// Turns an I/O error from a blob stream into a registry error, keeping
    /// digest mismatches recognisable.
    pub fn from_stream(what: &str, err: std::io::Error) -> RegistryError {
        if err
            .get_ref()
            .is_none_or(|inner| !inner.is::<BlobMismatch>())
        {
            return RegistryError::Io {
                path: what.to_string(),
                source: err,
            };
        }
        let kind = err.kind();
        match err
            .into_inner()
            .map(|inner| inner.downcast::<BlobMismatch>())
        {
            Some(Ok(mismatch)) => RegistryError::Verification(*mismatch),
            Some(Err(other)) => RegistryError::Io {
                path: what.to_string(),
                source: std::io::Error::new(kind, other),
            },
            None => RegistryError::Io {
                path: what.to_string(),
                source: kind.into(),
            },
        }
    }
}

/// How a registry said it does not list its repositories: the status of its
/// answer to `GET /v2/_catalog`, and the `UNSUPPORTED` code when it gave one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogRefusal {
    /// HTTP status.
    pub status: u16,
    /// `UNSUPPORTED`, when the answer carried it.
    pub code: Option<String>,
}

impl CatalogRefusal {
    /// Whether the answer was about who asked (401, 403): the registry may
    /// list its repositories to other credentials, or want a login.
    pub fn is_about_credentials(&self) -> bool {
        matches!(self.status, 401 | 403)
    }
}

impl std::fmt::Display for CatalogRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GET /v2/_catalog answered {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        Ok(())
    }
}

fn describe_codes(codes: &[String], message: &str) -> String {
    match (codes.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!(": {message}"),
        (false, true) => format!(" {}", codes.join(", ")),
        (false, false) => format!(" {}: {message}", codes.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: &str, message: &str) -> RegistryError {
        RegistryError::Status {
            method: "PUT".into(),
            url: "https://r.example/v2/apps/web/manifests/1.0".into(),
            status,
            codes: [code]
                .into_iter()
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
            message: message.into(),
            retry_after: None,
        }
    }

    fn catalog_status(status: u16, codes: &[&str]) -> RegistryError {
        RegistryError::Status {
            method: "GET".into(),
            url: "https://registry.example/v2/_catalog?n=1000".into(),
            status,
            codes: codes.iter().map(|c| c.to_string()).collect(),
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn a_missing_repository_is_told_by_its_404() {
        let ecr =
            "The repository with name 'apps/web' does not exist in the registry with id '123'";
        let table = [
            (status(404, "NAME_UNKNOWN", ecr), true),
            (status(404, "NOT_FOUND", "project apps not found"), true),
            (status(404, "NAME_UNKNOWN", ""), true),
            // A blob or manifest that is not there is no missing repository.
            (
                status(404, "BLOB_UNKNOWN", "blob unknown to registry"),
                false,
            ),
            (status(404, "", ""), false),
            // A refusal for another reason, whatever it says.
            (status(403, "DENIED", "project apps not found"), false),
            (status(400, "NAME_UNKNOWN", ecr), false),
        ];
        for (error, missing) in table {
            assert_eq!(error.names_missing_repository(), missing, "{error}");
        }
    }

    /// Which answers to `GET /v2/_catalog` mean "this registry lists no
    /// repositories" (a rule problem) and which are failures (the plan stops).
    #[test]
    fn which_catalog_answers_mean_no_catalog() {
        let cases = [
            (
                catalog_status(404, &["NOT_FOUND"]),
                Some("GET /v2/_catalog answered 404"),
            ),
            (
                catalog_status(401, &["UNAUTHORIZED"]),
                Some("GET /v2/_catalog answered 401"),
            ),
            (
                catalog_status(403, &["DENIED"]),
                Some("GET /v2/_catalog answered 403"),
            ),
            (
                catalog_status(405, &[]),
                Some("GET /v2/_catalog answered 405"),
            ),
            (
                catalog_status(400, &["UNSUPPORTED"]),
                Some("GET /v2/_catalog answered 400 UNSUPPORTED"),
            ),
            (
                catalog_status(405, &["UNSUPPORTED"]),
                Some("GET /v2/_catalog answered 405 UNSUPPORTED"),
            ),
            // An OCI layout store that is not there is a mistake, not a
            // registry without a catalog.
            (
                RegistryError::NotFound {
                    what: "OCI layout store /srv/layouts".into(),
                },
                None,
            ),
            (
                RegistryError::LoginRefused {
                    registry: "registry.example".into(),
                    origin: "the variables U and P".into(),
                },
                Some("GET /v2/_catalog answered 401"),
            ),
            (catalog_status(400, &[]), None),
            (catalog_status(429, &["UNSUPPORTED"]), None),
            (catalog_status(500, &[]), None),
            (catalog_status(503, &["UNSUPPORTED"]), None),
            (
                RegistryError::transport(
                    "GET",
                    "https://registry.example/v2/_catalog",
                    std::io::Error::other("connection refused"),
                ),
                None,
            ),
            (
                RegistryError::Auth {
                    registry: "registry.example".into(),
                    message: "the token service failed".into(),
                },
                None,
            ),
        ];
        for (error, expected) in cases {
            let refusal = error.catalog_refusal().map(|r| r.to_string());
            assert_eq!(refusal.as_deref(), expected, "{error}");
        }
    }

    #[test]
    fn a_manifest_refused_for_what_the_registry_lacks_is_worth_a_repair() {
        let table = [
            (status(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown"), true),
            // Artifactory, after a blob HEAD that said 200 for nothing.
            (status(400, "MANIFEST_INVALID", "manifest invalid"), true),
            (status(404, "BLOB_UNKNOWN", ""), true),
            (status(404, "MANIFEST_UNKNOWN", ""), true),
            (status(404, "NAME_UNKNOWN", ""), false),
            (status(403, "DENIED", ""), false),
            (status(500, "", "oops"), false),
        ];
        for (error, repair) in table {
            assert_eq!(error.lacks_reference(), repair, "{error}");
        }
    }

    #[test]
    fn a_refused_login_reads_as_before() {
        let error = RegistryError::LoginRefused {
            registry: "registry.example".into(),
            origin: "the variables U and P".into(),
        };
        assert_eq!(
            error.to_string(),
            "authentication with registry.example failed: the registry refused the credentials from the variables U and P"
        );
    }
}
