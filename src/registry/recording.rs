//! A [`Registry`] for unit tests that passes every call on to a real store
//! and records it, so a test can assert what was read and written and in
//! which order (blobs, then child manifests, then the manifest, then tags).
//!
//! Calls are made one at a time, each recorded once it has returned: the log
//! is a total order, so "A comes before B" means A had finished before B began.

use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{
    BlobReader, Counters, ManifestHead, MountOutcome, Registry, RegistryError, Result,
    UploadSession,
};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest};

/// One call made on a [`Recording`], with the arguments that identify it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// [`Registry::catalog`].
    Catalog,
    /// [`Registry::tags`].
    Tags {
        /// Repository listed.
        repository: String,
    },
    /// [`Registry::manifest_head`].
    ManifestHead {
        /// Repository.
        repository: String,
        /// Tag or digest asked for.
        reference: String,
    },
    /// [`Registry::manifest_get`].
    ManifestGet {
        /// Repository.
        repository: String,
        /// Tag or digest asked for.
        reference: String,
    },
    /// [`Registry::manifest_put`]: by digest (`reference` is the digest) or under a tag.
    ManifestPut {
        /// Repository.
        repository: String,
        /// Tag or digest written.
        reference: String,
        /// Digest of the manifest written.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// [`Registry::manifest_delete`].
    ManifestDelete {
        /// Repository.
        repository: String,
        /// Manifest deleted.
        digest: Digest,
    },
    /// [`Registry::tag_delete`].
    TagDelete {
        /// Repository.
        repository: String,
        /// Tag deleted.
        tag: String,
    },
    /// [`Registry::referrers`].
    Referrers {
        /// Repository.
        repository: String,
        /// Subject asked about.
        digest: Digest,
    },
    /// [`Registry::blob_exists`].
    BlobExists {
        /// Repository.
        repository: String,
        /// Blob asked about.
        digest: Digest,
    },
    /// [`Registry::blob_readable`].
    BlobReadable {
        /// Repository.
        repository: String,
        /// Blob asked about.
        digest: Digest,
    },
    /// [`Registry::blob_get`]: the stream was opened (reading it is not a call).
    BlobGet {
        /// Repository.
        repository: String,
        /// Blob read.
        digest: Digest,
    },
    /// [`Registry::blob_mount`], whatever its outcome.
    BlobMount {
        /// Repository mounted into.
        repository: String,
        /// Blob.
        digest: Digest,
        /// Repository mounted from.
        from: String,
    },
    /// [`Registry::blob_put`].
    BlobPut {
        /// Repository.
        repository: String,
        /// Blob written.
        digest: Digest,
    },
}

impl Call {
    /// Whether the call changes the store (a put, mount or delete).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Call::ManifestPut { .. }
                | Call::ManifestDelete { .. }
                | Call::TagDelete { .. }
                | Call::BlobMount { .. }
                | Call::BlobPut { .. }
        )
    }

    /// Whether the call writes a tag: a manifest put under a tag, not a digest.
    pub fn is_tag_write(&self) -> bool {
        matches!(self, Call::ManifestPut { reference, .. } if !super::is_digest_reference(reference))
    }

    /// The repository the call is about (`None` for the catalog).
    pub fn repository(&self) -> Option<&str> {
        match self {
            Call::Catalog => None,
            Call::Tags { repository }
            | Call::ManifestHead { repository, .. }
            | Call::ManifestGet { repository, .. }
            | Call::ManifestPut { repository, .. }
            | Call::ManifestDelete { repository, .. }
            | Call::TagDelete { repository, .. }
            | Call::Referrers { repository, .. }
            | Call::BlobExists { repository, .. }
            | Call::BlobReadable { repository, .. }
            | Call::BlobGet { repository, .. }
            | Call::BlobMount { repository, .. }
            | Call::BlobPut { repository, .. } => Some(repository),
        }
    }
}

/// A recorded call and whether the store succeeded at it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    call: Call,
    ok: bool,
}

/// A test's rule for which calls fail without reaching the store.
type FailWhen = Box<dyn Fn(&Call) -> bool + Send + Sync>;
/// The error an injected failure of a call gives.
type FailWith = Box<dyn Fn(&Call) -> RegistryError + Send + Sync>;

