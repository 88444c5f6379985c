//! Executing plans: a graph of blob, manifest and tag jobs on the rayon pool,
//! in an order that never exposes an incomplete image.
//!
//! 1. every image to write (target repository × digest) that a target tag
//!    already points at, by the plan, needs no blob or manifest work; the
//!    others are copied without asking the target first: what it turns out
//!    to hold costs the blob step one request per blob, not a copy
//!    (`preconditions.rs`);
//! 2. the others' manifest trees are read from the source, once per source
//!    digest (a `platforms` filter builds the new index here); planning
//!    already read the roots, and the stores keep what they read;
//! 3. one job per blob per target registry (`graph.rs`, pure): it crosses
//!    the network once (or is mounted from the source repository when source
//!    and target are one registry), then is mounted into every other
//!    repository needing it, side by side (`blobs.rs`, `scheduler.rs`);
//! 4. when an image's last blob is in its repository, its child manifests
//!    are written by digest, then its tags (the first tag's PUT stores the
//!    manifest itself; `manifests.rs`), then its referrers (`referrers.rs`);
//! 5. when every image of a target repository is done, its floating and
//!    attached tags are written, each only if its own image made it
//!    (`scheduler.rs`); then the referrers of images the plan left as they
//!    were are brought up to date (`referrers.rs`); last, moved source tags
//!    are deleted (`moves.rs`).
//!
//! A tag is written only after everything it references is in the target,
//! so killing the run at any moment leaves no tag on an incomplete image.

mod blobs;
mod error;
pub mod graph;
mod image_run;
mod landing;
mod manifests;
mod missing;
mod mounting;
mod moves;
mod options;
mod preconditions;
pub mod progress;
mod prune;
mod records;
mod referrers;
mod scheduler;
mod stats;
mod status;
pub mod stop;
pub mod summary;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

pub use crate::record::RecordWritten;
pub use error::ExecError;
pub use progress::{Progress, ProgressMode};
pub use stats::{CopyStats, CopyStatsSnapshot};
pub use status::{Outcome, Status};
pub use summary::{ApplyReport, EntryStatus};

use self::image_run::ImageRun;
use self::scheduler::Executor;
use self::status::Statuses;
use crate::digest::Digest;
use crate::plan::Transfer;
use crate::plan::{ImageToWrite, Plan, images_kept, images_to_write};
use crate::tree::{Tree, read_tree};

pub use crate::registry::StoreMap;
pub use options::Options;
use options::lookup;

/// Runs the plan.
pub fn run(
    plan: &Plan,
    stores: &StoreMap,
    stats: &CopyStats,
    progress: &Progress,
    options: Options,
) -> Outcome {
    let statuses = Statuses::for_plan(plan);
    if options.check_preconditions {
        preconditions::check_reviewed(plan, stores, &statuses);
    }
    let writes = images_to_write(&plan.entries, |i| statuses.get(i).is_none());
    let present = preconditions::present_images(plan, &writes, stores, options.check_preconditions);
    let copies: Vec<Option<&ImageToWrite>> = writes
        .iter()
        .zip(&present)
        .map(|(write, present)| matches!(present, Ok(false)).then_some(write))
        .collect();
    let read = read_trees(&copies, stores);
    let images: Vec<ImageRun> = writes
        .iter()
        .zip(present)
        .zip(&read.of_image)
        .map(|((write, present), tree)| image_run(write, present, tree.map(|t| &read.trees[t])))
        .collect();
    let store_ids: graph::StoreIds = stores
        .iter()
        .map(|(name, store)| (name.clone(), store.store_id()))
        .collect();
    let mut jobs = graph::blob_jobs(&images, &store_ids);
    graph::hint_mounts(plan, &images, &mut jobs);
    for job in &jobs {
        for i in job.images() {
            images[i].state.pending.fetch_add(1, Ordering::Relaxed);
        }
    }
    let waits = graph::repository_waits(plan, &images);
    let executor = Executor {
        plan,
        images: &images,
        stores,
        stats,
        progress,
        options,
        statuses: &statuses,
        waits: &waits,
        repository_pending: waits
            .images
            .iter()
            .map(|(repository, n)| (repository.clone(), AtomicUsize::new(*n)))
            .collect(),
        mounting: stores
            .keys()
            .map(|name| (name.clone(), Default::default()))
            .collect(),
        missing: Default::default(),
        fallback_tags: Default::default(),
        new_repositories: plan
            .new_repositories
            .iter()
            .map(|key| (key.registry.as_str(), key.repository.as_str()))
            .collect(),
    };
    executor.run(&jobs);
    let kept = images_kept(&plan.entries, |i| {
        matches!(statuses.get(i), Some(Status::Unchanged))
    });
    executor.referrers_of_kept(&kept);
    // Records once every tag is written; before any source tag is deleted,
    // so a move whose record failed keeps its source.
    let records = write_records(&executor, &images, stores);
    // Deletions last, once everything the run writes is written.
    let pruned = prune::prune_targets(plan, &statuses, stores);
    let mut outcome = finish(plan, statuses.finish(), stores);
    outcome.notes.extend(pruned);
    Outcome { records, ..outcome }
}

