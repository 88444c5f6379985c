//! Blob jobs: making one blob present in every target repository that needs
//! it, with as few bytes moved as the registry allows (HEAD, mount, copy).

use std::sync::atomic::{AtomicU8, Ordering};

use super::error::ExecError;
use super::graph::BlobJob;
use super::progress::Progress;
use super::scheduler::Executor;
use super::stats::bump;
use crate::digest::Digest;
use crate::registry::retry::Decision;
use crate::registry::{MountOutcome, Registry, RegistryError, UploadSession};

/// Immediate resends of a blob while the client adapts its uploads to a
/// registry (monolithic to chunked, then halving chunks after each 413).
const MAX_UPLOAD_ADAPTATIONS: u32 = 6;

/// What a target registry has shown of cross-repository mounts this run.
#[derive(Debug, Default)]
pub(super) struct Mounting(AtomicU8);

impl Mounting {
    const UNKNOWN: u8 = 0;
    const WORKS: u8 = 1;
    const REFUSED: u8 = 2;

    /// It mounted a blob (and has not refused a self-mount probe since).
    fn works(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::WORKS
    }

    /// It refused a mount: it is not asked to mount again.
    fn refused(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::REFUSED
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
    }
}

/// One mount to try: of `digest` into `repository` of the store named
/// `registry`, from `from`; a `guess` when `from` may well lack the blob.
struct Mount<'a> {
    registry: &'a str,
    repository: &'a str,
    digest: &'a Digest,
    from: &'a str,
    guess: bool,
}

/// A blob in its first target repository, and the repositories still to get it.
pub(super) struct Landed<'j> {
    /// The repository that holds it now.
    pub into: &'j str,
    /// The job's repositories after it, each to get it by a mount (or a
    /// copy where the registry does not mount).
    pub rest: Vec<&'j str>,
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
    /// one repository after another (a referrer's blob, a repair).
    pub(super) fn blob(&self, job: &BlobJob) -> Result<(), ExecError> {
        let Some(landed) = self.land(job)? else {
            return Ok(());
        };
        for repository in landed.rest {
            self.spread(job, repository, landed.into)?;
        }
        Ok(())
    }

    /// Makes the blob present in the first of the job's repositories that
    /// can take it: there already, mounted, or copied. A repository the
    /// registry does not have (and will not create) is remembered and
    /// skipped: only its images fail. `None` when every repository is
    /// missing. A failure here fails every image of the job: nothing of the
    /// blob is in the target.
    pub(super) fn land<'j>(&self, job: &'j BlobJob) -> Result<Option<Landed<'j>>, ExecError> {
        let target = self.store(&job.target_registry)?;
        let source = self.store(&job.source.registry)?;
        let registry = &job.target_registry;
        let mut repositories = job.repositories.keys();
        for repository in repositories.by_ref() {
            if self.missing.known(registry, repository).is_some() {
                continue;
            }
            match self.blob_into(job, source.as_ref(), target.as_ref(), repository, None) {
                Ok(()) => {
                    return Ok(Some(Landed {
                        into: repository,
                        rest: repositories.map(String::as_str).collect(),
                    }));
                }
                Err(e) if e.names_missing_repository() => {
                    self.missing.found(registry, repository, &e);
                }
                Err(e) => return Err(blob_error(job, e)),
            }
        }
        Ok(None)
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
    ) -> Result<(), ExecError> {
        let registry = &job.target_registry;
        if self.missing.known(registry, repository).is_some() {
            return Ok(());
        }
        let target = self.store(registry)?;
        let source = self.store(&job.source.registry)?;
        match self.blob_into(
            job,
            source.as_ref(),
            target.as_ref(),
            repository,
            Some(landed),
        ) {
            Ok(()) => Ok(()),
            Err(e) if e.names_missing_repository() => {
                self.missing.found(registry, repository, &e);
                Ok(())
            }
            Err(e) => Err(blob_error(job, e)),
        }
    }

    /// Whether the store named `registry` has shown that it mounts.
    pub(super) fn mounts(&self, registry: &str) -> bool {
        self.mounting(registry).works()
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
        // guess may miss a blob the repository has: ask first too.
        let mut session = None;
        if from.is_none() || guess || !self.mounting(registry).works() {
            match self.probe(registry, target, repository, &job.digest)? {
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
                self.mounting(mount.registry).set(Mounting::WORKS);
                bump(&self.stats.blobs_mounted, 1);
                Ok(true)
            }
            Ok(MountOutcome::NotMounted(started)) => {
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
                    self.mounting(mount.registry).set(Mounting::REFUSED);
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// What the store named `registry` has shown of mounts this run.
    fn mounting(&self, registry: &str) -> &Mounting {
        static UNKNOWN: Mounting = Mounting(AtomicU8::new(Mounting::UNKNOWN));
        self.mounting.get(registry).unwrap_or(&UNKNOWN)
    }

    /// Whether `repository` holds a blob; when it does not, maybe an upload
    /// already started. A store that has mounted a blob this run is asked
    /// with a mount from the repository itself, which answers both at once
    /// (mounted: present; otherwise an upload session for the copy): one
    /// request instead of a HEAD and a POST. Other stores get the HEAD, so a
    /// store that never mounts does not get a blob it holds sent twice.
    fn probe(
        &self,
        registry: &str,
        target: &dyn Registry,
        repository: &str,
        digest: &Digest,
    ) -> Result<Probe, RegistryError> {
        if self.mounting(registry).works() {
            match target.blob_mount(repository, digest, repository) {
                Ok(MountOutcome::Mounted) => return Ok(Probe::Present),
                Ok(MountOutcome::NotMounted(session)) => return Ok(Probe::Absent(session)),
                Err(e) if e.names_missing_repository() => return Err(e),
                // Refused: ask the plain way, from now on.
                Err(_) => self.mounting(registry).set(Mounting::UNKNOWN),
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
