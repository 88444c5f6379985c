//! Executes a plan on the rayon pool, as a graph rather than in phases:
//!
//! 1. every image to write (target repository × digest) that a target tag
//!    already points at, by the plan, needs no blob or manifest work; the
//!    others are copied without asking the target first: what it turns out
//!    to hold costs the blob step one request per blob, not a copy;
//! 2. the others' manifest trees are read from the source, once per source
//!    digest (a `platforms` filter builds the new index here); planning
//!    already read the roots, and the stores keep what they read;
//! 3. one job per blob per target registry: it crosses the network once
//!    (or is mounted from the source repository when source and target are
//!    one registry), then is mounted into every other repository needing it;
//! 4. when an image's last blob is in, its child manifests are written by
//!    digest, then its tags (the first tag's PUT stores the manifest itself);
//! 5. when every image of a target repository is done, its floating and
//!    attached tags are written, each only if its own image made it.
//!
//! A tag is written only after everything it references is in the target,
//! so killing the run at any moment leaves no tag on an incomplete image.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::progress::Progress;
use super::stats::{CopyStats, bump};
use super::tree::{Tree, read_tree};
use crate::config::Mode;
use crate::digest::Digest;
use crate::plan::{Plan, PlanEntry, short_digest};
use crate::registry::retry::RetryPolicy;
use crate::registry::{MountOutcome, Registry, RegistryError};

/// Open stores by registry name.
pub type StoreMap = BTreeMap<String, Arc<dyn Registry>>;

/// How to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Re-check every entry against the registries first (`apply --plan`):
    /// refuse those whose source or target moved since planning.
    pub check_preconditions: bool,
    /// Retries of a whole blob transfer (streams cannot be replayed request by request).
    pub retry: RetryPolicy,
}

/// What became of one plan entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The tag now points at the image.
    Promoted,
    /// Nothing to do.
    Unchanged,
    /// The plan refused it (its reason is in the plan).
    Blocked,
    /// The registries changed since the plan was made; not attempted.
    Refused(String),
    /// Attempted and failed.
    Failed(String),
}

/// Results of a run, parallel to the plan's entries.
#[derive(Debug)]
pub struct Outcome {
    /// One status per plan entry.
    pub statuses: Vec<Status>,
    /// Source tags deleted by `mode = "move"` (`registry/repository:tag`).
    pub moved: Vec<String>,
    /// Things worth saying that are not failures (a source tag kept, …).
    pub notes: Vec<String>,
}

/// One image to make present in one target repository.
struct Image {
    target_registry: String,
    target_repository: String,
    /// Digest the target gets (the source's, or the filtered index's).
    digest: String,
    source_registry: String,
    source_repository: String,
    source_digest: String,
    platforms: Vec<String>,
    referrers: bool,
    /// Plan entries written when the image is in.
    entries: Vec<usize>,
}

/// One blob for one target registry.
struct BlobJob {
    target_registry: String,
    digest: Digest,
    size: u64,
    source_registry: String,
    source_repository: String,
    /// Target repositories needing it, the first being where it lands first.
    repositories: BTreeSet<String>,
    /// Images waiting for it.
    images: Vec<usize>,
}

/// Progress of one image through the graph.
#[derive(Default)]
struct ImageState {
    pending: AtomicUsize,
    failure: Mutex<Option<String>>,
    done_ok: std::sync::atomic::AtomicBool,
}