/// The promotion records of what the run wrote, once every tag is.
fn write_records(
    executor: &Executor<'_>,
    images: &[ImageRun<'_>],
    stores: &StoreMap,
) -> Vec<RecordWritten> {
    let (Some(recorder), None) = (executor.options.record.as_deref(), stop::requested()) else {
        return Vec::new();
    };
    let fallback_tags = std::mem::take(
        &mut *executor
            .fallback_tags
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    let written = records::Written::new(executor.plan, images, fallback_tags);
    records::write_records(&written, executor.statuses, stores, recorder)
}

/// An image of the run: copying `tree` when it is not complete in its
/// target already. One whose presence could not be checked, or whose tree
/// could not be read, has failed.
fn image_run<'t>(
    write: &ImageToWrite,
    present: Result<bool, ExecError>,
    tree: Option<&'t Result<Tree, Arc<ExecError>>>,
) -> ImageRun<'t> {
    let mut image = ImageRun::new(write.clone(), None);
    match (present, tree) {
        (Err(e), _) => image.state.fail(Arc::new(e)),
        (Ok(_), Some(Err(e))) => image.state.fail(e.clone()),
        (Ok(_), Some(Ok(tree))) => image.tree = Some(tree),
        (Ok(_), None) => {}
    }
    image
}

/// The manifest trees of the images to copy, each read once per source
/// image and platform filter however many targets want it, and which tree
/// each image copies (`None`: nothing to copy).
struct SourceTrees {
    trees: Vec<Result<Tree, Arc<ExecError>>>,
    of_image: Vec<Option<usize>>,
}

fn read_trees(copies: &[Option<&ImageToWrite>], stores: &StoreMap) -> SourceTrees {
    let mut keys: BTreeMap<(&str, &Digest, &[crate::platform::Platform]), usize> = BTreeMap::new();
    let mut first: Vec<&ImageToWrite> = Vec::new();
    let of_image = copies
        .iter()
        .map(|copy| {
            let image = (*copy)?;
            let source = &image.source;
            let key = (
                source.registry.as_str(),
                &source.digest,
                &source.platforms[..],
            );
            Some(*keys.entry(key).or_insert_with(|| {
                first.push(image);
                first.len() - 1
            }))
        })
        .collect();
    let trees = first
        .into_par_iter()
        .map(|image| read_source_tree(image, stores).map_err(Arc::new))
        .collect();
    SourceTrees { trees, of_image }
}

/// Reads one image's manifests from its source.
fn read_source_tree(image: &ImageToWrite, stores: &StoreMap) -> Result<Tree, ExecError> {
    let source = lookup(stores, &image.source.registry)?;
    let repository = &image.source.repository;
    let fetch = |d: &str| source.manifest_get(repository, d);
    let platforms = &image.source.platforms;
    Ok(read_tree(
        &fetch,
        repository,
        &image.source.digest,
        platforms,
        &image.key.digest,
    )?)
}

/// The outcome: statuses, then moved source tags (none once stopped). A
/// move undone because a copy went with its source fails its entries.
fn finish(plan: &Plan, mut statuses: Vec<Status>, stores: &StoreMap) -> Outcome {
    let (moved, mut notes) = match stop::requested() {
        // Stopped: nothing more is changed, no source tag is deleted.
        Some(signal) => (
            Vec::new(),
            vec![format!(
                "stopped by {}: transfers in flight were finished, nothing new was started{}",
                stop::name(signal),
                if plan.entries.iter().any(|e| e.travel.mode == Transfer::Move) {
                    "; no source tag was deleted"
                } else {
                    ""
                }
            )],
        ),
        None => {
            let moves = moves::move_sources(plan, &statuses, stores);
            moves.fail_undone(plan, &mut statuses);
            (moves.moved, moves.notes)
        }
    };
    notes.dedup();
    Outcome {
        statuses,
        moved,
        notes,
        records: Vec::new(),
    }
}

#[cfg(test)]
mod order_tests;
