//! OCI 1.1 artifacts attached to an image, shaped as the tools write them:
//! `oras attach --artifact-type T` (an image manifest with `artifactType`,
//! the empty config `{}` of media type `application/vnd.oci.empty.v1+json`,
//! one layer per file, a `subject`), and cosign's signature referrer
//! (`cosign sign --registry-referrers-mode=oci-1-1`: the same shape, its
//! layer the signed simple-signing payload). They are pushed by digest, as
//! those tools push them; where the registry has no referrers API the
//! pusher keeps the fallback tag itself ([`add_to_fallback_index`]).

use hoist::digest::Digest;
use hoist::manifest::{Manifest, OCI_INDEX, OCI_MANIFEST};
use hoist::registry::Registry;
use serde_json::{Value, json};

use super::TestRegistry;
use super::cosign::{Signer, simple_signing_payload};
use super::referrers_api::referrer_descriptor;

/// The empty descriptor's media type (the config of an artifact).
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// An SPDX SBOM.
pub const SPDX: &str = "application/spdx+json";
/// cosign's signature artifact type.
pub const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The annotation oras sets on each file's layer.
pub const TITLE: &str = "org.opencontainers.image.title";

/// Pushes `bytes` as a blob of `media_type` and returns its layer
/// descriptor, titled as oras titles a file.
pub fn file_layer(
    store: &dyn Registry,
    repository: &str,
    media_type: &str,
    bytes: &[u8],
    title: &str,
) -> Value {
    let digest = put_blob(store, repository, bytes);
    json!({
        "mediaType": media_type,
        "digest": digest.to_string(),
        "size": bytes.len(),
        "annotations": { TITLE: title },
    })
}

/// Attaches an artifact of `artifact_type` holding `layers` to `subject`,
/// with `annotations` on the manifest: pushed by digest, returned.
pub fn attach(
    store: &dyn Registry,
    repository: &str,
    subject: &Manifest,
    artifact_type: &str,
    layers: Vec<Value>,
    annotations: &[(&str, &str)],
) -> Manifest {
    let empty = put_blob(store, repository, b"{}");
    let mut body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": { "mediaType": EMPTY, "digest": empty.to_string(), "size": 2, "data": "e30=" },
        "layers": layers,
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest.to_string(),
            "size": subject.bytes.len(),
        },
    });
    if !annotations.is_empty() {
        let map: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        body["annotations"] = Value::Object(map);
    }
    let manifest = manifest(body.to_string().into_bytes(), OCI_MANIFEST);
    store
        .manifest_put(repository, &manifest.digest.to_string(), &manifest)
        .expect("push the artifact manifest");
    manifest
}

/// An SPDX SBOM of `subject`, attached to it.
pub fn attach_sbom(store: &dyn Registry, repository: &str, subject: &Manifest) -> Manifest {
    let document = json!({
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{repository}@{}", subject.digest),
        "packages": [{ "name": "busybox", "versionInfo": "1.36.1" }],
    })
    .to_string();
    let layer = file_layer(
        store,
        repository,
        SPDX,
        document.as_bytes(),
        "sbom.spdx.json",
    );
    attach(
        store,
        repository,
        subject,
        SPDX,
        vec![layer],
        &[("org.opencontainers.image.created", "2024-05-01T10:00:00Z")],
    )
}

/// A cosign signature of `subject` by `signer`, attached to it.
pub fn attach_signature(
    signer: &Signer,
    store: &dyn Registry,
    repository: &str,
    subject: &Manifest,
) -> Manifest {
    let payload = simple_signing_payload(&subject.digest, repository, &[]);
    let layer = signer.signed_layer(store, repository, &payload);
    attach(
        store,
        repository,
        subject,
        COSIGN_SIGNATURE,
        vec![layer],
        &[("dev.sigstore.cosign/signer", "ci")],
    )
}

/// The referrers fallback tag of `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    subject.to_string().replacen(':', "-", 1)
}

/// What a client pushing `referrer` to a registry without the referrers
/// API does (oras, notation): read the index under the fallback tag of its
/// subject (none: an empty one), add the referrer's descriptor, push it back.
pub fn add_to_fallback_index(store: &dyn Registry, repository: &str, referrer: &Manifest) {
    let (subject, descriptor) =
        referrer_descriptor(&referrer.bytes, Some(&referrer.media_type)).expect("a referrer");
    let tag = fallback_tag(&subject.parse().expect("subject digest"));
    let mut index = match store.manifest_head(repository, &tag).expect("HEAD") {
        Some(_) => serde_json::from_slice(&store.manifest_get(repository, &tag).unwrap().bytes)
            .expect("index JSON"),
        None => json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] }),
    };
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(descriptor);
    let index = manifest(index.to_string().into_bytes(), OCI_INDEX);
    store
        .manifest_put(repository, &tag, &index)
        .expect("push the fallback index");
}

/// The descriptors listed by the index under `subject`'s fallback tag in
/// `registry`, read over HTTP without hoist; `None` without that tag.
pub fn read_fallback_index(
    registry: &TestRegistry,
    repository: &str,
    subject: &Digest,
) -> Option<Vec<Value>> {
    let tag = fallback_tag(subject);
    let url = format!("{}/v2/{repository}/manifests/{tag}", registry.url());
    let mut response = registry
        .http_agent()
        .get(&url)
        .header("Accept", OCI_INDEX)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    match response.status().as_u16() {
        404 => return None,
        200 => {}
        status => panic!("GET {url}: HTTP {status}"),
    }
    let content_type = response.headers().get("content-type").cloned();
    assert_eq!(
        content_type.as_ref().and_then(|c| c.to_str().ok()),
        Some(OCI_INDEX),
        "{tag} is not an image index"
    );
    let text = response.body_mut().read_to_string().expect("index body");
    let index: Value = serde_json::from_str(&text).expect("index JSON");
    assert_eq!(index["mediaType"], OCI_INDEX, "{text}");
    Some(index["manifests"].as_array().cloned().unwrap_or_default())
}

/// The manifest `repository@digest` in `registry`, read over HTTP without
/// hoist, as JSON; `None` when absent.
pub fn read_manifest_json(
    registry: &TestRegistry,
    repository: &str,
    digest: &Digest,
) -> Option<Value> {
    let url = format!("{}/v2/{repository}/manifests/{digest}", registry.url());
    let mut response = registry
        .http_agent()
        .get(&url)
        .header("Accept", &format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    match response.status().as_u16() {
        404 => return None,
        200 => {}
        status => panic!("GET {url}: HTTP {status}"),
    }
    let bytes = response.body_mut().read_to_vec().expect("manifest body");
    assert_eq!(
        &Digest::sha256_of(&bytes),
        digest,
        "{url} served other bytes"
    );
    Some(serde_json::from_slice(&bytes).expect("manifest JSON"))
}

fn manifest(bytes: Vec<u8>, media_type: &str) -> Manifest {
    Manifest {
        digest: Digest::sha256_of(&bytes),
        bytes,
        media_type: media_type.to_string(),
    }
}

/// Pushes `bytes` as a blob of `repository`; its digest.
pub fn put_blob(store: &dyn Registry, repository: &str, bytes: &[u8]) -> Digest {
    let digest = Digest::sha256_of(bytes);
    store
        .blob_put(
            repository,
            &digest,
            bytes.len() as u64,
            &mut &bytes[..],
            None,
        )
        .expect("push a blob");
    digest
}
