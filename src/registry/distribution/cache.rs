//! Manifests read or written in this run, by repository and digest. They
//! are content-addressed, so the same manifest is never fetched twice in a
//! run (planning reads a tag's manifest; the copy reads it again by digest).
//! The cache wraps the manifest operations; nothing else touches it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::registry::{Result, is_digest_reference};

/// The manifests of one registry seen in this run.
#[derive(Default)]
pub(super) struct ManifestCache {
    manifests: Mutex<HashMap<(String, Digest), Manifest>>,
}

impl ManifestCache {
    /// The manifest `reference` names: remembered when it is a digest seen
    /// before, else what `fetch` brings (remembered). A tag is always
    /// fetched, since it may have moved.
    pub(super) fn read_through(
        &self,
        repository: &str,
        reference: &str,
        fetch: impl FnOnce() -> Result<Manifest>,
    ) -> Result<Manifest> {
        if is_digest_reference(reference)
            && let Ok(digest) = reference.parse::<Digest>()
            && let Some(known) = self.get(repository, &digest)
        {
            return Ok(known);
        }
        let manifest = fetch()?;
        self.remember(repository, &manifest);
        Ok(manifest)
    }

    /// Stores `manifest` with `store`, then remembers it.
    pub(super) fn write_through(
        &self,
        repository: &str,
        manifest: &Manifest,
        store: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        store()?;
        self.remember(repository, manifest);
        Ok(())
    }

    /// Forgets the manifest, then deletes it with `delete`: a failed delete
    /// may have half happened, so it is not remembered either way.
    pub(super) fn delete_through(
        &self,
        repository: &str,
        digest: &Digest,
        delete: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        self.lock()
            .remove(&(repository.to_string(), digest.clone()));
        delete()
    }

    fn get(&self, repository: &str, digest: &Digest) -> Option<Manifest> {
        self.lock()
            .get(&(repository.to_string(), digest.clone()))
            .cloned()
    }

    fn remember(&self, repository: &str, manifest: &Manifest) {
        self.lock().insert(
            (repository.to_string(), manifest.digest.clone()),
            manifest.clone(),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Digest), Manifest>> {
        self.manifests.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn manifest() -> Manifest {
        let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        Manifest::from_bytes(bytes.to_vec(), None).unwrap()
    }

    #[test]
    fn a_digest_is_fetched_once_a_tag_every_time_and_a_delete_forgets() {
        let cache = ManifestCache::default();
        let stored = manifest();
        let by_digest = stored.digest.to_string();
        let fetches = Cell::new(0);
        let fetch = || {
            fetches.set(fetches.get() + 1);
            Ok(stored.clone())
        };
        cache.read_through("app", &by_digest, fetch).unwrap();
        cache.read_through("app", &by_digest, fetch).unwrap();
        assert_eq!(fetches.get(), 1);
        cache.read_through("app", "latest", fetch).unwrap();
        assert_eq!(fetches.get(), 2, "a tag may have moved");
        cache.read_through("other", &by_digest, fetch).unwrap();
        assert_eq!(fetches.get(), 3, "per repository");
        cache
            .delete_through("app", &stored.digest, || Ok(()))
            .unwrap();
        cache.read_through("app", &by_digest, fetch).unwrap();
        assert_eq!(fetches.get(), 4);
    }

    #[test]
    fn a_written_manifest_is_remembered_only_once_stored() {
        let cache = ManifestCache::default();
        let stored = manifest();
        let by_digest = stored.digest.to_string();
        let refused = cache.write_through("app", &stored, || {
            Err(crate::registry::RegistryError::NotFound { what: "app".into() })
        });
        assert!(refused.is_err());
        let fetches = Cell::new(0);
        let fetch = || {
            fetches.set(fetches.get() + 1);
            Ok(stored.clone())
        };
        cache.read_through("app", &by_digest, fetch).unwrap();
        assert_eq!(fetches.get(), 1);
        cache.write_through("other", &stored, || Ok(())).unwrap();
        cache.read_through("other", &by_digest, fetch).unwrap();
        assert_eq!(fetches.get(), 1, "known from the write");
    }
}