impl ImageState {
    fn fail(&self, message: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(message);
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Runs the plan.
pub fn run(
    plan: &Plan,
    stores: &StoreMap,
    stats: &CopyStats,
    progress: &Progress,
    options: Options,
) -> Outcome {
    let statuses: Vec<Mutex<Option<Status>>> = plan
        .entries
        .iter()
        .map(|entry| {
            Mutex::new(match entry.action {
                crate::plan::Action::Blocked => Some(Status::Blocked),
                crate::plan::Action::Unchanged => Some(Status::Unchanged),
                _ => None,
            })
        })
        .collect();
    let set = |i: usize, status: Status| {
        *statuses[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
    };
    let store = |name: &str| lookup(stores, name);

    if options.check_preconditions {
        let checks: Vec<(usize, Result<Check, String>)> = plan
            .entries
            .par_iter()
            .enumerate()
            .filter(|(_, e)| e.changes())
            .map(|(i, e)| (i, check_entry(e, stores)))
            .collect();
        for (i, check) in checks {
            match check {
                Ok(Check::Go) => {}
                Ok(Check::Done) => set(i, Status::Unchanged),
                Err(why) => set(i, Status::Refused(why)),
            }
        }
    }

    // Images: target repository × digest, each with the entries it feeds.
    let mut images: Vec<Image> = Vec::new();
    let mut by_key: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (i, entry) in plan.entries.iter().enumerate() {
        if !entry.changes()
            || statuses[i]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
        {
            continue;
        }
        let key = (
            entry.target.registry.clone(),
            entry.target.repository.clone(),
            entry.target_digest().to_string(),
        );
        let index = *by_key.entry(key).or_insert_with(|| {
            images.push(Image {
                target_registry: entry.target.registry.clone(),
                target_repository: entry.target.repository.clone(),
                digest: entry.target_digest().to_string(),
                source_registry: entry.source.registry.clone(),
                source_repository: entry.source.repository.clone(),
                source_digest: entry.source.digest.clone(),
                platforms: entry.platforms.clone(),
                referrers: false,
                entries: Vec::new(),
            });
            images.len() - 1
        });
        images[index].entries.push(i);
        images[index].referrers |= entry.referrers;
    }

    // 1. Which images the targets already hold: those a target tag points at.
    let held: BTreeSet<(&str, &str, &str)> = plan
        .entries
        .iter()
        .filter_map(|e| {
            let current = e.target.current_digest.as_deref()?;
            Some((
                e.target.registry.as_str(),
                e.target.repository.as_str(),
                current,
            ))
        })
        .collect();
    let states: Vec<ImageState> = images.iter().map(|_| ImageState::default()).collect();
    let present: Vec<bool> = images
        .par_iter()
        .zip(&states)
        .map(|(image, state)| {
            let held = held.contains(&(
                image.target_registry.as_str(),
                image.target_repository.as_str(),
                image.digest.as_str(),
            ));
            // A reviewed plan may be old: what it saw is asked again.
            if !held || !options.check_preconditions {
                return held;
            }
            match store(&image.target_registry).and_then(|target| {
                target
                    .manifest_head(&image.target_repository, &image.digest)
                    .map_err(|e| e.to_string())
            }) {
                Ok(head) => head.is_some(),
                Err(e) => {
                    state.fail(e);
                    false
                }
            }
        })
        .collect();
    let needs_copy = |i: usize| !present[i] && states[i].failure().is_none();

    // 2. Manifest trees from the sources, once per source image and filter.
    let mut tree_keys: BTreeMap<(String, String, Vec<String>), (String, String)> = BTreeMap::new();
    for (i, image) in images.iter().enumerate().filter(|(i, _)| needs_copy(*i)) {
        tree_keys
            .entry((
                image.source_registry.clone(),
                image.source_digest.clone(),
                image.platforms.clone(),
            ))
            .or_insert_with(|| (image.source_repository.clone(), images[i].digest.clone()));
    }
    let trees: BTreeMap<(String, String, Vec<String>), Result<Tree, String>> = tree_keys
        .into_par_iter()
        .map(|(key, (repository, expected))| {
            let tree = store(&key.0).and_then(|source| {
                let fetch = |d: &str| {
                    source
                        .manifest_get(&repository, d)
                        .map_err(|e| e.to_string())
                };
                read_tree(&fetch, &repository, &key.1, &key.2, &expected)
            });
            (key, tree)
        })
        .collect();
    let tree_of = |image: &Image| {
        trees.get(&(
            image.source_registry.clone(),
            image.source_digest.clone(),
            image.platforms.clone(),
        ))
    };

    // 3. Blob jobs: one per blob per target store.
    let mut jobs: BTreeMap<(String, Digest), BlobJob> = BTreeMap::new();
    for (i, image) in images.iter().enumerate() {
        if !needs_copy(i) {
            continue;
        }
        let tree = match tree_of(image) {
            Some(Ok(tree)) => tree,
            Some(Err(e)) => {
                states[i].fail(e.clone());
                continue;
            }
            None => {
                states[i].fail("its manifest was not read".to_string());
                continue;
            }
        };
        let Ok(target) = store(&image.target_registry) else {
            continue;
        };
        for blob in &tree.blobs {
            let job = jobs
                .entry((target.store_id(), blob.digest.clone()))
                .or_insert_with(|| BlobJob {
                    target_registry: image.target_registry.clone(),
                    digest: blob.digest.clone(),
                    size: blob.size,
                    source_registry: image.source_registry.clone(),
                    source_repository: image.source_repository.clone(),
                    repositories: BTreeSet::new(),
                    images: Vec::new(),
                });
            // Prefer a source in the target's own store: then nothing moves.
            if let (Ok(source), Ok(current)) =
                (store(&image.source_registry), store(&job.source_registry))
                && source.store_id() == target.store_id()
                && current.store_id() != target.store_id()
            {
                job.source_registry = image.source_registry.clone();
                job.source_repository = image.source_repository.clone();
            }
            job.repositories.insert(image.target_repository.clone());
            job.images.push(i);
            states[i].pending.fetch_add(1, Ordering::Relaxed);
        }
    }

    // Per target repository: images left before its late tags may be written.
    let mut repo_pending: BTreeMap<(String, String), AtomicUsize> = BTreeMap::new();
    for image in &images {
        repo_pending
            .entry((
                image.target_registry.clone(),
                image.target_repository.clone(),
            ))
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }
    let late_entries: BTreeMap<(String, String), Vec<(usize, usize)>> = {
        let mut late: BTreeMap<(String, String), Vec<(usize, usize)>> = BTreeMap::new();
        for (i, image) in images.iter().enumerate() {
            for &e in &image.entries {
                if plan.entries[e].is_late() {
                    late.entry((
                        image.target_registry.clone(),
                        image.target_repository.clone(),
                    ))
                    .or_default()
                    .push((e, i));
                }
            }
        }
        late
    };
    // Every regular entry by target repository, whatever its status: what
    // late tags follow.
    let mut regular_entries: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (e, entry) in plan
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_late())
    {
        regular_entries
            .entry((
                entry.target.registry.clone(),
                entry.target.repository.clone(),
            ))
            .or_default()
            .push(e);
    }

    let context = Context {
        plan,
        images: &images,
        states: &states,
        stores,
        stats,
        progress,
        options,
        statuses: &statuses,
        repo_pending: &repo_pending,
        late_entries: &late_entries,
        regular_entries: &regular_entries,
        tree_of: &tree_of,
        mounting: &stores
            .keys()
            .map(|name| (name.clone(), AtomicBool::new(false)))
            .collect(),
    };
    let context = &context;
    rayon::scope(|scope| {
        for (i, state) in states.iter().enumerate() {
            if state.pending.load(Ordering::Relaxed) == 0 {
                scope.spawn(move |scope| context.finish_image(scope, i));
            }
        }
        // Blobs that many repositories wait for first: shared base layers
        // gate the most images, and their mounts show early whether the
        // target mounts (see `probe`).
        let mut order: Vec<&BlobJob> = jobs.values().collect();
        order.sort_by_key(|job| std::cmp::Reverse(job.repositories.len()));
        for job in order {
            scope.spawn(move |scope| {
                // After SIGINT or SIGTERM no new transfer starts.
                let result = match super::stop::requested() {
                    Some(_) => Err(super::stop::not_started()),
                    None => context.blob(job),
                };
                for &i in &job.images {
                    if let Err(e) = &result {
                        context.states[i].fail(e.clone());
                    }
                    if context.states[i].pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                        scope.spawn(move |scope| context.finish_image(scope, i));
                    }
                }
            });
        }
    });

    let statuses: Vec<Status> = statuses
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Status::Failed("not attempted".to_string()))
        })
        .collect();
    let (moved, mut notes) = match super::stop::requested() {
        // Stopped: nothing more is changed, no source tag is deleted.
        Some(signal) => (
            Vec::new(),
            vec![format!(
                "stopped by {}: transfers in flight were finished, nothing new was started{}",
                super::stop::name(signal),
                if plan.entries.iter().any(|e| e.mode == Mode::Move) {
                    "; no source tag was deleted"
                } else {
                    ""
                }
            )],
        ),
        None => move_sources(plan, &statuses, stores),
    };
    notes.dedup();
    Outcome {
        statuses,
        moved,
        notes,
    }
}

