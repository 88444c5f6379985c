//! What `hoist history` reports: the images of a reference and, for each,
//! every promotion record attached to it, oldest first.

use serde::Serialize;

use super::read::{Found, records};
use super::statement::Promotion;
use crate::digest::Digest;
use crate::gate::PublicKey;
use crate::registry::{ReadOnly, RegistryError};

/// One image and its records.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageHistory {
    /// The image.
    pub digest: Digest,
    /// Its tags (those of the repository pointing at it; empty when the
    /// reference named a digest).
    pub tags: Vec<String>,
    /// Its records, oldest first.
    pub records: Vec<RecordLine>,
}

/// One record, as `history` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordLine {
    /// The record's manifest.
    pub record: Digest,
    /// What it says, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// Whether its signature verifies against a key given: `None` when no
    /// key was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// The key it verifies against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
}

impl RecordLine {
    fn of(found: Found, checked: bool) -> RecordLine {
        let verified = checked.then_some(found.verified_by.is_some());
        let (promotion, unreadable) = match found.record {
            Ok(statement) => (Some(statement.predicate), None),
            Err(why) => (None, Some(why)),
        };
        RecordLine {
            record: found.manifest,
            promotion,
            unreadable,
            verified,
            verified_by: found.verified_by,
        }
    }
}

/// Each image's records, checked against `keys` (none: not checked).
pub fn history(
    store: &ReadOnly,
    repository: &str,
    images: Vec<(Digest, Vec<String>)>,
    keys: &[PublicKey],
) -> Result<Vec<ImageHistory>, RegistryError> {
    let mut out = Vec::new();
    for (digest, tags) in images {
        let mut lines: Vec<RecordLine> = records(store, repository, &digest, keys)?
            .into_iter()
            .map(|found| RecordLine::of(found, !keys.is_empty()))
            .collect();
        lines.sort_by(|a, b| {
            let when = |l: &RecordLine| l.promotion.as_ref().map(|p| p.timestamp.clone());
            when(a).cmp(&when(b))
        });
        out.push(ImageHistory {
            digest,
            tags,
            records: lines,
        });
    }
    Ok(out)
}
