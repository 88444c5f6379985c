//! A directory of OCI image layouts: each repository is a sub-directory holding
//! `oci-layout`, `index.json` and `blobs/<alg>/<hex>`; tags are the
//! `org.opencontainers.image.ref.name` annotations of `index.json`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{BlobReader, Counters, ManifestHead, MountOutcome, Registry, Result, UploadSession};
use crate::digest::{Digest, VerifyingReader};
use crate::manifest::{Descriptor, MAX_MANIFEST_BYTES, Manifest, OCI_INDEX};
use crate::reference::validate_repository;
use crate::registry::RegistryError;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

/// A store of OCI layouts under one root directory.
pub struct OciLayoutStore {
    root: PathBuf,
    /// Serialises rewrites of `index.json` within this process.
    index_lock: Mutex<()>,
    counters: Counters,
    temp_counter: AtomicU64,
    /// `store_id`, resolved once: it is compared for every blob of a copy.
    id: std::sync::OnceLock<String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IndexJson {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<IndexEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

impl IndexEntry {
    fn tag(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

impl OciLayoutStore {
    /// Opens (without creating) a store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        OciLayoutStore {
            root: root.into(),
            index_lock: Mutex::new(()),
            counters: Counters::default(),
            temp_counter: AtomicU64::new(0),
            id: std::sync::OnceLock::new(),
        }
    }

    fn repo_dir(&self, repository: &str) -> Result<PathBuf> {
        // The repository grammar forbids `..`, empty segments and absolute paths.
        validate_repository(repository, repository).map_err(|e| RegistryError::Protocol {
            registry: self.display_name(),
            message: e.to_string(),
        })?;
        Ok(self.root.join(repository))
    }

    fn blob_path(&self, repository: &str, digest: &Digest) -> Result<PathBuf> {
        // `Digest` is validated (algorithm and lowercase hex only), so this cannot escape the layout.
        Ok(self
            .repo_dir(repository)?
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex()))
    }

    fn read_index(&self, repository: &str) -> Result<Option<IndexJson>> {
        let path = self.repo_dir(repository)?.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| RegistryError::Protocol {
                        registry: self.display_name(),
                        message: format!("{}: invalid index.json: {e}", path.display()),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    fn write_index(&self, repository: &str, index: &IndexJson) -> Result<()> {
        let dir = self.repo_dir(repository)?;
        let bytes = serde_json::to_vec_pretty(index).map_err(|e| RegistryError::Protocol {
            registry: self.display_name(),
            message: format!("cannot serialise index.json: {e}"),
        })?;
        self.write_atomically(&dir.join("index.json"), &bytes)
    }

    fn ensure_layout(&self, repository: &str) -> Result<()> {
        let dir = self.repo_dir(repository)?;
        let marker = dir.join(LAYOUT_FILE);
        if marker.is_file() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        self.write_atomically(&marker, LAYOUT_CONTENT.as_bytes())
    }

    fn temp_path(&self, final_path: &Path) -> PathBuf {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let name = final_path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        final_path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
    }

    /// Writes a file so that readers see either the old or the whole new content.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let temp = self.temp_path(path);
        let result = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, path)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&temp);
            io_error(path, e)
        })
    }

    /// Streams into a temporary file beside the blob and renames it into place
    /// only once the content verified.
    fn store_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
    ) -> Result<()> {
        self.ensure_layout(repository)?;
        let path = self.blob_path(repository, digest)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        let temp = self.temp_path(&path);
        let mut verified = VerifyingReader::new(body, digest.clone(), size);
        let copied = (|| -> io::Result<u64> {
            let mut file = fs::File::create(&temp)?;
            let n = io::copy(&mut verified, &mut file)?;
            file.sync_all()?;
            Ok(n)
        })();
        match copied {
            Ok(n) => {
                fs::rename(&temp, &path).map_err(|e| io_error(&path, e))?;
                self.counters.uploaded(n);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(RegistryError::from_stream(&path.display().to_string(), e))
            }
        }
    }

    fn find_repositories(&self, dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && prefix.is_empty() => {
                return Err(RegistryError::NotFound {
                    what: format!("OCI layout store {}", dir.display()),
                });
            }
            Err(e) => return Err(io_error(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry
                .file_type()
                .map_err(|e| io_error(&entry.path(), e))?
                .is_dir()
                || name == "blobs"
            {
                continue;
            }
            let repository = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if validate_repository(&repository, &repository).is_err() {
                continue;
            }
            if entry.path().join(LAYOUT_FILE).is_file() {
                out.push(repository.clone());
            }
            self.find_repositories(&entry.path(), &repository, out)?;
        }
        Ok(())
    }

    fn read_manifest_blob(
        &self,
        repository: &str,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> Result<Option<Manifest>> {
        let path = self.blob_path(repository, digest)?;
        let bytes = match fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_MANIFEST_BYTES => {
                return Err(RegistryError::Protocol {
                    registry: self.display_name(),
                    message: format!("manifest {digest} is larger than {MAX_MANIFEST_BYTES} bytes"),
                });
            }
            Ok(_) => fs::read(&path).map_err(|e| io_error(&path, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e)),
        };
        if digest.recompute(&bytes) != *digest {
            return Err(RegistryError::Verification(crate::digest::BlobMismatch {
                kind: crate::digest::ContentKind::Manifest,
                digest: digest.clone(),
                what: format!("{} does not hash to its name", path.display()),
            }));
        }
        let mut manifest =
            Manifest::from_bytes(bytes, media_type).map_err(|source| RegistryError::Manifest {
                what: format!("{repository}@{digest}"),
                source,
            })?;
        manifest.digest = digest.clone();
        Ok(Some(manifest))
    }

    fn resolve(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Digest, Option<String>)>> {
        let index = self.read_index(repository)?;
        if super::is_digest_reference(reference) {
            let digest: Digest = reference
                .parse()
                .map_err(|e: crate::digest::InvalidDigest| RegistryError::Protocol {
                    registry: self.display_name(),
                    message: e.to_string(),
                })?;
            let media_type = index
                .iter()
                .flat_map(|i| &i.manifests)
                .find(|m| m.digest == digest)
                .map(|m| m.media_type.clone());
            return Ok(Some((digest, media_type)));
        }
        Ok(index.and_then(|i| {
            i.manifests
                .into_iter()
                .find(|m| m.tag() == Some(reference))
                .map(|m| (m.digest, Some(m.media_type)))
        }))
    }
}

