//! Platform filters as rules (`platforms`) and `hoist promote --platform`
//! apply them: an index keeps the children built for the wanted platforms
//! (a new index, with a new digest); a single-platform image is kept as it
//! is when its config names a wanted platform, and is not promoted otherwise.

use std::io::Read;

use serde::Deserialize;

use crate::digest::Digest;
use crate::manifest::{FilterError, Manifest, filter_index};
use crate::platform::Platform;
use crate::registry::{ReadOnly, RegistryError};

/// Image configs larger than this are not read for their platform.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Config media types that name the platform an image is built for.
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// What image `digest` of `repository` becomes when only `platforms` are
/// wanted: the digest the target gets (the filtered index's, or the image's
/// own when it is built for a wanted platform), or why it is not promoted.
pub fn filter_image(
    store: &ReadOnly,
    repository: &str,
    digest: &Digest,
    platforms: &[Platform],
) -> Result<Result<Digest, FilterError>, RegistryError> {
    let manifest = store.manifest_get(repository, &digest.to_string())?;
    if manifest.is_index() {
        return Ok(filter_index(&manifest, platforms).map(|m| m.digest));
    }
    let Some(built_for) = image_platform(store, repository, &manifest)? else {
        // Not built for a platform (an artifact): nothing to filter.
        return Ok(Ok(manifest.digest));
    };
    let wanted = platforms.iter().any(|p| {
        p.matches(
            &built_for.os,
            &built_for.architecture,
            built_for.variant.as_deref(),
        )
    });
    Ok(if wanted {
        Ok(manifest.digest)
    } else {
        Err(FilterError::NotWanted {
            wanted: platforms.to_vec(),
            built_for: built_for.to_string(),
        })
    })
}

/// The platform fields of an image config.
#[derive(Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

impl std::fmt::Display for ConfigPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// The platform an image manifest's config names; `None` for an artifact
/// (a config of another type, or one without `os` and `architecture`).
fn image_platform(
    store: &ReadOnly,
    repository: &str,
    manifest: &Manifest,
) -> Result<Option<ConfigPlatform>, RegistryError> {
    let view = manifest.view().map_err(|source| RegistryError::Manifest {
        what: manifest.digest.to_string(),
        source,
    })?;
    let Some(config) = view.blobs.first() else {
        return Ok(None);
    };
    if !IMAGE_CONFIGS.contains(&config.media_type.as_str()) || config.size > MAX_CONFIG_BYTES {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    store
        .blob_get(repository, &config.digest, config.size)?
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Protocol {
            registry: repository.to_string(),
            message: format!(
                "reading the config {} of {}: {e}",
                config.digest, manifest.digest
            ),
        })?;
    let platform: ConfigPlatform = match serde_json::from_slice(&bytes) {
        Ok(platform) => platform,
        Err(_) => return Ok(None),
    };
    Ok((!platform.os.is_empty() && !platform.architecture.is_empty()).then_some(platform))
}
