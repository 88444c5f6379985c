//! The OCI 1.1 referrers API, played by a [`FaultProxy`] in front of a real
//! docker-registry (Distribution 2.8 has none), as Harbor, Zot, ACR, ECR
//! and GAR serve it:
//!
//! - a manifest `PUT` whose manifest has a `subject` is recorded once the
//!   registry accepted it, and answered with `OCI-Subject: <digest>`, the
//!   header that tells a client the registry indexed it (so it writes no
//!   referrers fallback tag);
//! - `GET /v2/<name>/referrers/<digest>` answers an image index of the
//!   descriptors of the manifests of `<name>` whose `subject` is
//!   `<digest>` (an empty one when there are none: never a 404), each with
//!   its `artifactType` (the manifest's, else its config's media type) and
//!   its annotations; `?artifactType=` filters, and the answer then says
//!   `OCI-Filters-Applied: artifactType`;
//! - a manifest `DELETE` by digest takes it out of every listing;
//! - [`ReferrersApi::serve_in_pages`]: listings of more than `n` come in
//!   pages, each with a `Link` to the next, as the spec allows.
//!
//! The registry only knows what was pushed through the proxy: a source
//! "with the API" is seeded through it. It takes the proxy's
//! `answer_seeing` and `rewrite` hooks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hoist::digest::Digest;
use serde_json::{Value, json};

use super::fault_proxy::{FaultProxy, Incoming, Reply};
use super::personality_writes::repository_of;

/// The OCI image index media type, which a referrers listing is.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The referrers a proxy serves, for tests to read without HTTP.
#[derive(Clone, Default)]
pub struct ReferrersApi {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// (repository, subject) → the descriptors of its referrers, by digest.
    listed: BTreeMap<(String, String), BTreeMap<String, Value>>,
    /// Manifest `PUT`s with a subject that the registry has not answered
    /// yet, by path: recorded only once it accepts them.
    pending: BTreeMap<String, Vec<Pushed>>,
    /// Descriptors per page of a listing (all in one when `None`).
    page_size: Option<usize>,
}

/// A manifest with a subject, as pushed.
struct Pushed {
    repository: String,
    subject: String,
    descriptor: Value,
}

impl ReferrersApi {
    /// Makes the registry behind `proxy` one with the referrers API.
    pub fn serve(proxy: &FaultProxy) -> ReferrersApi {
        let api = ReferrersApi::default();
        let seeing = api.clone();
        proxy.answer_seeing(move |request| seeing.see(request));
        let answered = api.clone();
        proxy.rewrite(move |method, path, raw| answered.answered(method, path, raw));
        api
    }

    /// Like [`ReferrersApi::serve`], listing at most `n` referrers a page.
    pub fn serve_in_pages(proxy: &FaultProxy, n: usize) -> ReferrersApi {
        let api = ReferrersApi::serve(proxy);
        api.state.lock().unwrap().page_size = Some(n.max(1));
        api
    }

