//! The OCI Distribution API over HTTP(S), with ureq, in parts, as uv's
//! `uv-client` is: `transport` sends (once, authorised, retried under the
//! one [`RetryPolicy`](crate::registry::retry::RetryPolicy)), `auth` answers
//! challenges and fetches tokens, `listing` follows pages, `manifests` and
//! `blobs` read and write content, `upload` holds the upload strategies, and
//! `cache` wraps the manifest operations. This file holds the client's state
//! and the [`Registry`] implementation, which takes the connection slot.

pub mod auth;
mod blobs;
mod cache;
pub mod credentials;
mod endpoint;
mod http;
pub mod link;
mod listing;
mod manifests;
pub mod tokens;
mod transport;
mod upload;
mod upload_rules;
mod warm;

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use endpoint::{DEFAULT_PAGE_SIZE, Endpoint, EndpointError, Scheme};
pub use http::{Client, build_client, decode_error_envelope};

use self::cache::ManifestCache;
use self::credentials::{CredentialError, Found};
use self::tokens::{Ping, TokenCache};
use super::adaptive::INITIAL_FAR;
use super::limits::Limits;
use super::{
    BlobReader, Counters, ManifestHead, MountOutcome, Registry, RegistryError, Result,
    UploadSession,
};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest};

/// A registry spoken to over the Distribution API.
pub struct DistributionRegistry {
    endpoint: Endpoint,
    client: Client,
    credentials: OnceLock<std::result::Result<Option<Found>, CredentialError>>,
    /// What `/v2/` asked for, once it answered.
    challenge: Mutex<Ping>,
    /// Why `/v2/` got no answer through every retry, once that happened.
    unreachable: OnceLock<std::sync::Arc<std::io::Error>>,
    tokens: TokenCache,
    /// Held while fetching a token, so parallel threads do not all fetch the same one.
    token_fetch: Mutex<()>,
    /// What the registry said about uploads: the strategy for the rest of the run.
    uploads: upload_rules::UploadRules,
    /// Whether it has the referrers API, once it said.
    referrers_api: ReferrersApi,
    /// Held by the one request that finds out whether the API is there;
    /// then the listing it got, until that image's referrers are asked for
    /// again (planning asks early, beside other reads; execution copies).
    referrers_probe: Mutex<Option<ProbedReferrers>>,
    manifests: ManifestCache,
    /// Cheap requests: pings, tag lists, manifests, HEADs, mounts.
    limits: Limits,
    /// Blob streams (a download opened, an upload sent), budgeted apart so
    /// long transfers never keep cheap requests waiting, and adapted apart
    /// (their rate is bytes, theirs is round trips).
    streams: Limits,
    counters: Counters,
}

/// What a registry has said of the OCI 1.1 referrers API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Api {
    /// Nothing yet.
    Unknown = 0,
    /// It answered a referrers listing.
    Present = 1,
    /// It answered that there is none (404 or 405): not asked again.
    Absent = 2,
}

/// An [`Api`] that threads share and set once.
#[derive(Debug, Default)]
struct ReferrersApi(std::sync::atomic::AtomicU8);

impl ReferrersApi {
    fn is(&self, api: Api) -> bool {
        self.0.load(Ordering::Relaxed) == api as u8
    }

