//! Registry personalities about writes, played by a [`FaultProxy`] in front
//! of a real docker-registry (docs/registries.md):
//!
//! - [`repositories_must_exist`]: ECR, Harbor and GitLab projects. A
//!   repository must be created before anything is pushed to it; every
//!   request about another one answers 404 `NAME_UNKNOWN`, in ECR's words.
//! - [`lying_blob_head`]: Artifactory. A blob `HEAD` answers 200 for blobs
//!   the registry does not have (a `GET` finds nothing), so a client skips
//!   them, and the manifest `PUT` that follows is refused: 400
//!   `MANIFEST_BLOB_UNKNOWN` by the registry underneath, or rewritten to
//!   400 `MANIFEST_INVALID` as Artifactory says it.
//!
//! Each takes the proxy's `answer` hook (and `lying_blob_head` its `rewrite`
//! hook), so one proxy plays one of them at a time.

use std::collections::{BTreeMap, BTreeSet};

use super::fault_proxy::{FaultProxy, Reply};

/// ECR's answer to a request about a repository it does not have.
pub fn name_unknown_body(repository: &str) -> String {
    format!(
        r#"{{"errors":[{{"code":"NAME_UNKNOWN","message":"The repository with name '{repository}' does not exist in the registry with id '123456789012'"}}]}}"#
    )
}

/// Artifactory's answer to a manifest whose blobs it cannot read.
pub const MANIFEST_INVALID_BODY: &str = r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{"description":"Circuit Breaker Threshold Reached, Breaking Operation. see log output for manifest details."}}]}"#;

/// The repository a `/v2/<name>/…` request is about (`None` for `/v2/`
/// and `/v2/_catalog`).
pub fn repository_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    ["/blobs/", "/manifests/", "/tags/", "/referrers/"]
        .iter()
        .filter_map(|marker| rest.find(marker))
        .min()
        .map(|end| &rest[..end])
}

/// Makes the registry behind `proxy` one where only `existing` repositories
/// exist: a read or write about any other (blob and manifest `HEAD`,
/// `tags/list`, an upload `POST` with or without `?mount=`, a manifest
/// `PUT`) answers 404 `NAME_UNKNOWN`, as ECR does. Pushes to the existing
/// ones go through to the registry, which creates them on the way.
pub fn repositories_must_exist(proxy: &FaultProxy, existing: &[&str]) {
    let existing: BTreeSet<String> = existing.iter().map(|r| r.to_string()).collect();
    proxy.answer(move |_, path| {
        let repository = repository_of(path)?;
        (!existing.contains(repository)).then(|| {
            Reply::status(404)
                .header("Content-Type", "application/json")
                .body(name_unknown_body(repository))
        })
    });
}

/// How the registry refuses a manifest whose blobs it lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestRefusal {
    /// As the registry underneath says it: 400 `MANIFEST_BLOB_UNKNOWN`.
    BlobUnknown,
    /// As Artifactory says it: 400 `MANIFEST_INVALID`.
    Invalid,
}

/// Makes the registry behind `proxy` answer a blob `HEAD` of each digest in
/// `lies` (digest → size) with 200, `Content-Length` and
/// `Docker-Content-Digest`, in every repository, whether it has the blob or
/// not. `GET`s go through, so a blob it lacks is still not found there;
/// the manifest `PUT` it then refuses is said as `refusal` says.
pub fn lying_blob_head(proxy: &FaultProxy, lies: BTreeMap<String, u64>, refusal: ManifestRefusal) {
    proxy.answer(move |method, path| {
        if method != "HEAD" {
            return None;
        }
        let (_, digest) = path.split_once("/blobs/")?;
        let size = *lies.get(digest)?;
        // The body only sets `Content-Length`: an answer to a HEAD has none.
        Some(
            Reply::status(200)
                .header("Content-Type", "application/octet-stream")
                .header("Docker-Content-Digest", digest)
                .body(vec![0; size as usize]),
        )
    });
    if refusal == ManifestRefusal::Invalid {
        proxy.rewrite(|method, path, raw| {
            let refused = method == "PUT"
                && path.contains("/manifests/")
                && String::from_utf8_lossy(raw).contains("MANIFEST_BLOB_UNKNOWN");
            if refused {
                *raw = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{MANIFEST_INVALID_BODY}",
                    MANIFEST_INVALID_BODY.len()
                )
                .into_bytes();
            }
        });
    }
}

/// Makes the registry behind `proxy` one that deletes by tag, and with the
/// tag its manifest and every other tag of it in the repository (Harbor
/// deletes the artifact): a `DELETE /v2/<name>/manifests/<tag>` is answered
/// 202 once the test has deleted the manifest the tag points at, by digest.
/// `agent` and `url` reach the registry itself.
pub fn deletes_every_tag_of_a_digest(proxy: &FaultProxy, agent: ureq::Agent, url: String) {
    proxy.answer(move |method, path| {
        let (repository, reference) = path.strip_prefix("/v2/")?.split_once("/manifests/")?;
        if method != "DELETE" || reference.contains(':') {
            return None;
        }
        let manifest = format!("{url}/v2/{repository}/manifests/{reference}");
        let head = agent
            .head(&manifest)
            .header(
                "Accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.docker.distribution.manifest.list.v2+json, \
                 application/vnd.docker.distribution.manifest.v2+json",
            )
            .call()
            .expect("HEAD the tag");
        let Some(digest) = head.headers().get("docker-content-digest") else {
            return Some(Reply::status(404));
        };
        let digest = digest.to_str().expect("a digest").to_string();
        let deleted = agent
            .delete(&format!("{url}/v2/{repository}/manifests/{digest}"))
            .call()
            .expect("DELETE by digest");
        Some(Reply::status(deleted.status().as_u16()))
    });
}

#[cfg(test)]
mod tests {
    use super::repository_of;

    /// The repository each `/v2/` path names, as the personalities read it.
    #[test]
    fn repository_of_reads_the_name_from_any_v2_path() {
        let table = [
            ("/v2/", None),
            ("/v2/_catalog?n=100", None),
            ("/v2/apps/web/tags/list?n=100", Some("apps/web")),
            ("/v2/apps/web/manifests/1.0", Some("apps/web")),
            ("/v2/a/b/c/blobs/sha256:00", Some("a/b/c")),
            (
                "/v2/apps/db/blobs/uploads/?mount=sha256:00&from=apps/web",
                Some("apps/db"),
            ),
            ("/v2/apps/web/blobs/uploads/1f2e?_state=x", Some("apps/web")),
            ("/v2/apps/web/referrers/sha256:00", Some("apps/web")),
        ];
        for (path, repository) in table {
            assert_eq!(repository_of(path), repository, "{path}");
        }
    }
}