impl OciLayoutStore {
    /// Drops the `index.json` entries `doomed` matches; none is NotFound (`what`).
    fn remove_from_index(
        &self,
        repository: &str,
        doomed: impl Fn(&IndexEntry) -> bool,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        let _guard = self
            .index_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(mut index) = self.read_index(repository)? else {
            return Err(RegistryError::NotFound {
                what: format!("repository {repository} in {}", self.display_name()),
            });
        };
        let before = index.manifests.len();
        index.manifests.retain(|m| !doomed(m));
        if index.manifests.len() == before {
            return Err(RegistryError::NotFound { what: what() });
        }
        self.write_index(repository, &index)
    }
}

fn io_error(path: &Path, source: io::Error) -> RegistryError {
    RegistryError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Registry for OciLayoutStore {
    fn display_name(&self) -> String {
        format!("oci-layout:{}", self.root.display())
    }

    fn store_id(&self) -> String {
        self.id
            .get_or_init(|| {
                let canonical = fs::canonicalize(&self.root)
                    .or_else(|_| std::path::absolute(&self.root))
                    .unwrap_or_else(|_| self.root.clone());
                format!("oci-layout:{}", canonical.display())
            })
            .clone()
    }

    fn catalog(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.find_repositories(&self.root, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let index = self
            .read_index(repository)?
            .ok_or_else(|| RegistryError::NotFound {
                what: format!("repository {repository} in {}", self.display_name()),
            })?;
        let mut tags: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|m| m.tag().map(str::to_string))
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    fn manifest_head(&self, repository: &str, reference: &str) -> Result<Option<ManifestHead>> {
        let Some((digest, media_type)) = self.resolve(repository, reference)? else {
            return Ok(None);
        };
        let Some(manifest) = self.read_manifest_blob(repository, &digest, media_type.as_deref())?
        else {
            return Ok(None);
        };
        Ok(Some(ManifestHead {
            digest,
            media_type: manifest.media_type,
            size: manifest.bytes.len() as u64,
        }))
    }

    fn manifest_get(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let not_found = || RegistryError::NotFound {
            what: format!(
                "manifest {repository}:{reference} in {}",
                self.display_name()
            ),
        };
        let (digest, media_type) = self.resolve(repository, reference)?.ok_or_else(not_found)?;
        self.read_manifest_blob(repository, &digest, media_type.as_deref())?
            .ok_or_else(not_found)
    }

    fn manifest_put(&self, repository: &str, reference: &str, manifest: &Manifest) -> Result<()> {
        let path = self.blob_path(repository, &manifest.digest)?;
        if !path.is_file() {
            self.store_blob(
                repository,
                &manifest.digest,
                manifest.bytes.len() as u64,
                &mut manifest.bytes.as_slice(),
            )?;
        }
        if super::is_digest_reference(reference) {
            return Ok(());
        }
        crate::reference::validate_tag(reference, reference).map_err(|e| {
            RegistryError::Protocol {
                registry: self.display_name(),
                message: e.to_string(),
            }
        })?;
        let _guard = self
            .index_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut index = self.read_index(repository)?.unwrap_or_else(|| IndexJson {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            ..IndexJson::default()
        });
        index.manifests.retain(|m| m.tag() != Some(reference));
        index.manifests.push(IndexEntry {
            media_type: manifest.media_type.clone(),
            digest: manifest.digest.clone(),
            size: manifest.bytes.len() as u64,
            annotations: BTreeMap::from([(REF_NAME.to_string(), reference.to_string())]),
            other: BTreeMap::new(),
        });
        self.write_index(repository, &index)
    }

    fn manifest_delete(&self, repository: &str, digest: &Digest) -> Result<()> {
        self.remove_from_index(
            repository,
            |m| m.digest == *digest,
            || format!("manifest {repository}@{digest}"),
        )
    }

    fn tag_delete(&self, repository: &str, tag: &str) -> Result<bool> {
        self.remove_from_index(
            repository,
            |m| m.tag() == Some(tag),
            || format!("tag {repository}:{tag}"),
        )?;
        Ok(true)
    }

    fn deletes_tags_alone(&self) -> bool {
        true
    }

    fn referrers(&self, _repository: &str, _digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        // A layout has no referrers index; the tag convention carries them.
        Ok(None)
    }

    fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool> {
        Ok(self.blob_path(repository, digest)?.is_file())
    }

    fn blob_readable(&self, repository: &str, digest: &Digest) -> Result<bool> {
        // On disk, a blob that is there is readable: nothing answers for it.
        self.blob_exists(repository, digest)
    }

    fn blob_get<'a>(
        &'a self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader<'a>> {
        let path = self.blob_path(repository, digest)?;
        let file = fs::File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                RegistryError::NotFound {
                    what: format!("blob {repository}@{digest}"),
                }
            } else {
                io_error(&path, e)
            }
        })?;
        Ok(Box::new(VerifyingReader::new(
            io::BufReader::with_capacity(256 * 1024, file),
            digest.clone(),
            size,
        )))
    }

    fn blob_mount(&self, repository: &str, digest: &Digest, from: &str) -> Result<MountOutcome> {
        let source = self.blob_path(from, digest)?;
        if !source.is_file() {
            return Ok(MountOutcome::NotMounted(None));
        }
        self.ensure_layout(repository)?;
        let target = self.blob_path(repository, digest)?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        if target.is_file() {
            return Ok(MountOutcome::Mounted);
        }
        // Copied through the verifying reader: a corrupt source blob must not land under its digest.
        let size = fs::metadata(&source)
            .map_err(|e| io_error(&source, e))?
            .len();
        let mut reader = self.blob_get(from, digest, size)?;
        self.store_blob(repository, digest, size, &mut reader)?;
        Ok(MountOutcome::Mounted)
    }

    fn blob_put(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
        _session: Option<UploadSession>,
    ) -> Result<()> {
        self.store_blob(repository, digest, size, body)
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

#[cfg(test)]
#[path = "oci_layout_tests.rs"]
mod tests;