/// A manifest PUT refused because the registry lacks something it references.
fn lacks_reference(error: &RegistryError) -> bool {
    ["MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "MANIFEST_UNKNOWN"]
        .iter()
        .any(|code| error.has_code(code))
}

fn lookup<'a>(stores: &'a StoreMap, name: &str) -> Result<&'a Arc<dyn Registry>, String> {
    stores
        .get(name)
        .ok_or_else(|| format!("registry `{name}` is not open"))
}

/// What re-checking a reviewed entry found.
enum Check {
    /// As planned: go ahead.
    Go,
    /// The target already holds the planned digest.
    Done,
}

/// An entry of a reviewed plan still matches the registries.
fn check_entry(entry: &PlanEntry, stores: &StoreMap) -> Result<Check, String> {
    // Already done (a re-run of a reviewed plan after a kill, or after a move
    // deleted the source): nothing to refuse.
    let target = lookup(stores, &entry.target.registry)?;
    let held = target
        .manifest_head(&entry.target.repository, &entry.target.tag)
        .map_err(|e| e.to_string())?
        .map(|h| h.digest.to_string());
    if held.as_deref() == Some(entry.target_digest()) {
        return Ok(Check::Done);
    }
    let source = lookup(stores, &entry.source.registry)?;
    let now = source
        .manifest_head(&entry.source.repository, &entry.source.tag)
        .map_err(|e| e.to_string())?
        .map(|h| h.digest.to_string());
    if now.as_deref() != Some(entry.source.digest.as_str()) {
        return Err(format!(
            "the source {}/{}:{} moved since planning: planned {}, now {}",
            entry.source.registry,
            entry.source.repository,
            entry.source.tag,
            short_digest(&entry.source.digest),
            now.as_deref().map_or("absent", short_digest)
        ));
    }
    let now = held;
    if now != entry.target.current_digest {
        return Err(format!(
            "the target {}/{}:{} changed since planning: planned {}, now {}",
            entry.target.registry,
            entry.target.repository,
            entry.target.tag,
            entry
                .target
                .current_digest
                .as_deref()
                .map_or("absent", short_digest),
            now.as_deref().map_or("absent", short_digest)
        ));
    }
    Ok(Check::Go)
}

