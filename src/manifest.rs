//! Manifests kept as the registry served them (bytes, media type, digest),
//! with a lenient typed view parsed only to find what they reference.

use serde::Deserialize;

use crate::digest::Digest;
use crate::platform::Platform;

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The `Accept` header for manifest requests: every type hoist can copy.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest accepted, as Distribution and containerd enforce.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A manifest exactly as stored: never re-serialised, so its digest holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The raw bytes.
    pub bytes: Vec<u8>,
    /// Its media type (from the registry's `Content-Type`, or the `mediaType` field).
    pub media_type: String,
    /// Digest of `bytes`.
    pub digest: Digest,
}

/// A content descriptor: what a manifest says about a blob or child manifest.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// For index entries: the platform of that child.
    #[serde(default)]
    pub platform: Option<DescriptorPlatform>,
    /// Foreign layers carry URLs and are not stored by registries.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// The platform an index entry says it is built for, read leniently
/// (compare [`crate::platform::Platform`], the one a rule keeps).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DescriptorPlatform {
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `v8`.
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for DescriptorPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a manifest references, parsed leniently from its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestView {
    /// Child manifests (for an index or manifest list).
    pub manifests: Vec<Descriptor>,
    /// Blobs: the config then the layers (for an image manifest).
    pub blobs: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers), if any.
    pub subject: Option<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// Why manifest bytes could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not shaped like a manifest.
    #[error("invalid manifest JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A media type hoist does not copy.
    #[error("unsupported manifest media type `{0}`")]
    UnsupportedMediaType(String),
    /// Docker schema 1, retired and unsigned-by-digest.
    #[error(
        "Docker schema 1 manifests are not supported (re-push the image with a current builder)"
    )]
    Schema1,
}

/// Whether a media type is an index (it has child manifests).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

impl Manifest {
    /// Wraps raw bytes, working out the media type when the registry did not say.
    pub fn from_bytes(
        bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<Manifest, ManifestError> {
        let raw: RawManifest = serde_json::from_slice(&bytes)?;
        if raw.schema_version == Some(1) {
            return Err(ManifestError::Schema1);
        }
        let header = content_type
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| {
                !c.is_empty() && c != "application/json" && c != "application/octet-stream"
            });
        let media_type = match (header, raw.media_type) {
            (Some(h), _) => h,
            (None, Some(m)) => m,
            (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
            (None, None) => OCI_MANIFEST.to_string(),
        };
        if ![
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            OCI_INDEX,
        ]
        .contains(&media_type.as_str())
        {
            return Err(ManifestError::UnsupportedMediaType(media_type));
        }
        let digest = Digest::sha256_of(&bytes);
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Whether this is an index or manifest list.
    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }

    /// Parses what this manifest references.
    pub fn view(&self) -> Result<ManifestView, ManifestError> {
        let raw: RawManifest = serde_json::from_slice(&self.bytes)?;
        if self.is_index() {
            return Ok(ManifestView {
                manifests: raw.manifests.unwrap_or_default(),
                blobs: Vec::new(),
                subject: raw.subject,
            });
        }
        let mut blobs: Vec<Descriptor> = raw.config.into_iter().collect();
        blobs.extend(raw.layers.unwrap_or_default());
        Ok(ManifestView {
            manifests: Vec::new(),
            blobs,
            subject: raw.subject,
        })
    }
}

/// Why an index cannot be filtered to some platforms. Clone: discovery
/// keeps it in the inventory, and planning says it per tag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Only an index has platforms to choose from.
    #[error("{0} is not an index")]
    NotAnIndex(Digest),
    /// The index's bytes are not the JSON an index is.
    #[error("{0}")]
    Invalid(String),
    /// The index has no `manifests` array.
    #[error("the index lists no manifests")]
    NoManifests,
    /// None of the index's children is built for a wanted platform.
    #[error(
        "the index has none of the platforms {} (it has {})",
        crate::platform::join(wanted),
        if available.is_empty() { "no platforms".to_string() } else { available.join(", ") }
    )]
    NoneOf {
        /// The platforms asked for.
        wanted: Vec<Platform>,
        /// What the index has, as its entries say.
        available: Vec<String>,
    },
    /// A single-platform image built for a platform not asked for.
    #[error(
        "the image is built for {built_for} (its config says), not for {}",
        crate::platform::join(wanted)
    )]
    NotWanted {
        /// The platforms asked for.
        wanted: Vec<Platform>,
        /// The image's platform, from its config.
        built_for: String,
    },
}

