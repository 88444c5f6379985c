//! Blob jobs: making one blob present in every target repository that needs
//! it, with as few bytes moved as the registry allows (HEAD, mount, copy).

use super::error::ExecError;
use super::graph::BlobJob;
use super::landing::{Landed, Landing, Missed};
use super::mounting::Mounting;
use super::progress::Progress;
use super::scheduler::Executor;
use super::stats::bump;
use crate::digest::Digest;
use crate::registry::retry::Decision;
use crate::registry::{MountOutcome, Registry, RegistryError, UploadSession};

/// Immediate resends of a blob while the client adapts its uploads to a
/// registry (monolithic to chunked, then halving chunks after each 413).
const MAX_UPLOAD_ADAPTATIONS: u32 = 6;

/// One mount to try: of `digest` into `repository` of the store named
/// `registry`, from `from`; a `guess` when `from` may well lack the blob.
struct Mount<'a> {
    registry: &'a str,
    repository: &'a str,
    digest: &'a Digest,
    from: &'a str,
    guess: bool,
}

/// Where a blob stands in one repository after trying to put it there.
enum Settled {
    /// Present now.
    There,
    /// The repository does not exist (remembered: its images fail by name).
    Missing,
    /// The repository refused it ([`refused_here`]): its images fail.
    Refused(ExecError),
}

/// Whether `error` is the target refusing the blob for `repository` alone:
/// a 4xx other than 429 on one of that repository's own URLs (denied, over
/// quota, a policy), or credentials refused by a target that is not also
/// the source. A registry that does not answer, a 5xx, the source or a
/// digest mismatch would fail every repository alike.
fn refused_here(error: &RegistryError, target: &str, source: &str, repository: &str) -> bool {
    match error {
        RegistryError::Status { url, status, .. } => {
            let own = format!("{}/v2/{repository}/", target.trim_end_matches('/'));
            (400..500).contains(status) && *status != 429 && url.starts_with(&own)
        }
        RegistryError::Auth { registry, .. } | RegistryError::LoginRefused { registry, .. } => {
            target != source && host_of(target) == Some(registry.as_str())
        }
        RegistryError::UploadAdapted(inner) => refused_here(inner, target, source, repository),
        _ => false,
    }
}

/// The `host[:port]` of a registry's base URL.
fn host_of(base_url: &str) -> Option<&str> {
    let (_, rest) = base_url.split_once("://")?;
    rest.split('/').next()
}

fn blob_error(job: &BlobJob, error: RegistryError) -> ExecError {
    ExecError::Blob {
        digest: job.digest.clone(),
        source: Box::new(error),
    }
}

/// What a target repository holds of a blob.
enum Probe {
    Present,
    /// Absent; the registry may have opened the upload already.
    Absent(Option<UploadSession>),
}