    /// The registry said: an answer that there is none stands over one
    /// that listed (it is not asked again either way).
    fn found(&self, api: Api) {
        match api {
            Api::Absent => self.0.store(api as u8, Ordering::Relaxed),
            _ => {
                let _ = self.0.compare_exchange(
                    Api::Unknown as u8,
                    api as u8,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
    }
}

/// The referrers listing that found the API: repository, subject, referrers.
type ProbedReferrers = (String, Digest, Vec<Descriptor>);

impl DistributionRegistry {
    /// A client for `endpoint`, sharing connections through `client`.
    pub fn new(endpoint: Endpoint, client: Client) -> Self {
        DistributionRegistry {
            client,
            credentials: OnceLock::new(),
            challenge: Mutex::new(Ping::NotYet),
            unreachable: OnceLock::new(),
            tokens: TokenCache::default(),
            token_fetch: Mutex::new(()),
            uploads: upload_rules::UploadRules::default(),
            referrers_api: ReferrersApi::default(),
            referrers_probe: Mutex::new(None),
            manifests: ManifestCache::default(),
            limits: Limits::new(endpoint.max_connections, endpoint.requests_per_second),
            streams: Limits::for_streams(endpoint.max_connections),
            counters: Counters::default(),
            endpoint,
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Runs one operation of the [`Registry`] interface in a connection
    /// slot of this registry: the one place a slot is taken. Nested
    /// operations (a HEAD falling back to a GET) get theirs free. The slot
    /// is released when `operation` returns, so a blob stream it returns is
    /// read without one: a copy between two capped registries must never
    /// hold one registry's slot while waiting for the other's.
    fn in_slot<T>(&self, operation: impl FnOnce() -> Result<T>) -> Result<T> {
        let _permit = self.limits.permit();
        operation()
    }

    /// [`Self::in_slot`] for a blob stream: a slot among the registry's
    /// streams, whose number is capped (and adapted) apart.
    fn in_stream<T>(&self, operation: impl FnOnce() -> Result<T>) -> Result<T> {
        let _permit = self.streams.permit();
        operation()
    }

    /// The referrers probe's lock and the listing it kept.
    fn probed_referrers(&self) -> std::sync::MutexGuard<'_, Option<ProbedReferrers>> {
        self.referrers_probe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The registry is far: more at once from the start, of both kinds,
    /// and connections for them opened now (while the catalog is listed)
    /// rather than each by its first request.
    fn far(&self) {
        self.limits.far();
        self.streams.far();
        // As many as it takes requests at once to start with (no more than
        // the agent keeps), the ping's among them.
        let count = (self.limits.limit().min(INITIAL_FAR))
            .min(self.client.connections)
            .saturating_sub(1);
        let config = self.client.agent.config();
        self.client
            .warm
            .open(config, self.endpoint.base_url(), count);
    }

    /// A 429: nobody sends for `pause`, and fewer streams at once after.
    pub(super) fn cool_down(&self, pause: Duration) {
        self.limits.cool_down(pause);
        self.streams.congested();
    }

    /// No answer in time, or a broken connection: fewer requests and
    /// streams at once.
    pub(super) fn congested(&self) {
        self.limits.congested();
        self.streams.congested();
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.base_url())
    }

    fn protocol(&self, message: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.endpoint.host.clone(),
            message,
        }
    }

    /// Resolves a URL the registry handed us and insists it stays on the registry.
    fn same_origin(&self, location: &str, what: &str) -> Result<String> {
        let resolved = link::resolve(self.endpoint.base_url(), location);
        if link::origin(&resolved) != link::origin(self.endpoint.base_url()) {
            return Err(self.protocol(format!(
                "{what} points to another host ({}); refusing to follow it",
                link::origin(&resolved)
            )));
        }
        Ok(resolved)
    }
}

impl Registry for DistributionRegistry {
    fn display_name(&self) -> String {
        self.endpoint.host.clone()
    }

    fn store_id(&self) -> String {
        self.endpoint.base_url().to_string()
    }

    fn locations(&self) -> Vec<String> {
        self.endpoint.locations()
    }

    fn catalog(&self) -> Result<Vec<String>> {
        self.in_slot(|| self.list_catalog())
    }

    fn tags(&self, repository: &str) -> Result<Vec<String>> {
        self.in_slot(|| self.list_tags(repository))
    }

    fn manifest_head(&self, repository: &str, reference: &str) -> Result<Option<ManifestHead>> {
        self.in_slot(|| self.head_manifest(repository, reference))
    }

    fn manifest_get(&self, repository: &str, reference: &str) -> Result<Manifest> {
        // Outside the slot: a remembered manifest waits for nobody.
        self.manifests.read_through(repository, reference, || {
            self.in_slot(|| self.fetch_manifest(repository, reference))
        })
    }

    fn manifest_put(&self, repository: &str, reference: &str, manifest: &Manifest) -> Result<()> {
        self.manifests.write_through(repository, manifest, || {
            self.in_slot(|| self.store_manifest(repository, reference, manifest))
        })
    }

    fn manifest_delete(&self, repository: &str, digest: &Digest) -> Result<()> {
        self.manifests.delete_through(repository, digest, || {
            self.in_slot(|| self.delete_manifest(repository, digest))
        })
    }

    fn tag_delete(&self, repository: &str, tag: &str) -> Result<bool> {
        self.in_slot(|| self.delete_tag(repository, tag))
    }

    fn referrers(&self, repository: &str, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        // Known to have no referrers API: no slot needed to say so.
        if self.referrers_api.is(Api::Absent) {
            return Ok(None);
        }
        if self.referrers_api.is(Api::Present) {
            let mut probed = self.probed_referrers();
            if let Some((_, _, listed)) =
                probed.take_if(|(repo, of, _)| repo == repository && of == digest)
            {
                return Ok(Some(listed));
            }
            drop(probed);
            return self.in_slot(|| self.list_referrers(repository, digest));
        }
        // Not known yet: one request finds out while the others wait, so a
        // registry without the API is asked once, not once per thread.
        let mut probe = self.probed_referrers();
        if self.referrers_api.is(Api::Absent) {
            return Ok(None);
        }
        if self.referrers_api.is(Api::Present) {
            // Found while this thread waited: list without holding the lock.
            drop(probe);
            return self.referrers(repository, digest);
        }
        let listed = self.in_slot(|| self.list_referrers(repository, digest));
        if let Ok(Some(found)) = &listed {
            self.referrers_api.found(Api::Present);
            *probe = Some((repository.to_string(), digest.clone(), found.clone()));
        }
        listed
    }

    fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool> {
        self.in_slot(|| self.has_blob(repository, digest))
    }

    fn blob_readable(&self, repository: &str, digest: &Digest) -> Result<bool> {
        self.in_slot(|| self.reads_blob(repository, digest))
    }

    fn blob_get<'a>(
        &'a self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader<'a>> {
        // The stream is read after the slot is released (see `in_slot`).
        self.in_stream(|| self.open_blob(repository, digest, size))
    }

    fn blob_mount(&self, repository: &str, digest: &Digest, from: &str) -> Result<MountOutcome> {
        self.in_slot(|| self.mount_blob(repository, digest, from))
    }

    fn blob_put(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
        session: Option<UploadSession>,
    ) -> Result<()> {
        self.in_stream(|| self.upload_blob(repository, digest, size, body, session))
    }

    fn throttle(&self, pause: Duration) {
        self.cool_down(pause);
    }

    fn prepare(&self) {
        // Its errors come again, and are reported, on the first request.
        let _ = self.ping();
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}
