//! Promotion records: for every image hoist writes to a target, an in-toto
//! statement of where it came from, by which rule and run, signed as a
//! DSSE envelope in a Sigstore bundle and attached to the image as an OCI
//! 1.1 referrer (the fallback tag where the registry has no referrers
//! API), as `cosign attest --new-bundle-format` attaches attestations.
//!
//! Written after the image and all its tags, never before; read back by
//! `hoist history` and checked by `hoist verify` (`require_record`).

mod attach;
mod envelope;
mod error;
mod history;
mod key;
mod read;
mod statement;

use std::time::{SystemTime, UNIX_EPOCH};

pub use attach::{Attached, Attaching, attach, record_manifest};
pub use envelope::{BUNDLE_MEDIA_TYPE, Bundle, Envelope, IN_TOTO_PAYLOAD, pae};
pub use error::RecordError;
pub use history::{ImageHistory, RecordLine, history};
pub use key::{SigningKey, SigningKeyError};
pub use read::{Found, records, referrers};
pub use statement::{
    Admission, CiRun, Endpoint, PROMOTION_PREDICATE, Promotion, STATEMENT_TYPE, Statement, Subject,
    rfc3339,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::registry::{ManifestHead, Registry};

/// A record a run attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordWritten {
    /// Target registry.
    pub registry: String,
    /// Target repository.
    pub repository: String,
    /// The promoted image.
    pub digest: Digest,
    /// The record's manifest, a referrer of the image.
    pub record: Digest,
    /// The referrers fallback tag updated, where the registry has no
    /// referrers API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_tag: Option<String>,
}

/// What signs the records of a run, and what it says of the run.
#[derive(Debug)]
pub struct Recorder {
    /// The signing key.
    pub key: SigningKey,
    /// The CI run, where the environment says.
    pub run: Option<CiRun>,
    /// The digest of the reviewed plan applied (`apply --plan`).
    pub plan_digest: Option<Digest>,
}

/// One image a run wrote to one target repository: what its record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promoted {
    /// The rules that promoted it.
    pub rules: Vec<String>,
    /// The source registry.
    pub source: Endpoint,
    /// The source repository.
    pub source_repository: String,
    /// The source image's digest.
    pub source_digest: Digest,
    /// The source tags.
    pub source_tags: Vec<String>,
    /// The target registry.
    pub target: Endpoint,
    /// The target repository.
    pub repository: String,
    /// The digest written.
    pub digest: Digest,
    /// Every target tag written for it.
    pub tags: Vec<String>,
    /// The gate that admitted it.
    pub gate: Option<Admission>,
    /// The image's manifest as the run wrote it (digest, media type,
    /// size), when the run has it; else it is asked for.
    pub subject: Option<ManifestHead>,
    /// The image's referrers fallback tag is known to be absent (a
    /// repository new in this run, no fallback tag written): not asked for.
    pub fallback_absent: bool,
}

impl Recorder {
    /// A recorder signing with `key`.
    pub fn new(key: SigningKey, run: Option<CiRun>, plan_digest: Option<Digest>) -> Recorder {
        Recorder {
            key,
            run,
            plan_digest,
        }
    }

    /// The statement recording `promoted`, at `seconds` since the epoch.
    pub fn statement(&self, promoted: &Promoted, seconds: u64) -> Statement<Promotion> {
        let at = |endpoint: &Endpoint, repository: &str, digest: &Digest| {
            format!("{}/{repository}@{digest}", endpoint.location)
        };
        Statement {
            type_: STATEMENT_TYPE.to_string(),
            subject: vec![Subject::new(
                &format!("{}/{}", promoted.target.location, promoted.repository),
                &promoted.digest,
            )],
            predicate_type: PROMOTION_PREDICATE.to_string(),
            predicate: Promotion {
                src_ref: at(
                    &promoted.source,
                    &promoted.source_repository,
                    &promoted.source_digest,
                ),
                dst_ref: at(&promoted.target, &promoted.repository, &promoted.digest),
                digest: promoted.digest.to_string(),
                timestamp: rfc3339(seconds),
                builder_id: format!("hoist/{}", env!("CARGO_PKG_VERSION")),
                rules: promoted.rules.clone(),
                source: promoted.source.clone(),
                target: promoted.target.clone(),
                source_tags: promoted.source_tags.clone(),
                tags: promoted.tags.clone(),
                plan_digest: self.plan_digest.as_ref().map(Digest::to_string),
                gate: promoted.gate.clone(),
                run: self.run.clone(),
            },
        }
    }

    /// Signs the record of `promoted` and attaches it to the image in `target`.
    pub fn write(
        &self,
        target: &dyn Registry,
        promoted: &Promoted,
    ) -> Result<Attached, RecordError> {
        let head = match &promoted.subject {
            Some(subject) => subject.clone(),
            None => target
                .manifest_head(&promoted.repository, &promoted.digest.to_string())
                .map_err(|cause| RecordError::Write {
                    step: "(reading) the image's manifest",
                    cause: Box::new(cause),
                })?
                .ok_or(RecordError::ImageMissing)?,
        };
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let statement = self.statement(promoted, seconds);
        // A struct of strings and maps always serialises.
        let payload = serde_json::to_vec(&statement).unwrap_or_default();
        let bundle = Bundle::of_statement(&payload, &self.key);
        let bytes = serde_json::to_vec(&bundle).unwrap_or_default();
        attach(
            target,
            &promoted.repository,
            &head,
            &bytes,
            &Attaching {
                created: rfc3339(seconds),
                fallback_absent: promoted.fallback_absent,
            },
        )
    }

    /// Makes the empty config blob every record of `repository` shares
    /// present in it, once per run and repository, before its records are
    /// written side by side (`absent`: the repository is new, so it is
    /// not asked for first).
    pub fn prepare(
        &self,
        target: &dyn Registry,
        repository: &str,
        absent: bool,
    ) -> Result<(), RecordError> {
        attach::put_config(target, repository, absent)
    }
}

#[cfg(test)]
mod tests;
