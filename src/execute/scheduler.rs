//! Runs the graph on the rayon pool: blob jobs first (most shared first);
//! an image whose last blob is in gets its manifests and tags; a repository
//! whose images are all done gets its floating and attached tags.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use super::error::ExecError;
use super::graph::{BlobJob, RepositoryWaits};
use super::image_run::ImageRun;
use super::landing::{Landed, Missed};
use super::mounting::Mounting;
use super::options::{Options, lookup};
use super::progress::Progress;
use super::stats::CopyStats;
use super::status::{Status, Statuses};
use crate::plan::{Plan, PlanEntry, RepositoryKey};
use crate::registry::Registry;
use crate::registry::StoreMap;

/// Everything the graph's jobs share.
pub struct Executor<'a> {
    pub(super) plan: &'a Plan,
    /// The images, by the index jobs name them by.
    pub(super) images: &'a [ImageRun<'a>],
    pub(super) stores: &'a StoreMap,
    pub(super) stats: &'a CopyStats,
    pub(super) progress: &'a Progress,
    pub(super) options: Options,
    pub(super) statuses: &'a Statuses,
    pub(super) waits: &'a RepositoryWaits,
    /// Images left per target repository before its late tags may be written.
    pub(super) repository_pending: BTreeMap<RepositoryKey, AtomicUsize>,
    /// What each target registry has shown of mounts this run, by name.
    pub(super) mounting: BTreeMap<String, Mounting>,
    /// The plan's new repositories ([`Plan::new_repositories`]), as
    /// (registry, repository): their blobs are taken to be absent.
    pub(super) new_repositories: BTreeSet<(&'a str, &'a str)>,
    /// Target repositories found missing on registries that do not create
    /// them on push.
    pub(super) missing: super::missing::MissingRepositories,
    /// The referrers fallback tags this run wrote (records then know
    /// whether a subject's must be read first).
    pub(super) fallback_tags: std::sync::Mutex<BTreeSet<crate::keys::TagKey>>,
}

