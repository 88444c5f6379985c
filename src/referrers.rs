//! The referrers tag schema of the OCI distribution spec (1.1): where a
//! registry has no referrers API, the clients that push a manifest with a
//! `subject` keep an image index of its referrers under the subject's
//! fallback tag `<alg>-<hex>`. The index is read, added to and pushed back,
//! never rebuilt: an entry another client put there stays as it was.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::manifest::{Manifest, ManifestError, OCI_INDEX};

/// The referrers fallback tag of `subject`: its algorithm (at most 32
/// characters), a hyphen, and its hex digits (at most 64), as the spec's
/// referrers tag schema truncates them: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    let truncated = |text: &str, at: usize| -> String {
        text.chars()
            .take(at)
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    format!(
        "{}-{}",
        truncated(subject.algorithm(), 32),
        truncated(subject.hex(), 64)
    )
}

/// How a referrers listing names one referrer: the descriptor of the
/// manifest, its `artifactType` (the manifest's own, else its config's
/// media type; none for an index without one), and all its annotations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerDescriptor {
    /// The referrer's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// What kind of artifact it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifest's annotations, copied whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
}

/// The fields of a manifest a referrer's descriptor takes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactFields {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<ConfigField>,
    #[serde(default)]
    annotations: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigField {
    #[serde(default)]
    media_type: Option<String>,
}

impl ReferrerDescriptor {
    /// The descriptor a referrers listing gives `manifest`.
    pub fn of(manifest: &Manifest) -> Result<ReferrerDescriptor, ManifestError> {
        let fields: ArtifactFields = serde_json::from_slice(&manifest.bytes)?;
        let own = fields.artifact_type.filter(|t| !t.is_empty());
        let artifact_type = match own {
            Some(own) => Some(own),
            None if manifest.is_index() => None,
            None => fields.config.and_then(|c| c.media_type),
        };
        Ok(ReferrerDescriptor {
            media_type: manifest.media_type.clone(),
            digest: manifest.digest.clone(),
            size: manifest.bytes.len() as u64,
            artifact_type,
            annotations: fields.annotations,
        })
    }
}

/// Why the manifest under a fallback tag cannot be added to.
#[derive(Debug, thiserror::Error)]
pub enum ReferrersIndexError {
    /// The tag holds something else than an image index (GitLab can answer
    /// it with the subject itself): the spec says to stop, not overwrite.
    #[error("it holds a {0}, not an image index")]
    NotAnIndex(String),
    /// Its bytes are not an index's JSON.
    #[error("it is not a valid image index: {0}")]
    Invalid(String),
}

/// The image index under a fallback tag, as read, with what was added.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferrersIndex {
    /// Every field of the index but `manifests`, kept as they were.
    fields: Map<String, Value>,
    /// Its entries, those read kept byte for byte in meaning.
    manifests: Vec<Value>,
}

impl Default for ReferrersIndex {
    fn default() -> Self {
        let mut fields = Map::new();
        fields.insert("schemaVersion".into(), Value::from(2));
        fields.insert("mediaType".into(), Value::from(OCI_INDEX));
        ReferrersIndex {
            fields,
            manifests: Vec::new(),
        }
    }
}