impl Executor<'_> {
    /// Makes one blob present in every target repository that needs it,
    /// one repository after another (a referrer's blob): the first error.
    pub(super) fn blob(&self, job: &BlobJob) -> Result<(), ExecError> {
        let landing = self.land(job);
        if let Some(error) = landing.passed.into_iter().find_map(|(_, error)| error) {
            return Err(error);
        }
        match landing.outcome {
            None => Ok(()),
            Some(Landed::Failed { error, .. }) => Err(error),
            Some(Landed::In { into, rest }) => rest.into_iter().try_for_each(|repository| {
                self.spread(job, repository, into)
                    .map_err(|(Missed::Here(e) | Missed::Everywhere(e))| e)
            }),
        }
    }

    /// Makes the blob present in the first of the job's repositories that
    /// takes it: there already, mounted, or copied. A repository the
    /// registry does not have (and will not create) is remembered and
    /// passed over, and so is one that refuses the blob ([`refused_here`]):
    /// only their images fail.
    pub(super) fn land<'j>(&self, job: &'j BlobJob) -> Landing<'j> {
        let registry = &job.target_registry;
        let mut passed = Vec::new();
        let mut repositories = job.repositories.keys().map(String::as_str);
        let stores = self
            .store(registry)
            .and_then(|target| Ok((target, self.store(&job.source.registry)?)));
        let (target, source) = match stores {
            Ok(stores) => stores,
            Err(error) => return Landing::failed(passed, error, repositories.collect()),
        };
        while let Some(repository) = repositories.next() {
            if self.missing.known(registry, repository).is_some() {
                passed.push((repository, None));
                continue;
            }
            let result = self.blob_into(job, source.as_ref(), target.as_ref(), repository, None);
            match self.settle(job, (target.as_ref(), source.as_ref()), repository, result) {
                Ok(Settled::There) => {
                    let rest = repositories.collect();
                    let outcome = Some(Landed::In {
                        into: repository,
                        rest,
                    });
                    return Landing { passed, outcome };
                }
                Ok(Settled::Missing) => passed.push((repository, None)),
                Ok(Settled::Refused(error)) => passed.push((repository, Some(error))),
                Err(error) => {
                    let failing = std::iter::once(repository).chain(repositories).collect();
                    return Landing::failed(passed, error, failing);
                }
            }
        }
        Landing {
            passed,
            outcome: None,
        }
    }

    /// Makes the blob, landed in `landed`, present in one more repository:
    /// mounted from there, or copied where the registry does not mount. A
    /// missing repository is remembered (its images fail, by name) and is
    /// no error of the blob's.
    pub(super) fn spread(
        &self,
        job: &BlobJob,
        repository: &str,
        landed: &str,
    ) -> Result<(), Missed> {
        let registry = &job.target_registry;
        if self.missing.known(registry, repository).is_some() {
            return Ok(());
        }
        let target = self.store(registry).map_err(Missed::Everywhere)?;
        let source = self
            .store(&job.source.registry)
            .map_err(Missed::Everywhere)?;
        let landed = Some(landed);
        let result = self.blob_into(job, source.as_ref(), target.as_ref(), repository, landed);
        match self.settle(job, (target.as_ref(), source.as_ref()), repository, result) {
            Ok(Settled::There | Settled::Missing) => Ok(()),
            Ok(Settled::Refused(error)) => Err(Missed::Here(error)),
            Err(error) => Err(Missed::Everywhere(error)),
        }
    }

    /// What `blob_into`'s `result` in `repository` means for the job; `Err`
    /// is a failure every repository would meet.
    fn settle(
        &self,
        job: &BlobJob,
        (target, source): (&dyn Registry, &dyn Registry),
        repository: &str,
        result: Result<(), RegistryError>,
    ) -> Result<Settled, ExecError> {
        match result {
            Ok(()) => Ok(Settled::There),
            Err(e) if e.names_missing_repository() => {
                self.missing.found(&job.target_registry, repository, &e);
                Ok(Settled::Missing)
            }
            Err(e) if refused_here(&e, &target.store_id(), &source.store_id(), repository) => {
                Ok(Settled::Refused(blob_error(job, e)))
            }
            Err(e) => Err(blob_error(job, e)),
        }
    }

    /// Whether the store named `registry` has not shown yet whether it
    /// mounts (it has mounted, refused, or ignored a mount of a blob the
    /// other repository holds).
    pub(super) fn mounting_unknown(&self, registry: &str) -> bool {
        self.mounting(registry).unknown()
    }

    /// Makes the blob present in one repository: there already, mounted
    /// from `landed` (the job's first repository that has it) or from the
    /// source repository of the same store, or copied.
    fn blob_into(
        &self,
        job: &BlobJob,
        source: &dyn Registry,
        target: &dyn Registry,
        repository: &str,
        landed: Option<&str>,
    ) -> Result<(), RegistryError> {
        let registry = &job.target_registry;
        // From a repository of the same store: mount, nothing moves. Else,
        // from where an earlier run of the same rule put the image: a guess.
        let (from, guess) = match landed {
            Some(landed) => (Some(landed), false),
            None if source.store_id() == target.store_id() => {
                (Some(job.source.repository.as_str()), false)
            }
            None => (job.mount_hint.as_deref(), true),
        };
        let from = from
            .filter(|from| *from != repository)
            // A registry that refused a mount is not asked to mount again.
            .filter(|_| !self.mounting(registry).refused());
        // On a store that mounts, a mount of a blob the repository already
        // has succeeds too, so it needs no HEAD first. Elsewhere a refused
        // mount would mean an upload of a blob already there: ask first. A
        // guess may miss a blob the repository has: ask first too. A
        // repository that held no tag when planned is taken to lack it: the
        // mount (or the upload) is the first request.
        let new = self.is_new(registry, repository);
        let mut session = None;
        if from.is_none() || (!new && (guess || !self.mounting(registry).works())) {
            match self.probe(registry, target, repository, &job.digest, new)? {
                Probe::Present => {
                    bump(&self.stats.blobs_present, 1);
                    return Ok(());
                }
                Probe::Absent(started) => session = started,
            }
        }
        let mount = Mount {
            registry,
            repository,
            digest: &job.digest,
            from: from.unwrap_or_default(),
            guess,
        };
        if from.is_some() && self.mount(target, &mount, &mut session)? {
            return Ok(());
        }
        self.transfer(source, target, job, repository, session)
    }

    /// Mounts the blob as `mount` says: `true` when it is there now;
    /// `false` when it must be uploaded (into `session` if the registry
    /// opened one). Harbor, Artifact Registry, Nexus and ECR without
    /// BLOB_MOUNTING refuse cross-repository mounts (401, 403, 404, 405, or
    /// a 401 taken as refused credentials on basic auth): the blob is then
    /// uploaded, and that registry is not asked to mount again this run,
    /// unless the mount was only a guess (a registry may answer a mount of
    /// a blob the other repository lacks with an error). A 404 that says
    /// the target repository does not exist is no refusal of mounts: it is
    /// the error, for the caller.
    fn mount(
        &self,
        target: &dyn Registry,
        mount: &Mount<'_>,
        session: &mut Option<UploadSession>,
    ) -> Result<bool, RegistryError> {
        match target.blob_mount(mount.repository, mount.digest, mount.from) {
            Ok(MountOutcome::Mounted) => {
                self.mounting(mount.registry).mounted();
                bump(&self.stats.blobs_mounted, 1);
                Ok(true)
            }
            Ok(MountOutcome::NotMounted(started)) => {
                if !mount.guess {
                    self.mounting(mount.registry).ignored();
                }
                *session = started;
                Ok(false)
            }
            // The target repository itself is missing (ECR answers a
            // mount into it 404 NAME_UNKNOWN): that says nothing of mounts.
            Err(e) if e.names_missing_repository() => Err(e),
            Err(
                RegistryError::Status { .. }
                | RegistryError::Auth { .. }
                | RegistryError::LoginRefused { .. },
            ) => {
                if !mount.guess {
                    self.mounting(mount.registry).refuse();
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `repository` of the store named `registry` held no tag when
    /// the plan was made ([`crate::plan::Plan::new_repositories`]).
    fn is_new(&self, registry: &str, repository: &str) -> bool {
        self.new_repositories.contains(&(registry, repository))
    }

    /// What the store named `registry` has shown of mounts this run.
    fn mounting(&self, registry: &str) -> &Mounting {
        static UNKNOWN: Mounting = Mounting::new();
        self.mounting.get(registry).unwrap_or(&UNKNOWN)
    }

    /// Whether `repository` holds a blob; when it does not, maybe an upload
    /// already started. A store that has mounted a blob this run is asked
    /// with a mount from the repository itself, which answers both at once
    /// (mounted: present; otherwise an upload session for the copy): one
    /// request instead of a HEAD and a POST. So is a `new` repository (one
    /// that held no tag when planned) on a store that has not refused,
    /// ignored or failed such a probe: the blob is most likely absent, and
    /// the session is wanted. Other stores get the HEAD, so a store that
    /// never mounts does not get a blob it holds sent twice (in a new
    /// repository, only once it has shown that it does not mount).
    fn probe(
        &self,
        registry: &str,
        target: &dyn Registry,
        repository: &str,
        digest: &Digest,
        new: bool,
    ) -> Result<Probe, RegistryError> {
        let mounting = self.mounting(registry);
        if mounting.works() || (new && mounting.probes_new()) {
            match target.blob_mount(repository, digest, repository) {
                Ok(MountOutcome::Mounted) => return Ok(Probe::Present),
                Ok(MountOutcome::NotMounted(session)) => return Ok(Probe::Absent(session)),
                Err(e) if e.names_missing_repository() => return Err(e),
                // Refused: ask the plain way, from now on.
                Err(
                    e @ (RegistryError::Status { .. }
                    | RegistryError::Auth { .. }
                    | RegistryError::LoginRefused { .. }),
                ) if !crate::registry::retry::is_transient(&e) => mounting.probe_refused(),
                // No answer, one to try again later (a 429, a 5xx), or
                // another failure: the HEAD tells whether that was the registry.
                Err(_) => {}
            }
        }
        if target.blob_exists(repository, digest)? {
            Ok(Probe::Present)
        } else {
            Ok(Probe::Absent(None))
        }
    }

    /// Streams a blob from the source into one target repository, retrying
    /// the whole transfer on transient failures (a stream cannot be replayed
    /// request by request). A 429 slows both registries for every thread.
    pub(super) fn transfer(
        &self,
        source: &dyn Registry,
        target: &dyn Registry,
        job: &BlobJob,
        repository: &str,
        mut session: Option<UploadSession>,
    ) -> Result<(), RegistryError> {
        let policy = self.options.retry;
        policy.run_throttled(
            |_| {
                let reader = source.blob_get(&job.source.repository, &job.digest, job.size)?;
                let mut counted = ProgressReader {
                    inner: reader,
                    progress: self.progress,
                };
                let session = session.take();
                target.blob_put(repository, &job.digest, job.size, &mut counted, session)
            },
            |result, attempt| match result {
                Ok(()) => Decision::Stop,
                // After SIGINT or SIGTERM nothing is sent again.
                Err(_) if super::stop::requested().is_some() => Decision::Stop,
                // The registry refused how the blob was sent (a monolithic
                // PUT, a chunk too large) and the client changed how it
                // uploads there: again at once, a few times while it adapts.
                Err(RegistryError::UploadAdapted(_)) if attempt < MAX_UPLOAD_ADAPTATIONS => {
                    Decision::RetryNow
                }
                Err(e) => policy.decide(e, attempt),
            },
            |pause| {
                source.throttle(pause);
                target.throttle(pause);
            },
        )?;
        bump(&self.stats.blobs_copied, 1);
        bump(&self.stats.bytes_copied, job.size);
        Ok(())
    }
}

/// Counts streamed bytes for the progress display.
struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(url: &str, status: u16) -> RegistryError {
        RegistryError::Status {
            method: "POST".into(),
            url: url.into(),
            status,
            codes: vec!["DENIED".into()],
            message: String::new(),
            retry_after: None,
        }
    }

    const TARGET: &str = "https://prod.example:5000";
    const SOURCE: &str = "https://staging.example";

    #[test]
    fn a_refusal_on_the_repositorys_own_urls_concerns_it_alone() {
        let here = |e: &RegistryError| refused_here(e, TARGET, SOURCE, "apps/web");
        let url = "https://prod.example:5000/v2/apps/web/blobs/uploads/?mount=sha256:1";
        assert!(here(&status(url, 403)));
        assert!(here(&status(url, 404)));
        // Too many requests, a 5xx: the registry, not the repository.
        assert!(!here(&status(url, 429)));
        assert!(!here(&status(url, 503)));
        // Another repository's URL, or the source's.
        let other = "https://prod.example:5000/v2/apps/web-2/blobs/sha256:1";
        assert!(!here(&status(other, 403)));
        assert!(!here(&status(
            "https://staging.example/v2/apps/web/blobs/sha256:1",
            403
        )));
        assert!(!here(&RegistryError::transport(
            "PUT",
            url,
            std::io::Error::other("connection reset"),
        )));
        // Credentials the target refused, not the source's.
        let refused = |registry: &str| RegistryError::LoginRefused {
            registry: registry.into(),
            origin: "the docker config".into(),
        };
        assert!(here(&refused("prod.example:5000")));
        assert!(!here(&refused("staging.example")));
        assert!(!refused_here(
            &refused("prod.example:5000"),
            TARGET,
            TARGET,
            "apps/web"
        ));
    }
}