impl<'a> Executor<'a> {
    /// The open store named `name`.
    pub(super) fn store(&self, name: &str) -> Result<&'a Arc<dyn Registry>, ExecError> {
        lookup(self.stores, name)
    }

    /// Runs every job to the end.
    pub fn run(&self, jobs: &[BlobJob]) {
        rayon::scope(|scope| {
            for (i, image) in self.images.iter().enumerate() {
                if image.state.pending.load(Ordering::Relaxed) == 0 {
                    scope.spawn(move |scope| self.finish_image(scope, i));
                }
            }
            for job in jobs {
                scope.spawn(move |scope| self.run_job(scope, job));
            }
        });
    }

    /// Lands a blob in its first target repository, then spreads it to the
    /// others side by side (mounts, one round trip each): an image waits
    /// for its own repository's copy, not for every repository that shares
    /// the layer. While the registry has not shown whether it mounts, the
    /// first spread runs before the others, so they know whether to ask it
    /// first. A repository that refuses the blob fails its own images; a
    /// failure any repository would meet (the source, a registry that does
    /// not answer) fails the spreads not started yet at once, rather than
    /// each waiting through its retries.
    fn run_job<'s>(&'s self, scope: &rayon::Scope<'s>, job: &'s BlobJob) {
        // After SIGINT or SIGTERM no new transfer starts.
        if super::stop::requested().is_some() {
            let stopped = Arc::new(super::stop::not_started());
            return self.blob_done(scope, job, &all(job), Some(stopped));
        }
        let landing = self.land(job);
        for (repository, error) in landing.passed {
            self.blob_done(scope, job, &[repository], error.map(Arc::new));
        }
        let (into, rest) = match landing.outcome {
            None => return,
            Some(Landed::Failed {
                error,
                repositories,
            }) => return self.blob_done(scope, job, &repositories, Some(Arc::new(error))),
            Some(Landed::In { into, rest }) => (into, rest),
        };
        self.blob_done(scope, job, &[into], None);
        let failed = Arc::new(OnceLock::new());
        let mut rest = rest.into_iter();
        if self.mounting_unknown(&job.target_registry)
            && let Some(first) = rest.next()
        {
            self.spread_into(scope, job, first, into, &failed);
        }
        for repository in rest {
            let failed = failed.clone();
            scope.spawn(move |scope| self.spread_into(scope, job, repository, into, &failed));
        }
    }

    /// One spread of a landed blob, unless the job met a failure every
    /// repository would (`failed`) or a stop was asked for.
    fn spread_into<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        job: &'s BlobJob,
        repository: &'s str,
        into: &str,
        failed: &OnceLock<Arc<ExecError>>,
    ) {
        let error = if let Some(error) = failed.get() {
            Some(error.clone())
        } else if super::stop::requested().is_some() {
            Some(Arc::new(super::stop::not_started()))
        } else {
            match self.spread(job, repository, into) {
                Ok(()) => None,
                Err(Missed::Here(error)) => Some(Arc::new(error)),
                Err(Missed::Everywhere(error)) => {
                    Some(failed.get_or_init(|| Arc::new(error)).clone())
                }
            }
        };
        self.blob_done(scope, job, &[repository], error);
    }

    /// The job's blob is settled in `repositories`: their images have one
    /// blob less to wait for (failed, with `error`); an image with none
    /// left is finished.
    fn blob_done<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        job: &BlobJob,
        repositories: &[&str],
        error: Option<Arc<ExecError>>,
    ) {
        let images = repositories
            .iter()
            .filter_map(|repository| job.repositories.get(*repository))
            .flatten();
        for &i in images {
            if let Some(e) = &error {
                self.images[i].state.fail(e.clone());
            }
            if self.images[i].state.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                scope.spawn(move |scope| self.finish_image(scope, i));
            }
        }
    }

    /// All of an image's blobs are in (or failed): write its manifests and tags.
    fn finish_image<'s>(&'s self, scope: &rayon::Scope<'s>, i: usize) {
        let image = &self.images[i].write;
        let state = &self.images[i].state;
        if state.failure().is_none()
            && let Err(e) = self.write_image(i)
        {
            state.fail(Arc::new(e));
        }
        let failure = state.failure();
        let (written, tag_failure) = self.write_regular_tags(i, failure.as_ref());
        if failure.is_none() {
            state.done_ok.store(true, Ordering::Release);
        }
        match failure.as_ref().or(tag_failure.as_ref()) {
            Some(why) => self
                .progress
                .image_done(&format!("failed {}: {why}", image.key), true),
            None => {
                // Floating and attached tags follow once the repository's
                // other images are in: named here too, so every line says
                // which tags the image gets.
                let late = self.images[i]
                    .write
                    .entries
                    .iter()
                    .map(|&e| &self.plan.entries[e])
                    .filter(|entry| entry.is_late())
                    .map(|entry| entry.target.tag.clone());
                let named: Vec<String> = written.iter().cloned().chain(late).collect();
                let tags = if named.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", named.join(", "))
                };
                self.progress
                    .image_done(&format!("promoted {}{tags}", image.key), false)
            }
        }
        // Referrers name the image as their subject: once it is stored
        // (present already, by digest, or by a tag), they follow.
        let stored = self.images[i].tree.is_none() || !written.is_empty() || !self.tagged(image);
        if failure.is_none() && stored {
            self.referrers_or_note(image);
        }
        let repository = image.key.repository_key();
        if self
            .repository_pending
            .get(&repository)
            .is_some_and(|n| n.fetch_sub(1, Ordering::AcqRel) == 1)
        {
            scope.spawn(move |_| self.late_tags(&repository));
        }
    }

    /// The image's version tags, in plan order: the tags written, and the
    /// first tag's failure if one failed.
    fn write_regular_tags(
        &self,
        i: usize,
        failure: Option<&Arc<ExecError>>,
    ) -> (Vec<String>, Option<Arc<ExecError>>) {
        let mut written = Vec::new();
        let mut tag_failure = None;
        for &e in &self.images[i].write.entries {
            let entry = &self.plan.entries[e];
            if entry.is_late() {
                continue;
            }
            if let Some(why) = failure {
                self.statuses.set(e, Status::Failed(why.clone()));
                continue;
            }
            match self.write_tag(entry, i) {
                Ok(()) => {
                    if written.is_empty() && self.images[i].tree.is_some() {
                        // This tag's PUT stored the root manifest.
                        super::stats::bump(&self.stats.manifests_written, 1);
                    }
                    written.push(entry.target.tag.clone());
                    self.statuses.set(e, Status::Promoted);
                }
                Err(why) => {
                    let why = Arc::new(why);
                    tag_failure.get_or_insert_with(|| why.clone());
                    self.statuses.set(e, Status::Failed(why));
                }
            }
        }
        (written, tag_failure)
    }

    /// Why a late tag must not be written: the version tag a floating tag
    /// follows, or the image a signature tag belongs to, did not make it.
    fn blocker(&self, repository: &RepositoryKey, late: &PlanEntry) -> Option<ExecError> {
        let regular = self.waits.regular.get(repository).into_iter().flatten();
        for &e in regular {
            let entry = &self.plan.entries[e];
            if !late.follows(entry) {
                continue;
            }
            let why = match self.statuses.get(e) {
                Some(Status::Promoted | Status::Unchanged | Status::Pruned) | None => continue,
                Some(Status::Blocked) => "is blocked",
                Some(Status::Refused(_)) => "was refused",
                Some(Status::Failed(_)) => "failed",
            };
            return Some(ExecError::Follows {
                repository: entry.target.repository.clone(),
                tag: entry.target.tag.clone(),
                why,
            });
        }
        None
    }

    /// Floating and attached tags of a repository whose images are all done.
    fn late_tags(&self, repository: &RepositoryKey) {
        let Some(entries) = self.waits.late.get(repository) else {
            return;
        };
        let results: Vec<(usize, Status)> = entries
            .par_iter()
            .map(|&(e, i)| {
                let entry = &self.plan.entries[e];
                if !self.images[i].state.done_ok.load(Ordering::Acquire) {
                    let why = self.images[i]
                        .state
                        .failure()
                        .unwrap_or_else(|| Arc::new(ExecError::ImageFailed));
                    return (e, Status::Failed(why));
                }
                if let Some(why) = self.blocker(repository, entry) {
                    return (e, Status::failed(why));
                }
                match self.write_tag(entry, i) {
                    Ok(()) => (e, Status::Promoted),
                    Err(why) => (e, Status::failed(why)),
                }
            })
            .collect();
        for (e, status) in results {
            self.statuses.set(e, status);
        }
    }
}

/// Every repository of the job.
fn all(job: &BlobJob) -> Vec<&str> {
    job.repositories.keys().map(String::as_str).collect()
}