    /// The descriptors the API lists for `subject` in `repository`, in
    /// digest order.
    pub fn listing(&self, repository: &str, subject: &str) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .listed
            .get(&(repository.to_string(), subject.to_string()))
            .map(|by_digest| by_digest.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Serves a referrers listing, records a manifest `PUT` with a subject,
    /// forgets a deleted manifest; lets everything else through.
    fn see(&self, request: &Incoming<'_>) -> Option<Reply> {
        let repository = repository_of(request.path)?.to_string();
        let path = request.path;
        match request.method {
            "GET" | "HEAD" if path.contains("/referrers/") => Some(self.answer_listing(request)),
            "PUT" if path.contains("/manifests/") => {
                if let Some((subject, descriptor)) =
                    referrer_descriptor(request.body, request.header("content-type"))
                {
                    let pushed = Pushed {
                        repository,
                        subject,
                        descriptor,
                    };
                    let mut state = self.state.lock().unwrap();
                    state
                        .pending
                        .entry(path.to_string())
                        .or_default()
                        .push(pushed);
                }
                None
            }
            "DELETE" => {
                let (_, digest) = path.split_once("/manifests/")?;
                let mut state = self.state.lock().unwrap();
                for by_digest in state.listed.values_mut() {
                    by_digest.remove(digest);
                }
                None
            }
            _ => None,
        }
    }

    /// The registry answered a request: a manifest `PUT` it accepted is
    /// listed from now on and its answer says `OCI-Subject`.
    fn answered(&self, method: &str, path: &str, raw: &mut Vec<u8>) {
        if method != "PUT" || !path.contains("/manifests/") {
            return;
        }
        let mut state = self.state.lock().unwrap();
        let Some(pushed) = state.pending.get_mut(path).and_then(|p| p.pop()) else {
            return;
        };
        if !raw.starts_with(b"HTTP/1.1 201") && !raw.starts_with(b"HTTP/1.0 201") {
            return;
        }
        let digest = pushed.descriptor["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        state
            .listed
            .entry((pushed.repository, pushed.subject.clone()))
            .or_default()
            .insert(digest, pushed.descriptor);
        with_header(raw, "OCI-Subject", &pushed.subject);
    }

    /// `GET /v2/<name>/referrers/<digest>[?artifactType=…]`.
    fn answer_listing(&self, request: &Incoming<'_>) -> Reply {
        let repository = repository_of(request.path).unwrap_or_default();
        let rest = request
            .path
            .split_once("/referrers/")
            .map_or("", |(_, r)| r);
        let (subject, query) = rest.split_once('?').unwrap_or((rest, ""));
        if subject.parse::<Digest>().is_err() {
            return Reply::status(400)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DIGEST_INVALID","message":"invalid digest"}]}"#);
        }
        let wanted = query_value(query, "artifactType");
        let manifests: Vec<Value> = self
            .listing(repository, subject)
            .into_iter()
            .filter(|d| wanted.as_deref().is_none_or(|t| d["artifactType"] == t))
            .collect();
        let page_size = self.state.lock().unwrap().page_size;
        let page: usize = query_value(query, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let (manifests, more) = match page_size {
            Some(n) => (
                manifests.iter().skip(page * n).take(n).cloned().collect(),
                manifests.len() > (page + 1) * n,
            ),
            None => (manifests, false),
        };
        let body = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        });
        let mut reply = Reply::status(200)
            .header("Content-Type", OCI_INDEX)
            .body(body.to_string());
        if more {
            let path = request.path.split('?').next().unwrap_or_default();
            // The filter goes on to the next page as it was asked.
            let filter: String = query
                .split('&')
                .filter(|pair| pair.starts_with("artifactType="))
                .map(|pair| format!("&{pair}"))
                .collect();
            reply = reply.header(
                "Link",
                format!("<{path}?page={}{filter}>; rel=\"next\"", page + 1),
            );
        }
        match wanted {
            Some(_) => reply.header("OCI-Filters-Applied", "artifactType"),
            None => reply,
        }
    }
}

/// The subject of a pushed manifest and the descriptor the referrers API
/// lists it with; `None` for a manifest without a subject.
pub fn referrer_descriptor(body: &[u8], content_type: Option<&str>) -> Option<(String, Value)> {
    let manifest: Value = serde_json::from_slice(body).ok()?;
    let subject = manifest["subject"]["digest"].as_str()?.to_string();
    let media_type = manifest["mediaType"]
        .as_str()
        .or(content_type)
        .unwrap_or_default();
    let is_index = manifest.get("manifests").is_some();
    let artifact_type = match manifest["artifactType"].as_str() {
        Some(t) if !t.is_empty() => Some(t),
        _ if is_index => None,
        _ => manifest["config"]["mediaType"].as_str(),
    };
    let mut descriptor = json!({
        "mediaType": media_type,
        "digest": Digest::sha256_of(body).to_string(),
        "size": body.len(),
    });
    if let Some(artifact_type) = artifact_type {
        descriptor["artifactType"] = json!(artifact_type);
    }
    if let Some(annotations) = manifest.get("annotations").filter(|a| a.is_object()) {
        descriptor["annotations"] = annotations.clone();
    }
    Some((subject, descriptor))
}

/// The percent-decoded value of `name` in a query string.
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Adds a header line to a raw HTTP answer.
fn with_header(raw: &mut Vec<u8>, name: &str, value: &str) {
    if let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let line = format!("\r\n{name}: {value}");
        raw.splice(end..end, line.into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::{percent_decode, query_value, referrer_descriptor};

    /// A listing's descriptor: the manifest's artifactType, else its
    /// config's media type; its annotations; no subject, no descriptor.
    #[test]
    fn descriptors_are_the_specs() {
        let sbom = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"},"subject":{"digest":"sha256:aa"},"annotations":{"a":"b"}}"#;
        let (subject, descriptor) = referrer_descriptor(sbom, None).unwrap();
        assert_eq!(subject, "sha256:aa");
        assert_eq!(descriptor["artifactType"], "application/spdx+json");
        assert_eq!(descriptor["annotations"]["a"], "b");
        assert_eq!(descriptor["size"], sbom.len());
        let plain = br#"{"config":{"mediaType":"application/vnd.example+json"},"subject":{"digest":"sha256:bb"}}"#;
        let (_, descriptor) =
            referrer_descriptor(plain, Some("application/vnd.oci.image.manifest.v1+json")).unwrap();
        assert_eq!(descriptor["artifactType"], "application/vnd.example+json");
        assert!(descriptor.get("annotations").is_none());
        assert!(referrer_descriptor(br#"{"config":{}}"#, None).is_none());
    }

    /// `artifactType=application%2Fspdx%2Bjson` is `application/spdx+json`.
    #[test]
    fn query_values_are_percent_decoded() {
        let query = "n=10&artifactType=application%2Fspdx%2Bjson";
        assert_eq!(
            query_value(query, "artifactType").as_deref(),
            Some("application/spdx+json")
        );
        assert_eq!(percent_decode("a/b+c"), "a/b+c");
        assert_eq!(query_value(query, "last"), None);
    }
}