/// Whether an error is worth another attempt.
pub fn is_transient(error: &RegistryError) -> bool {
    match error {
        RegistryError::Transport { .. } => true,
        RegistryError::Status { status, .. } => {
            crate::registry::retry::is_transient_status(*status)
        }
        // A stream that broke mid-way; a digest mismatch is not retried.
        RegistryError::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// Everything the graph's jobs share.
struct Context<'a, F> {
    plan: &'a Plan,
    images: &'a [Image],
    states: &'a [ImageState],
    stores: &'a StoreMap,
    stats: &'a CopyStats,
    progress: &'a Progress,
    options: Options,
    statuses: &'a [Mutex<Option<Status>>],
    repo_pending: &'a BTreeMap<(String, String), AtomicUsize>,
    late_entries: &'a BTreeMap<(String, String), Vec<(usize, usize)>>,
    regular_entries: &'a BTreeMap<(String, String), Vec<usize>>,
    tree_of: &'a F,
    /// Target registries that mounted a blob this run, by name.
    mounting: &'a BTreeMap<String, AtomicBool>,
}

/// What a target repository holds of a blob.
enum Probe {
    Present,
    /// Absent; the registry may have opened the upload already.
    Absent(Option<crate::registry::UploadSession>),
}

impl<'a, F> Context<'a, F>
where
    F: Fn(&Image) -> Option<&'a Result<Tree, String>> + Sync,
{
    fn store(&self, name: &str) -> Result<&'a Arc<dyn Registry>, String> {
        lookup(self.stores, name)
    }

    fn set(&self, entry: usize, status: Status) {
        *self.statuses[entry]
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(status);
    }

    /// Makes one blob present in every target repository that needs it.
    fn blob(&self, job: &BlobJob) -> Result<(), String> {
        let target = self.store(&job.target_registry)?;
        let source = self.store(&job.source_registry)?;
        let describe =
            |e: RegistryError| format!("blob {}: {e}", short_digest(&job.digest.to_string()));
        let mut landed: Option<&str> = None;
        for repository in &job.repositories {
            // From a repository of the same store: mount, nothing moves.
            let from = match landed {
                Some(landed) => Some(landed),
                None if source.store_id() == target.store_id() => {
                    Some(job.source_repository.as_str())
                }
                None => None,
            }
            .filter(|from| from != repository);
            // On a store that mounts, a mount of a blob the repository
            // already has succeeds too, so it needs no HEAD first. Elsewhere
            // a refused mount would mean an upload of a blob already there:
            // ask first.
            let mounts = self
                .mounts_work(&job.target_registry)
                .load(Ordering::Relaxed);
            let mut session = None;
            if from.is_none() || !mounts {
                match self.probe(
                    &job.target_registry,
                    target.as_ref(),
                    repository,
                    &job.digest,
                ) {
                    Ok(Probe::Present) => {
                        bump(&self.stats.blobs_present, 1);
                        landed.get_or_insert(repository);
                        continue;
                    }
                    Ok(Probe::Absent(started)) => session = started,
                    Err(e) => return Err(describe(e)),
                }
            }
            if let Some(from) = from {
                match target
                    .blob_mount(repository, &job.digest, from)
                    .map_err(describe)?
                {
                    MountOutcome::Mounted => {
                        self.mounts_work(&job.target_registry)
                            .store(true, Ordering::Relaxed);
                        bump(&self.stats.blobs_mounted, 1);
                        landed.get_or_insert(repository);
                        continue;
                    }
                    MountOutcome::NotMounted(started) => session = started,
                }
            }
            self.transfer(source.as_ref(), target.as_ref(), job, repository, session)
                .map_err(describe)?;
            landed.get_or_insert(repository);
        }
        Ok(())
    }

    /// Set once a store mounted a blob in this run.
    fn mounts_work(&self, registry: &str) -> &AtomicBool {
        static UNKNOWN: AtomicBool = AtomicBool::new(false);
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
        if self.mounts_work(registry).load(Ordering::Relaxed) {
            match target.blob_mount(repository, digest, repository) {
                Ok(MountOutcome::Mounted) => return Ok(Probe::Present),
                Ok(MountOutcome::NotMounted(session)) => return Ok(Probe::Absent(session)),
                // Refused: ask the plain way, from now on.
                Err(_) => self.mounts_work(registry).store(false, Ordering::Relaxed),
            }
        }
        if target.blob_exists(repository, digest)? {
            Ok(Probe::Present)
        } else {
            Ok(Probe::Absent(None))
        }
    }

    /// Streams a blob from the source into one target repository, retrying
    /// the whole transfer on transient failures.
    fn transfer(
        &self,
        source: &dyn Registry,
        target: &dyn Registry,
        job: &BlobJob,
        repository: &str,
        mut session: Option<crate::registry::UploadSession>,
    ) -> Result<(), RegistryError> {
        let mut attempt = 0;
        loop {
            let result = (|| {
                let reader = source.blob_get(&job.source_repository, &job.digest, job.size)?;
                let mut counted = ProgressReader {
                    inner: reader,
                    progress: self.progress,
                };
                target.blob_put(
                    repository,
                    &job.digest,
                    job.size,
                    &mut counted,
                    session.take(),
                )
            })();
            match result {
                Ok(()) => {
                    bump(&self.stats.blobs_copied, 1);
                    bump(&self.stats.bytes_copied, job.size);
                    return Ok(());
                }
                // The client switched to chunked uploads on the 413: again at once.
                Err(RegistryError::Status { status: 413, .. }) if attempt == 0 => {}
                Err(e)
                    if is_transient(&e)
                        && attempt < self.options.retry.retries
                        && super::stop::requested().is_none() =>
                {
                    let pause = match &e {
                        RegistryError::Status {
                            retry_after: Some(wait),
                            ..
                        } => *wait,
                        _ => self.options.retry.backoff(attempt),
                    };
                    if matches!(e, RegistryError::Status { status: 429, .. }) {
                        // Slow the registry down for every thread, not just this one.
                        source.throttle(pause);
                        target.throttle(pause);
                    } else {
                        std::thread::sleep(pause);
                    }
                }
                Err(e) => return Err(e),
            }
            attempt += 1;
        }
    }

    /// All of an image's blobs are in (or failed): write its manifests and tags.
    fn finish_image<'s>(&'s self, scope: &rayon::Scope<'s>, i: usize) {
        let image = &self.images[i];
        let state = &self.states[i];
        if state.failure().is_none()
            && let Err(e) = self.write_image(image)
        {
            state.fail(e);
        }
        let failure = state.failure();
        let mut written = Vec::new();
        for &e in &image.entries {
            let entry = &self.plan.entries[e];
            if entry.is_late() {
                continue;
            }
            match &failure {
                Some(why) => self.set(e, Status::Failed(why.clone())),
                None => match self.write_tag(entry, image) {
                    Ok(()) => {
                        if written.is_empty() && matches!((self.tree_of)(image), Some(Ok(_))) {
                            // This tag's PUT stored the root manifest.
                            bump(&self.stats.manifests_written, 1);
                        }
                        written.push(entry.target.tag.clone());
                        self.set(e, Status::Promoted);
                    }
                    Err(why) => self.set(e, Status::Failed(why)),
                },
            }
        }
        if failure.is_none() {
            if !written.is_empty() && matches!((self.tree_of)(image), Some(Ok(_))) {
                // Referrers name the image as their subject: now it is stored.
                self.referrers_or_note(image);
            }
            state.done_ok.store(true, Ordering::Release);
        }
        let name = format!(
            "{}/{}@{}",
            image.target_registry,
            image.target_repository,
            short_digest(&image.digest)
        );
        match &failure {
            Some(why) => self
                .progress
                .image_done(&format!("failed {name}: {why}"), true),
            None => {
                let tags = if written.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", written.join(", "))
                };
                self.progress
                    .image_done(&format!("promoted {name}{tags}"), false)
            }
        }
        let repo = (
            image.target_registry.clone(),
            image.target_repository.clone(),
        );
        if self
            .repo_pending
            .get(&repo)
            .is_some_and(|n| n.fetch_sub(1, Ordering::AcqRel) == 1)
        {
            scope.spawn(move |_| self.late_tags(&repo));
        }
    }

    /// Child manifests, then the root by digest; then referrers.
    fn write_image(&self, image: &Image) -> Result<(), String> {
        let target = self.store(&image.target_registry)?;
        let Some(Ok(tree)) = (self.tree_of)(image) else {
            // Present in the target already.
            bump(&self.stats.manifests_present, 1);
            self.referrers_or_note(image);
            return Ok(());
        };
        // The first tag's PUT stores the root manifest: no PUT by digest before it.
        let tagged = image
            .entries
            .iter()
            .any(|&e| !self.plan.entries[e].is_late());
        self.put_manifests(
            target.as_ref(),
            &image.target_repository,
            tree,
            tagged,
            Some(image),
        )?;
        if !tagged {
            self.referrers_or_note(image);
        }
        Ok(())
    }

    /// Writes a tree's manifests by digest, children first. A child is PUT
    /// without asking whether the target has it: rewriting a present one
    /// costs the registry about what the HEAD would, and a new one (the
    /// usual case) is then one request instead of two.
    /// The root is left to the caller when a tag is written next (`tagged`):
    /// the tag's PUT stores it, and the registry refuses it while anything
    /// it references is missing, so the tag still lands last.
    ///
    /// With `image`, a PUT the registry refuses for a blob or child it
    /// lacks is repaired (see `repair`) and tried once more.
    fn put_manifests(
        &self,
        target: &dyn Registry,
        repository: &str,
        tree: &Tree,
        tagged: bool,
        image: Option<&Image>,
    ) -> Result<(), String> {
        let root = tree.manifests.len().saturating_sub(1);
        for (i, manifest) in tree.manifests.iter().enumerate() {
            if i == root && tagged {
                continue;
            }
            let digest = manifest.digest.to_string();
            self.put_or_repair(
                &format!("writing manifest {}", short_digest(&digest)),
                image.map(|image| (image, tree)),
                || target.manifest_put(repository, &digest, manifest),
            )?;
            bump(&self.stats.manifests_written, 1);
        }
        Ok(())
    }

    /// Runs a manifest PUT. When the registry refuses it for a blob or
    /// child it lacks and the image's tree is known, the image is repaired
    /// and the PUT runs once more. `what` begins the error message.
    fn put_or_repair(
        &self,
        what: &str,
        image: Option<(&Image, &Tree)>,
        put: impl Fn() -> Result<(), RegistryError>,
    ) -> Result<(), String> {
        let result = match (put(), image) {
            (Err(e), Some((image, tree))) if lacks_reference(&e) => {
                self.repair(image, tree, &e)?;
                put()
            }
            (result, _) => result,
        };
        result.map_err(|e| format!("{what}: {e}"))
    }

    /// The target refused a manifest for a blob or child manifest it lacks,
    /// although the blob step saw or put it there (garbage-collected since,
    /// or a mount that did not hold). The registry is the truth: every blob
    /// of the image is asked for again, plainly, and copied when missing,
    /// then the child manifests are written again. The caller retries once.
    fn repair(&self, image: &Image, tree: &Tree, refused: &RegistryError) -> Result<(), String> {
        crate::report::log(&format!(
            "note: {}/{}@{}: the registry lacks part of the image ({refused}); checking every blob again",
            image.target_registry,
            image.target_repository,
            short_digest(&image.digest)
        ));
        let source = self.store(&image.source_registry)?;
        let target = self.store(&image.target_registry)?;
        let repository = &image.target_repository;
        for blob in &tree.blobs {
            let describe = |e: RegistryError| {
                format!(
                    "repairing blob {}: {e}",
                    short_digest(&blob.digest.to_string())
                )
            };
            if target
                .blob_exists(repository, &blob.digest)
                .map_err(describe)?
            {
                continue;
            }
            let job = BlobJob {
                target_registry: image.target_registry.clone(),
                digest: blob.digest.clone(),
                size: blob.size,
                source_registry: image.source_registry.clone(),
                source_repository: image.source_repository.clone(),
                repositories: BTreeSet::from([repository.clone()]),
                images: Vec::new(),
            };
            self.transfer(source.as_ref(), target.as_ref(), &job, repository, None)
                .map_err(describe)?;
        }
        let root = tree.manifests.len().saturating_sub(1);
        for child in &tree.manifests[..root] {
            target
                .manifest_put(repository, &child.digest.to_string(), child)
                .map_err(|e| {
                    format!(
                        "repairing manifest {}: {e}",
                        short_digest(&child.digest.to_string())
                    )
                })?;
        }
        Ok(())
    }

    /// Referrers are extras: failing to copy them is said, not fatal.
    fn referrers_or_note(&self, image: &Image) {
        if let Err(e) = self.copy_referrers(image) {
            crate::report::log(&format!(
                "warning: {}/{}@{}: referrers not copied: {e}",
                image.target_registry,
                image.target_repository,
                short_digest(&image.digest)
            ));
        }
    }

    /// OCI 1.1 referrers of the image (signatures, SBOMs pushed with a
    /// `subject`), where the source offers the API.
    fn copy_referrers(&self, image: &Image) -> Result<(), String> {
        if !image.referrers || image.digest != image.source_digest {
            return Ok(());
        }
        let source = self.store(&image.source_registry)?;
        let target = self.store(&image.target_registry)?;
        let digest: Digest = image.source_digest.parse().map_err(|e| format!("{e}"))?;
        let Some(referrers) = source
            .referrers(&image.source_repository, &digest)
            .map_err(|e| format!("listing referrers: {e}"))?
        else {
            return Ok(());
        };
        // Each referrer is an image of its own, copied by digest like any
        // other: blobs, then manifests; no tag.
        for referrer in referrers {
            let digest = referrer.digest.to_string();
            let copied = (|| {
                if target
                    .manifest_head(&image.target_repository, &digest)
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    bump(&self.stats.manifests_present, 1);
                    return Ok(());
                }
                let fetch = |d: &str| {
                    source
                        .manifest_get(&image.source_repository, d)
                        .map_err(|e| e.to_string())
                };
                let tree = read_tree(&fetch, &image.source_repository, &digest, &[], &digest)?;
                for blob in &tree.blobs {
                    self.blob(&BlobJob {
                        target_registry: image.target_registry.clone(),
                        digest: blob.digest.clone(),
                        size: blob.size,
                        source_registry: image.source_registry.clone(),
                        source_repository: image.source_repository.clone(),
                        repositories: BTreeSet::from([image.target_repository.clone()]),
                        images: Vec::new(),
                    })?;
                }
                self.put_manifests(
                    target.as_ref(),
                    &image.target_repository,
                    &tree,
                    false,
                    None,
                )
            })();
            copied.map_err(|e| format!("copying referrer {}: {e}", short_digest(&digest)))?;
        }
        Ok(())
    }

    /// Points one tag at its complete image.
    fn write_tag(&self, entry: &PlanEntry, image: &Image) -> Result<(), String> {
        let target = self.store(&image.target_registry)?;
        let manifest = match (self.tree_of)(image) {
            Some(Ok(tree)) => tree
                .manifests
                .last()
                .cloned()
                .ok_or_else(|| "empty manifest tree".to_string())?,
            // Present already: its bytes are the target's.
            _ => target
                .manifest_get(&image.target_repository, &image.digest)
                .map_err(|e| e.to_string())?,
        };
        let tree = match (self.tree_of)(image) {
            Some(Ok(tree)) => Some((image, tree)),
            _ => None,
        };
        self.put_or_repair(&format!("writing tag {}", entry.target.tag), tree, || {
            target.manifest_put(&image.target_repository, &entry.target.tag, &manifest)
        })?;
        bump(&self.stats.tags_written, 1);
        Ok(())
    }

    /// Why a late tag must not be written: the version tag a floating tag
    /// follows, or the image a signature tag belongs to, did not make it.
    fn blocker(&self, repo: &(String, String), late: &PlanEntry) -> Option<String> {
        let subject = late.attached.then(|| {
            late.target
                .tag
                .split('.')
                .next()
                .unwrap_or("")
                .replacen('-', ":", 1)
        });
        let regular = self.regular_entries.get(repo).into_iter().flatten();
        for (entry, status) in regular.map(|&e| (&self.plan.entries[e], &self.statuses[e])) {
            let related = match &subject {
                Some(subject) => entry.target_digest() == subject,
                None => {
                    entry.source.registry == late.source.registry
                        && entry.source.repository == late.source.repository
                        && entry.source.tag == late.source.tag
                }
            };
            if !related {
                continue;
            }
            let status = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let what = match status {
                Some(Status::Promoted | Status::Unchanged) | None => continue,
                Some(Status::Blocked) => "is blocked",
                Some(Status::Refused(_)) => "was refused",
                Some(Status::Failed(_)) => "failed",
            };
            return Some(format!(
                "not written: {}:{} {what}",
                entry.target.repository, entry.target.tag
            ));
        }
        None
    }

    /// Floating and attached tags of a repository whose images are all done.
    fn late_tags(&self, repo: &(String, String)) {
        let Some(entries) = self.late_entries.get(repo) else {
            return;
        };
        let results: Vec<(usize, Status)> = entries
            .par_iter()
            .map(|&(e, i)| {
                let image = &self.images[i];
                let entry = &self.plan.entries[e];
                if !self.states[i].done_ok.load(Ordering::Acquire) {
                    let why = self.states[i]
                        .failure()
                        .unwrap_or_else(|| "its image failed".to_string());
                    return (e, Status::Failed(why));
                }
                if let Some(why) = self.blocker(repo, entry) {
                    return (e, Status::Failed(why));
                }
                match self.write_tag(entry, image) {
                    Ok(()) => (e, Status::Promoted),
                    Err(why) => (e, Status::Failed(why)),
                }
            })
            .collect();
        for (e, status) in results {
            self.set(e, status);
        }
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

/// `mode = "move"`: deletes each source tag whose every entry is done. A
/// registry that cannot delete tags gets the manifest deleted by digest,
/// only when no other tag of the source repository points at it.
fn move_sources(plan: &Plan, statuses: &[Status], stores: &StoreMap) -> (Vec<String>, Vec<String>) {
    // (registry, repository, tag) → (digest, all done, any move)
    let mut sources: BTreeMap<(String, String, String), (String, bool, bool)> = BTreeMap::new();
    for (entry, status) in plan.entries.iter().zip(statuses) {
        let slot = sources
            .entry((
                entry.source.registry.clone(),
                entry.source.repository.clone(),
                entry.source.tag.clone(),
            ))
            .or_insert((entry.source.digest.clone(), true, false));
        slot.1 &= matches!(status, Status::Promoted | Status::Unchanged);
        slot.2 |= entry.mode == Mode::Move && !entry.is_late();
    }
    let mut moved = Vec::new();
    let mut notes = Vec::new();
    // Tags a registry would not delete, by (registry, repository, digest).
    let mut by_digest: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for ((registry, repository, tag), (digest, done, is_move)) in &sources {
        if !is_move {
            continue;
        }
        let name = format!("{registry}/{repository}:{tag}");
        if !done {
            notes.push(format!("kept {name}: not every target has it"));
            continue;
        }
        let Some(source) = stores.get(registry) else {
            continue;
        };
        match source.manifest_head(repository, tag) {
            Ok(Some(head)) if head.digest.to_string() == *digest => {}
            Ok(None) => {
                moved.push(name);
                continue;
            }
            Ok(Some(head)) => {
                notes.push(format!(
                    "kept {name}: it moved to {} during the run",
                    short_digest(&head.digest.to_string())
                ));
                continue;
            }
            Err(e) => {
                notes.push(format!("kept {name}: {e}"));
                continue;
            }
        }
        match source.tag_delete(repository, tag) {
            Ok(true) => moved.push(name),
            Ok(false) => by_digest
                .entry((registry.clone(), repository.clone(), digest.clone()))
                .or_default()
                .push(tag.clone()),
            Err(e) if e.is_not_found() => moved.push(name),
            Err(e) => notes.push(format!("kept {name}: deleting it failed: {e}")),
        }
    }
    for ((registry, repository, digest), tags) in by_digest {
        let Some(source) = stores.get(&registry) else {
            continue;
        };
        let names = || {
            tags.iter()
                .map(|t| format!("{registry}/{repository}:{t}"))
                .collect::<Vec<_>>()
        };
        let others = match other_tags_at(source.as_ref(), &repository, &digest, &tags) {
            Ok(others) => others,
            Err(e) => {
                notes.push(format!("kept {}: {e}", names().join(", ")));
                continue;
            }
        };
        if !others.is_empty() {
            notes.push(format!(
                "kept {}: the registry cannot delete a tag alone, and {} still point at {}",
                names().join(", "),
                others.join(", "),
                short_digest(&digest)
            ));
            continue;
        }
        let deleted = digest
            .parse::<Digest>()
            .map_err(|e| e.to_string())
            .and_then(|d| match source.manifest_delete(&repository, &d) {
                // A retried DELETE whose first attempt went through.
                Err(e) if e.is_not_found() => Ok(()),
                other => other.map_err(|e| e.to_string()),
            });
        match deleted {
            Ok(()) => moved.extend(names()),
            Err(e) => notes.push(format!(
                "kept {}: deleting {} failed: {e}",
                names().join(", "),
                short_digest(&digest)
            )),
        }
    }
    (moved, notes)
}

/// Tags of `repository`, other than `except`, that point at `digest`.
fn other_tags_at(
    source: &dyn Registry,
    repository: &str,
    digest: &str,
    except: &[String],
) -> Result<Vec<String>, String> {
    let tags = source.tags(repository).map_err(|e| e.to_string())?;
    let heads: Vec<Result<Option<String>, String>> = tags
        .par_iter()
        .filter(|t| !except.contains(t))
        .map(|tag| {
            let head = source
                .manifest_head(repository, tag)
                .map_err(|e| e.to_string())?;
            let Some(head) = head else {
                return Ok(None);
            };
            if head.digest.to_string() == digest {
                return Ok(Some(tag.clone()));
            }
            // An index whose child is this manifest would break too.
            if crate::manifest::is_index(&head.media_type) {
                let index = source
                    .manifest_get(repository, &head.digest.to_string())
                    .map_err(|e| e.to_string())?;
                let view = index.view().map_err(|e| e.to_string())?;
                if view
                    .manifests
                    .iter()
                    .any(|m| m.digest.to_string() == digest)
                {
                    return Ok(Some(tag.clone()));
                }
            }
            Ok(None)
        })
        .collect();
    let mut others = Vec::new();
    for head in heads {
        if let Some(tag) = head? {
            others.push(tag);
        }
    }
    Ok(others)
}