/// An index keeping only the children built for `platforms`. Every other
/// field is kept; the bytes are re-serialised, so the digest is new, and it
/// is the same for the same source index and platforms on every run.
pub fn filter_index(index: &Manifest, platforms: &[Platform]) -> Result<Manifest, FilterError> {
    if !index.is_index() {
        return Err(FilterError::NotAnIndex(index.digest.clone()));
    }
    let invalid = |e: &dyn std::fmt::Display| FilterError::Invalid(e.to_string());
    let mut value: serde_json::Value =
        serde_json::from_slice(&index.bytes).map_err(|e| invalid(&e))?;
    let children = value
        .get_mut("manifests")
        .and_then(|m| m.as_array_mut())
        .ok_or(FilterError::NoManifests)?;
    let platform_of = |child: &serde_json::Value| {
        serde_json::from_value::<Descriptor>(child.clone())
            .ok()
            .and_then(|d| d.platform)
    };
    let available: Vec<String> = children
        .iter()
        .filter_map(platform_of)
        .map(|p| p.to_string())
        .collect();
    children.retain(|child| {
        platform_of(child).is_some_and(|p| {
            platforms
                .iter()
                .any(|w| w.matches(&p.os, &p.architecture, p.variant.as_deref()))
        })
    });
    if children.is_empty() {
        return Err(FilterError::NoneOf {
            wanted: platforms.to_vec(),
            available,
        });
    }
    let bytes = serde_json::to_vec(&value).map_err(|e| invalid(&e))?;
    Manifest::from_bytes(bytes, Some(&index.media_type)).map_err(|e| invalid(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_header_or_body() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let m = Manifest::from_bytes(body.to_vec(), None).unwrap();
        assert!(m.is_index());
        let m = Manifest::from_bytes(
            body.to_vec(),
            Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(m.media_type, OCI_INDEX);
        assert_eq!(m.digest, Digest::sha256_of(body));
    }

    #[test]
    fn rejects_garbage_and_unknown_types() {
        assert!(Manifest::from_bytes(b"not json".to_vec(), None).is_err());
        assert!(Manifest::from_bytes(br#"{"schemaVersion":1}"#.to_vec(), None).is_err());
        assert!(
            Manifest::from_bytes(br#"{"schemaVersion":2}"#.to_vec(), Some("text/html")).is_err()
        );
    }

    #[test]
    fn view_lists_config_then_layers() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"c","digest":"{}","size":2}},"layers":[{{"mediaType":"l","digest":"{}","size":3}}]}}"#,
            d('a'),
            d('b')
        );
        let m = Manifest::from_bytes(body.into_bytes(), None).unwrap();
        let view = m.view().unwrap();
        assert_eq!(view.blobs.len(), 2);
        assert_eq!(view.blobs[1].size, 3);
    }

    #[test]
    fn filters_an_index_by_platform() {
        let p = |text: &str| text.parse::<Platform>().unwrap();
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":2,"platform":{{"os":"linux","architecture":"amd64"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}],"annotations":{{"a":"b"}}}}"#,
            d('a'),
            d('b')
        );
        let index = Manifest::from_bytes(body.into_bytes(), None).unwrap();
        let amd = filter_index(&index, &[p("linux/amd64")]).unwrap();
        assert_ne!(amd.digest, index.digest);
        let view = amd.view().unwrap();
        assert_eq!(view.manifests.len(), 1);
        assert_eq!(view.manifests[0].digest.to_string(), d('a'));
        assert!(String::from_utf8_lossy(&amd.bytes).contains("annotations"));
        // Stable: the same input gives the same digest.
        assert_eq!(
            filter_index(&index, &[p("linux/amd64")]).unwrap().digest,
            amd.digest
        );
        let arm = filter_index(&index, &[p("linux/arm64/v8")]).unwrap();
        assert_eq!(arm.view().unwrap().manifests.len(), 1);
        assert!(filter_index(&index, &[p("linux/arm64/v7")]).is_err());
        let err = filter_index(&index, &[p("windows/amd64")]).unwrap_err();
        let err = err.to_string();
        assert!(err.contains("linux/amd64, linux/arm64/v8"), "{err}");
    }
}