impl ReferrersIndex {
    /// The index a fallback tag holds; an error when the tag holds
    /// anything else.
    pub fn read(manifest: &Manifest) -> Result<ReferrersIndex, ReferrersIndexError> {
        if manifest.media_type != OCI_INDEX {
            return Err(ReferrersIndexError::NotAnIndex(manifest.media_type.clone()));
        }
        let invalid = |why: &str| ReferrersIndexError::Invalid(why.to_string());
        let value: Value =
            serde_json::from_slice(&manifest.bytes).map_err(|e| invalid(&e.to_string()))?;
        let Value::Object(mut fields) = value else {
            return Err(invalid("not a JSON object"));
        };
        let manifests = match fields.remove("manifests") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err(invalid("`manifests` is not a list")),
        };
        Ok(ReferrersIndex { fields, manifests })
    }

    /// Whether an entry names `digest`.
    pub fn lists(&self, digest: &Digest) -> bool {
        self.lists_named(&digest.to_string())
    }

    /// Whether it lists every referrer `other` lists (and maybe more).
    pub fn lists_all(&self, other: &ReferrersIndex) -> bool {
        other.digests().all(|digest| self.lists_named(digest))
    }

    /// Adds, as they are, the entries of `other` it does not list yet;
    /// whether any was added.
    pub fn add_all(&mut self, other: &ReferrersIndex) -> bool {
        let missing: Vec<Value> = other
            .manifests
            .iter()
            .filter(|entry| {
                let digest = entry.get("digest").and_then(Value::as_str);
                digest.is_some_and(|digest| !self.lists_named(digest))
            })
            .cloned()
            .collect();
        let added = !missing.is_empty();
        self.manifests.extend(missing);
        added
    }

    /// The digests its entries name.
    fn digests(&self) -> impl Iterator<Item = &str> {
        self.manifests
            .iter()
            .filter_map(|entry| entry.get("digest").and_then(Value::as_str))
    }

    /// Whether an entry names the digest spelled `digest`.
    fn lists_named(&self, digest: &str) -> bool {
        self.digests().any(|listed| listed == digest)
    }

    /// How many referrers it lists.
    pub fn len(&self) -> usize {
        self.manifests.len()
    }

    /// Whether it lists none.
    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty()
    }

    /// Adds a referrer unless it is listed already; whether it was added.
    pub fn add(&mut self, referrer: &ReferrerDescriptor) -> bool {
        if self.lists(&referrer.digest) {
            return false;
        }
        // A struct of strings, numbers and JSON maps always serialises.
        let entry = serde_json::to_value(referrer).unwrap_or(Value::Null);
        self.manifests.push(entry);
        true
    }

    /// The index as a manifest to push under the fallback tag.
    pub fn to_manifest(&self) -> Manifest {
        let mut fields = self.fields.clone();
        fields.insert("manifests".into(), Value::Array(self.manifests.clone()));
        let bytes = Value::Object(fields).to_string().into_bytes();
        Manifest {
            digest: Digest::sha256_of(&bytes),
            bytes,
            media_type: OCI_INDEX.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OCI_MANIFEST;

    fn manifest(json: &str, media_type: &str) -> Manifest {
        Manifest {
            bytes: json.as_bytes().to_vec(),
            media_type: media_type.to_string(),
            digest: Digest::sha256_of(json.as_bytes()),
        }
    }

    /// The spec's examples: the algorithm, a hyphen, the hex truncated to 64.
    #[test]
    fn fallback_tags_follow_the_referrers_tag_schema() {
        let sha256: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(fallback_tag(&sha256), format!("sha256-{}", "a".repeat(64)));
        let sha512: Digest = format!("sha512:{}", "b".repeat(128)).parse().unwrap();
        assert_eq!(fallback_tag(&sha512), format!("sha512-{}", "b".repeat(64)));
    }

    /// An artifact's own type; else its config's media type; an index
    /// without one has none. Annotations come whole.
    #[test]
    fn a_referrer_is_described_as_the_spec_lists_it() {
        let sbom = manifest(
            r#"{"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"},"annotations":{"a":"b"}}"#,
            OCI_MANIFEST,
        );
        let described = ReferrerDescriptor::of(&sbom).unwrap();
        assert_eq!(
            described.artifact_type.as_deref(),
            Some("application/spdx+json")
        );
        assert_eq!(described.annotations.unwrap()["a"], "b");
        assert_eq!(described.size, sbom.bytes.len() as u64);
        let typed_by_config = manifest(
            r#"{"artifactType":"","config":{"mediaType":"application/vnd.example.sig"}}"#,
            OCI_MANIFEST,
        );
        let described = ReferrerDescriptor::of(&typed_by_config).unwrap();
        assert_eq!(
            described.artifact_type.as_deref(),
            Some("application/vnd.example.sig")
        );
        assert_eq!(described.annotations, None);
        let index = manifest(r#"{"manifests":[]}"#, OCI_INDEX);
        assert_eq!(ReferrerDescriptor::of(&index).unwrap().artifact_type, None);
    }

    /// Adding keeps what was there (other fields and entries as they
    /// were), never lists one referrer twice, and the result reads back.
    #[test]
    fn an_index_is_added_to_not_rebuilt() {
        let other = format!("sha256:{}", "c".repeat(64));
        let existing = manifest(
            &format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","annotations":{{"x":"y"}},"manifests":[{{"digest":"{other}","size":7,"mediaType":"{OCI_MANIFEST}","artifactType":"t","annotations":{{"k":"v"}}}}]}}"#
            ),
            OCI_INDEX,
        );
        let mut index = ReferrersIndex::read(&existing).unwrap();
        let sbom = manifest(r#"{"artifactType":"application/spdx+json"}"#, OCI_MANIFEST);
        let referrer = ReferrerDescriptor::of(&sbom).unwrap();
        assert!(index.add(&referrer));
        assert!(!index.add(&referrer));
        assert!(index.lists(&other.parse().unwrap()));
        let written = index.to_manifest();
        let value: Value = serde_json::from_slice(&written.bytes).unwrap();
        assert_eq!(value["annotations"]["x"], "y");
        assert_eq!(value["manifests"][0]["annotations"]["k"], "v");
        assert_eq!(value["manifests"][1]["digest"], sbom.digest.to_string());
        assert_eq!(ReferrersIndex::read(&written).unwrap().len(), 2);
        let empty = ReferrersIndex::default().to_manifest();
        assert!(ReferrersIndex::read(&empty).unwrap().is_empty());
    }

    /// A source's index merged into a target's: the target's own entries
    /// stay, the source's missing ones are added as they are, and a target
    /// that lists them all is left as it is.
    #[test]
    fn a_source_index_merges_into_a_target_index() {
        let entry = |hex: char| {
            format!(
                r#"{{"digest":"sha256:{}","size":7,"mediaType":"{OCI_MANIFEST}","artifactType":"t{hex}"}}"#,
                hex.to_string().repeat(64)
            )
        };
        let index = |entries: &[char]| {
            let listed: Vec<String> = entries.iter().map(|&c| entry(c)).collect();
            let json = format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
                listed.join(",")
            );
            ReferrersIndex::read(&manifest(&json, OCI_INDEX)).unwrap()
        };
        let source = index(&['a', 'b']);
        let mut target = index(&['c', 'a']);
        assert!(!target.lists_all(&source));
        assert!(target.add_all(&source));
        assert!(target.lists_all(&source));
        assert_eq!(target.len(), 3);
        assert!(!target.add_all(&source));
        let value: Value = serde_json::from_slice(&target.to_manifest().bytes).unwrap();
        assert_eq!(value["manifests"][0]["artifactType"], "tc");
        assert_eq!(value["manifests"][2]["artifactType"], "tb");
        assert!(index(&['a']).lists_all(&index(&[])));
    }

    /// A tag holding an image manifest is not a referrers index.
    #[test]
    fn only_an_image_index_is_added_to() {
        let image = manifest(r#"{"layers":[]}"#, OCI_MANIFEST);
        assert!(matches!(
            ReferrersIndex::read(&image),
            Err(ReferrersIndexError::NotAnIndex(_))
        ));
    }
}
