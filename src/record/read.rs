//! Reading the records attached to an image back, and checking each: its
//! signature against the keys given, its statement naming the image.

use serde::Deserialize;

use super::envelope::{BUNDLE_MEDIA_TYPE, Bundle, IN_TOTO_PAYLOAD};
use super::statement::{PROMOTION_PREDICATE, Promotion, STATEMENT_TYPE, Statement};
use crate::digest::Digest;
use crate::gate::PublicKey;
use crate::manifest::{Descriptor, is_index};
use crate::referrers::fallback_tag;
use crate::registry::{ReadOnly, RegistryError};

/// A bundle larger than this is not a record hoist wrote.
const MAX_BUNDLE_BYTES: u64 = 1024 * 1024;
/// Referrers read per image, at most.
const MAX_REFERRERS: usize = 256;

/// A promotion record found attached to an image.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The record's manifest.
    pub manifest: Digest,
    /// What it says, or why it cannot be read.
    pub record: Result<Statement<Promotion>, String>,
    /// The key (of those given) its signature verifies against.
    pub verified_by: Option<String>,
}

impl Found {
    /// The predicate, when the record could be read.
    pub fn promotion(&self) -> Option<&Promotion> {
        self.record.as_ref().ok().map(|s| &s.predicate)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The manifests that refer to `digest` in `repository`: the referrers
/// API's answer, else the fallback tag's index, else none.
pub fn referrers(
    store: &ReadOnly,
    repository: &str,
    digest: &Digest,
) -> Result<Vec<Descriptor>, RegistryError> {
    if let Some(listed) = store.referrers(repository, digest)? {
        return Ok(listed);
    }
    match store.manifest_get(repository, &fallback_tag(digest)) {
        Ok(index) => Ok(serde_json::from_slice::<Listing>(&index.bytes)
            .map(|l| l.manifests)
            .unwrap_or_default()),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The promotion records attached to image `digest` of `repository`, each
/// checked against `keys`, in the order the registry lists them.
pub fn records(
    store: &ReadOnly,
    repository: &str,
    digest: &Digest,
    keys: &[PublicKey],
) -> Result<Vec<Found>, RegistryError> {
    let mut found = Vec::new();
    for referrer in referrers(store, repository, digest)?
        .iter()
        .filter(|r| !is_index(&r.media_type))
        .take(MAX_REFERRERS)
    {
        let manifest = store.manifest_get(repository, &referrer.digest.to_string())?;
        let Ok(artifact) = serde_json::from_slice::<ArtifactManifest>(&manifest.bytes) else {
            continue;
        };
        let is_record = artifact.artifact_type.as_deref() == Some(BUNDLE_MEDIA_TYPE)
            && artifact
                .annotations
                .get("dev.sigstore.bundle.predicateType")
                .map(String::as_str)
                == Some(PROMOTION_PREDICATE);
        let Some(layer) = artifact.layers.first().filter(|_| is_record) else {
            continue;
        };
        let bundle = read_bundle(store, repository, layer)?;
        found.push(check(manifest.digest, bundle, digest, keys));
    }
    Ok(found)
}

/// The bundle blob's bytes (`None`: too large to be a record).
fn read_bundle(
    store: &ReadOnly,
    repository: &str,
    layer: &Descriptor,
) -> Result<Option<Vec<u8>>, RegistryError> {
    if layer.size > MAX_BUNDLE_BYTES {
        return Ok(None);
    }
    store
        .blob_bytes(repository, &layer.digest, layer.size, "the record bundle")
        .map(Some)
}

/// What a record's bundle says about `subject`, and whom it verifies by.
fn check(manifest: Digest, bundle: Option<Vec<u8>>, subject: &Digest, keys: &[PublicKey]) -> Found {
    let unreadable = |why: &str| Found {
        manifest: manifest.clone(),
        record: Err(why.to_string()),
        verified_by: None,
    };
    let Some(Ok(bundle)) = bundle.map(|b| serde_json::from_slice::<Bundle>(&b)) else {
        return unreadable("its bundle is not a Sigstore bundle");
    };
    let envelope = &bundle.dsse_envelope;
    if envelope.payload_type != IN_TOTO_PAYLOAD {
        return unreadable("its envelope holds no in-toto statement");
    }
    let Some(Ok(statement)) = envelope
        .payload_bytes()
        .map(|p| serde_json::from_slice::<Statement<Promotion>>(&p))
    else {
        return unreadable("its statement is not a promotion record");
    };
    if statement.type_ != STATEMENT_TYPE || statement.predicate_type != PROMOTION_PREDICATE {
        return unreadable("its statement is not a promotion record");
    }
    if !statement.subject.iter().any(|s| s.is(subject)) {
        return unreadable("its statement is about another image");
    }
    Found {
        verified_by: envelope.signed_by(keys).map(|k| k.name.clone()),
        manifest,
        record: Ok(statement),
    }
}
