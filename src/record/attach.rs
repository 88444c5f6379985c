//! Attaching a record to the image it is about: the bundle as a blob, an
//! OCI 1.1 artifact manifest whose `subject` is the image, and, where the
//! registry has no referrers API, the referrers fallback tag's index
//! brought up to date (cosign's bundle specification, `specs/BUNDLE_SPEC.md`).

use serde_json::json;

use super::envelope::BUNDLE_MEDIA_TYPE;
use super::error::RecordError;
use super::statement::PROMOTION_PREDICATE;
use crate::digest::Digest;
use crate::manifest::{Manifest, OCI_MANIFEST};
use crate::referrers::{ReferrerDescriptor, ReferrersIndex, fallback_tag};
use crate::registry::{ManifestHead, Registry};

/// The empty JSON object, the config of an artifact that needs none.
const EMPTY_CONFIG: &[u8] = b"{}";
/// Its media type.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Where a record was attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The record's manifest.
    pub manifest: Digest,
    /// The fallback tag updated, on a registry without the referrers API.
    pub fallback_tag: Option<String>,
}

/// The artifact manifest of a bundle about `subject`, created at `created`.
pub fn record_manifest(bundle: &[u8], subject: &ManifestHead, created: &str) -> Manifest {
    let value = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": Digest::sha256_of(EMPTY_CONFIG).to_string(),
            "size": EMPTY_CONFIG.len(),
        },
        "layers": [{
            "mediaType": BUNDLE_MEDIA_TYPE,
            "digest": Digest::sha256_of(bundle).to_string(),
            "size": bundle.len(),
        }],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest.to_string(),
            "size": subject.size,
        },
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": PROMOTION_PREDICATE,
            "org.opencontainers.image.created": created,
        },
    });
    let bytes = value.to_string().into_bytes();
    Manifest {
        digest: Digest::sha256_of(&bytes),
        bytes,
        media_type: OCI_MANIFEST.to_string(),
    }
}

/// How a record is attached: when it was made, and what the run already
/// knows of the repository (so as not to ask).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attaching {
    /// RFC 3339 time of the record.
    pub created: String,
    /// The subject's fallback tag is known to be absent.
    pub fallback_absent: bool,
}

/// Makes the empty config blob present in `repository` (`absent`: known
/// not to be there, so not asked for).
pub fn put_config(
    target: &dyn Registry,
    repository: &str,
    absent: bool,
) -> Result<(), RecordError> {
    let step = |cause| RecordError::Write {
        step: "its config blob",
        cause: Box::new(cause),
    };
    let config = Digest::sha256_of(EMPTY_CONFIG);
    if absent || !target.blob_exists(repository, &config).map_err(step)? {
        target
            .blob_put(repository, &config, 2, &mut &EMPTY_CONFIG[..], None)
            .map_err(step)?;
    }
    Ok(())
}

/// Writes `bundle` about the image `subject` in `repository` of `target`
/// (whose config blob [`put_config`] wrote).
pub fn attach(
    target: &dyn Registry,
    repository: &str,
    subject: &ManifestHead,
    bundle: &[u8],
    how: &Attaching,
) -> Result<Attached, RecordError> {
    let step = |step: &'static str| {
        move |cause| RecordError::Write {
            step,
            cause: Box::new(cause),
        }
    };
    let layer = Digest::sha256_of(bundle);
    target
        .blob_put(
            repository,
            &layer,
            bundle.len() as u64,
            &mut &bundle[..],
            None,
        )
        .map_err(step("its bundle blob"))?;
    let manifest = record_manifest(bundle, subject, &how.created);
    target
        .manifest_put(repository, &manifest.digest.to_string(), &manifest)
        .map_err(step("its manifest"))?;
    let has_api = target
        .referrers(repository, &subject.digest)
        .map_err(step("the referrers listing"))?
        .is_some();
    if has_api {
        return Ok(Attached {
            manifest: manifest.digest,
            fallback_tag: None,
        });
    }
    let tag = fallback_tag(&subject.digest);
    let current = match how.fallback_absent {
        true => None,
        false => Some(target.manifest_get(repository, &tag)),
    };
    let mut index = match current {
        None => ReferrersIndex::default(),
        Some(Ok(current)) => {
            ReferrersIndex::read(&current).map_err(|cause| RecordError::Index {
                tag: tag.clone(),
                cause,
            })?
        }
        Some(Err(e)) if e.is_not_found() => ReferrersIndex::default(),
        Some(Err(cause)) => return Err(step("the referrers fallback tag")(cause)),
    };
    let described = ReferrerDescriptor::of(&manifest).map_err(RecordError::Manifest)?;
    if index.add(&described) {
        target
            .manifest_put(repository, &tag, &index.to_manifest())
            .map_err(step("the referrers fallback tag"))?;
    }
    Ok(Attached {
        manifest: manifest.digest,
        fallback_tag: Some(tag),
    })
}