/// The log of a [`Recording`]; a clone reads the same log, so a test can keep
/// one after handing the recording itself over as an `Arc<dyn Registry>`.
#[derive(Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Entry>>>);

impl CallLog {
    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every call so far, in order, failed ones included.
    pub fn calls(&self) -> Vec<Call> {
        self.entries().iter().map(|e| e.call.clone()).collect()
    }

    /// The calls that changed the store, in order; failed ones left out.
    pub fn writes(&self) -> Vec<Call> {
        self.entries()
            .iter()
            .filter(|e| e.ok && e.call.is_write())
            .map(|e| e.call.clone())
            .collect()
    }

    /// The calls the store (or an injected failure) refused, in order.
    pub fn failed(&self) -> Vec<Call> {
        self.entries()
            .iter()
            .filter(|e| !e.ok)
            .map(|e| e.call.clone())
            .collect()
    }

    /// How many recorded calls match.
    pub fn count(&self, matches: impl Fn(&Call) -> bool) -> usize {
        self.entries().iter().filter(|e| matches(&e.call)).count()
    }

    /// Forgets every call so far (e.g. the ones that seeded the store).
    pub fn clear(&self) {
        self.entries().clear();
    }

    fn push(&self, call: Call, ok: bool) {
        self.entries().push(Entry { call, ok });
    }
}

/// Wraps a store, delegating every method and logging each call.
pub struct Recording {
    inner: Arc<dyn Registry>,
    log: CallLog,
    /// Held across each call so calls never overlap and the log is their order.
    one_at_a_time: Mutex<()>,
    fail_when: Option<FailWhen>,
    fail_with: Option<FailWith>,
    /// Playing a store with the referrers API: what it lists, by
    /// repository and subject.
    referrers_api: Option<Mutex<Listings>>,
}

/// Referrers listed by (repository, subject).
type Listings = std::collections::BTreeMap<(String, Digest), Vec<Descriptor>>;

impl Recording {
    /// Records the calls made on `inner`.
    pub fn new(inner: Arc<dyn Registry>) -> Recording {
        Recording {
            inner,
            log: CallLog::default(),
            one_at_a_time: Mutex::new(()),
            fail_when: None,
            fail_with: None,
            referrers_api: None,
        }
    }

    /// Plays a store with the OCI 1.1 referrers API (an OCI layout has
    /// none): a manifest with a `subject` stored through it is listed by
    /// [`Registry::referrers`].
    pub fn with_referrers_api(mut self) -> Self {
        self.referrers_api = Some(Mutex::default());
        self
    }

    /// Lists a stored manifest under its subject, when playing the API.
    fn index_referrer(&self, repository: &str, manifest: &Manifest) {
        let Some(listings) = &self.referrers_api else {
            return;
        };
        let Some(subject) = manifest.view().ok().and_then(|view| view.subject) else {
            return;
        };
        let mut listings = listings.lock().unwrap_or_else(PoisonError::into_inner);
        let listed = listings
            .entry((repository.to_string(), subject.digest))
            .or_default();
        if !listed.iter().any(|d| d.digest == manifest.digest) {
            listed.push(Descriptor {
                media_type: manifest.media_type.clone(),
                digest: manifest.digest.clone(),
                size: manifest.bytes.len() as u64,
                platform: None,
                urls: Vec::new(),
            });
        }
    }

    /// Makes the calls `fail_when` matches fail (recorded, never reaching the
    /// store), as a registry refusing them would.
    pub fn failing_when(
        mut self,
        fail_when: impl Fn(&Call) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.fail_when = Some(Box::new(fail_when));
        self
    }

    /// Makes the calls `fail_when` matches fail with the error `error`
    /// makes (a 404 from a registry without a catalog, a 503), instead of a
    /// protocol error.
    pub fn failing_with(
        mut self,
        fail_when: impl Fn(&Call) -> bool + Send + Sync + 'static,
        error: impl Fn(&Call) -> RegistryError + Send + Sync + 'static,
    ) -> Self {
        self.fail_when = Some(Box::new(fail_when));
        self.fail_with = Some(Box::new(error));
        self
    }

