//! Why a promotion record could not be written.

use crate::manifest::ManifestError;
use crate::referrers::ReferrersIndexError;
use crate::registry::RegistryError;

/// Why a record could not be written (each says what was promoted and
/// what was not: the image is in the target, its evidence is not).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A request failed.
    #[error("promoted, but its promotion record was not written: writing {step}: {cause}")]
    Write {
        /// What was being written.
        step: &'static str,
        /// What the registry said.
        cause: Box<RegistryError>,
    },
    /// The fallback tag holds something other than an index.
    #[error(
        "promoted, but its promotion record was not written: the referrers fallback tag {tag} holds no index ({cause})"
    )]
    Index {
        /// The tag.
        tag: String,
        /// What it holds.
        cause: ReferrersIndexError,
    },
    /// The record's own manifest could not be described (never expected).
    #[error("promoted, but its promotion record was not written: {0}")]
    Manifest(ManifestError),
    /// The image is not in the target after all.
    #[error("promoted, but its promotion record was not written: the image is not in the target")]
    ImageMissing,
}