    /// The log, shared with this recording.
    pub fn log(&self) -> CallLog {
        self.log.clone()
    }

    /// See [`CallLog::calls`].
    pub fn calls(&self) -> Vec<Call> {
        self.log.calls()
    }

    /// See [`CallLog::writes`].
    pub fn writes(&self) -> Vec<Call> {
        self.log.writes()
    }

    /// Runs one call on the store, unless it is to fail, and records it.
    fn record<'a, T>(
        &'a self,
        call: Call,
        run: impl FnOnce(&'a dyn Registry) -> Result<T>,
    ) -> Result<T> {
        let _turn = self
            .one_at_a_time
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let result = if self.fail_when.as_ref().is_some_and(|f| f(&call)) {
            Err(match &self.fail_with {
                Some(error) => error(&call),
                None => RegistryError::Protocol {
                    registry: self.inner.display_name(),
                    message: format!("injected failure of {call:?}"),
                },
            })
        } else {
            run(self.inner.as_ref())
        };
        self.log.push(call, result.is_ok());
        result
    }
}

impl Registry for Recording {
    fn display_name(&self) -> String {
        self.inner.display_name()
    }

    fn store_id(&self) -> String {
        self.inner.store_id()
    }

    fn locations(&self) -> Vec<String> {
        self.inner.locations()
    }

    fn deletes_tags_alone(&self) -> bool {
        self.inner.deletes_tags_alone()
    }

    fn catalog(&self) -> Result<Vec<String>> {
        self.record(Call::Catalog, |r| r.catalog())
    }

    fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let call = Call::Tags {
            repository: repository.to_string(),
        };
        self.record(call, |r| r.tags(repository))
    }

    fn manifest_head(&self, repository: &str, reference: &str) -> Result<Option<ManifestHead>> {
        let call = Call::ManifestHead {
            repository: repository.to_string(),
            reference: reference.to_string(),
        };
        self.record(call, |r| r.manifest_head(repository, reference))
    }

    fn manifest_get(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let call = Call::ManifestGet {
            repository: repository.to_string(),
            reference: reference.to_string(),
        };
        self.record(call, |r| r.manifest_get(repository, reference))
    }

    fn manifest_put(&self, repository: &str, reference: &str, manifest: &Manifest) -> Result<()> {
        let call = Call::ManifestPut {
            repository: repository.to_string(),
            reference: reference.to_string(),
            digest: manifest.digest.clone(),
            media_type: manifest.media_type.clone(),
        };
        let stored = self.record(call, |r| r.manifest_put(repository, reference, manifest));
        if stored.is_ok() {
            self.index_referrer(repository, manifest);
        }
        stored
    }

    fn manifest_delete(&self, repository: &str, digest: &Digest) -> Result<()> {
        let call = Call::ManifestDelete {
            repository: repository.to_string(),
            digest: digest.clone(),
        };
        self.record(call, |r| r.manifest_delete(repository, digest))
    }

    fn tag_delete(&self, repository: &str, tag: &str) -> Result<bool> {
        let call = Call::TagDelete {
            repository: repository.to_string(),
            tag: tag.to_string(),
        };
        self.record(call, |r| r.tag_delete(repository, tag))
    }

    fn referrers(&self, repository: &str, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        let call = Call::Referrers {
            repository: repository.to_string(),
            digest: digest.clone(),
        };
        self.record(call, |r| match &self.referrers_api {
            Some(listings) => {
                let listings = listings.lock().unwrap_or_else(PoisonError::into_inner);
                let key = (repository.to_string(), digest.clone());
                Ok(Some(listings.get(&key).cloned().unwrap_or_default()))
            }
            None => r.referrers(repository, digest),
        })
    }

    fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let call = Call::BlobExists {
            repository: repository.to_string(),
            digest: digest.clone(),
        };
        self.record(call, |r| r.blob_exists(repository, digest))
    }

    fn blob_readable(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let call = Call::BlobReadable {
            repository: repository.to_string(),
            digest: digest.clone(),
        };
        self.record(call, |r| r.blob_readable(repository, digest))
    }

    fn blob_get<'a>(
        &'a self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader<'a>> {
        let call = Call::BlobGet {
            repository: repository.to_string(),
            digest: digest.clone(),
        };
        self.record(call, |r| r.blob_get(repository, digest, size))
    }

    fn blob_mount(&self, repository: &str, digest: &Digest, from: &str) -> Result<MountOutcome> {
        let call = Call::BlobMount {
            repository: repository.to_string(),
            digest: digest.clone(),
            from: from.to_string(),
        };
        self.record(call, |r| r.blob_mount(repository, digest, from))
    }

    fn blob_put(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
        session: Option<UploadSession>,
    ) -> Result<()> {
        let call = Call::BlobPut {
            repository: repository.to_string(),
            digest: digest.clone(),
        };
        self.record(call, |r| {
            r.blob_put(repository, digest, size, body, session)
        })
    }

    fn throttle(&self, pause: std::time::Duration) {
        self.inner.throttle(pause);
    }

    fn prepare(&self) {
        self.inner.prepare();
    }

    fn counters(&self) -> &Counters {
        self.inner.counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::oci_layout::OciLayoutStore;
    use crate::seed::{ImageSpec, LayerSpec, push_image};

    fn image() -> ImageSpec {
        ImageSpec::oci(
            "recorded",
            vec![
                LayerSpec { size: 10, seed: 1 },
                LayerSpec { size: 20, seed: 2 },
            ],
        )
    }

    #[test]
    fn records_each_call_in_order_and_passes_it_on() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Registry> = Arc::new(OciLayoutStore::new(dir.path()));
        let recording = Arc::new(Recording::new(store.clone()));
        let log = recording.log();
        let as_registry: Arc<dyn Registry> = recording.clone();

        let manifest = push_image(as_registry.as_ref(), "app", "1.0", &image()).unwrap();

        // What landed is in the store underneath.
        assert_eq!(
            store.manifest_head("app", "1.0").unwrap().map(|h| h.digest),
            Some(manifest.digest.clone())
        );
        // Layers, config, the manifest by digest, then the tag (the view
        // lists the config first).
        let blobs = manifest.view().unwrap().blobs;
        let mut expected: Vec<Call> = blobs[1..]
            .iter()
            .chain(&blobs[..1])
            .map(|blob| Call::BlobPut {
                repository: "app".into(),
                digest: blob.digest.clone(),
            })
            .collect();
        for reference in [manifest.digest.to_string(), "1.0".to_string()] {
            expected.push(Call::ManifestPut {
                repository: "app".into(),
                reference,
                digest: manifest.digest.clone(),
                media_type: crate::manifest::OCI_MANIFEST.into(),
            });
        }
        assert_eq!(log.writes(), expected);
        assert_eq!(log.writes().iter().filter(|c| c.is_tag_write()).count(), 1);
        // Each blob was looked for before it was written.
        let calls = log.calls();
        assert_eq!(calls.len(), 3 + 3 + 2, "{calls:#?}");
        assert_eq!(
            calls[0],
            Call::BlobExists {
                repository: "app".into(),
                digest: blobs[1].digest.clone()
            }
        );
        assert_eq!(log.count(|c| matches!(c, Call::BlobExists { .. })), 3);
        assert!(log.failed().is_empty());

        log.clear();
        assert_eq!(as_registry.tags("app").unwrap(), ["1.0"]);
        assert_eq!(
            recording.calls(),
            [Call::Tags {
                repository: "app".into()
            }]
        );
        assert!(recording.writes().is_empty());
    }

    #[test]
    fn an_injected_failure_is_recorded_and_never_reaches_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Registry> = Arc::new(OciLayoutStore::new(dir.path()));
        let recording = Recording::new(store.clone()).failing_when(Call::is_tag_write);

        let error = push_image(&recording, "app", "1.0", &image()).unwrap_err();

        assert!(error.to_string().contains("injected failure"), "{error}");
        let failed = recording.log().failed();
        assert!(
            matches!(&failed[..], [Call::ManifestPut { reference, .. }] if reference == "1.0"),
            "{failed:?}"
        );
        assert!(!recording.writes().iter().any(Call::is_tag_write));
        assert!(store.tags("app").is_err(), "no tag was written");
    }
}
