//! The promotion records of what a run wrote (`[settings] record`): one per
//! image per target repository, each written once every entry of the run
//! that points at it is done, so after the image and all its tags. A
//! record that cannot be written fails the entries of its image: the
//! promotion happened, its evidence did not.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rayon::prelude::*;

use super::error::ExecError;
use super::image_run::ImageRun;
use super::options::lookup;
use super::status::{Status, Statuses};
use crate::keys::TagKey;
use crate::plan::{GateVerdict, ImageKey, Plan, PlanEntry};
use crate::record::{Admission, Endpoint, Promoted, RecordWritten, Recorder};
use crate::referrers::fallback_tag;
use crate::registry::{ManifestHead, StoreMap};

/// What the run wrote that records need, indexed once: the plan, its
/// images (their root manifests, so a record need not ask for them), the
/// plan's new repositories, and the fallback tags the run wrote or planned.
pub(super) struct Written<'a> {
    plan: &'a Plan,
    images: BTreeMap<&'a ImageKey, &'a ImageRun<'a>>,
    new_repositories: BTreeSet<(&'a str, &'a str)>,
    /// Fallback tags this run wrote, and every target tag the plan names
    /// (a planned one may be a fallback tag).
    fallback_tags: BTreeSet<TagKey>,
}

impl<'a> Written<'a> {
    /// The run of `plan` that wrote `images` and the fallback tags `written`.
    pub(super) fn new(
        plan: &'a Plan,
        images: &'a [ImageRun<'a>],
        written: BTreeSet<TagKey>,
    ) -> Written<'a> {
        let mut fallback_tags = written;
        fallback_tags.extend(
            plan.entries
                .iter()
                .map(|e| TagKey::new(&e.target.registry, &e.target.repository, &e.target.tag)),
        );
        Written {
            plan,
            images: images.iter().map(|i| (&i.write.key, i)).collect(),
            new_repositories: plan
                .new_repositories
                .iter()
                .map(|r| (r.registry.as_str(), r.repository.as_str()))
                .collect(),
            fallback_tags,
        }
    }

    /// The root manifest of image `key` as the run wrote it.
    fn subject(&self, key: &ImageKey) -> Option<ManifestHead> {
        let image = self.images.get(key)?;
        let root = image.tree?.manifests.last()?;
        (root.digest == key.digest).then(|| ManifestHead {
            digest: root.digest.clone(),
            media_type: root.media_type.clone(),
            size: root.bytes.len() as u64,
        })
    }

    /// Whether `repository` of `registry` is new in this run's plan.
    fn is_new(&self, registry: &str, repository: &str) -> bool {
        self.new_repositories.contains(&(registry, repository))
    }

    /// Whether the fallback tag of image `key` is known to be absent: its
    /// repository is new in this run, and nothing of the run wrote or
    /// planned it.
    fn fallback_absent(&self, key: &ImageKey) -> bool {
        let tag = TagKey::new(&key.registry, &key.repository, &fallback_tag(&key.digest));
        self.is_new(&key.registry, &key.repository) && !self.fallback_tags.contains(&tag)
    }
}

/// One image the run promoted, and the entries that wrote its tags.
struct ImagePromoted {
    promoted: Promoted,
    entries: Vec<usize>,
}

/// Writes the record of every image the run wrote a tag of; the entries of
/// an image whose record fails are failed with why.
pub(super) fn write_records(
    run: &Written<'_>,
    statuses: &Statuses,
    stores: &StoreMap,
    recorder: &Recorder,
) -> Vec<RecordWritten> {
    let images = promoted_images(run, statuses, stores);
    // The config blob records share, once per target repository first.
    let repositories: BTreeSet<(&str, &str)> = images
        .iter()
        .map(|i| {
            (
                i.promoted.target.registry.as_str(),
                i.promoted.repository.as_str(),
            )
        })
        .collect();
    let prepared: BTreeMap<(&str, &str), Result<(), Arc<ExecError>>> = repositories
        .into_par_iter()
        .map(|(registry, repository)| {
            let new = run.is_new(registry, repository);
            let prepared = lookup(stores, registry)
                .and_then(|store| Ok(recorder.prepare(store.as_ref(), repository, new)?))
                .map_err(Arc::new);
            ((registry, repository), prepared)
        })
        .collect();
    images
        .par_iter()
        .filter_map(|image| {
            let p = &image.promoted;
            let written = match &prepared[&(p.target.registry.as_str(), p.repository.as_str())] {
                Err(e) => Err(e.clone()),
                Ok(()) => lookup(stores, &p.target.registry)
                    .and_then(|store| Ok(recorder.write(store.as_ref(), p)?))
                    .map_err(Arc::new),
            };
            match written {
                Ok(attached) => Some(RecordWritten {
                    registry: image.promoted.target.registry.clone(),
                    repository: image.promoted.repository.clone(),
                    digest: image.promoted.digest.clone(),
                    record: attached.manifest,
                    fallback_tag: attached.fallback_tag,
                }),
                Err(error) => {
                    for &i in &image.entries {
                        statuses.set(i, Status::Failed(error.clone()));
                    }
                    None
                }
            }
        })
        .collect()
}

/// The images whose tags this run wrote (attached artifacts' tags aside:
/// they are evidence, not images promoted), by target image.
fn promoted_images(
    run: &Written<'_>,
    statuses: &Statuses,
    stores: &StoreMap,
) -> Vec<ImagePromoted> {
    let mut images: BTreeMap<ImageKey, ImagePromoted> = BTreeMap::new();
    for (i, entry) in run.plan.entries.iter().enumerate() {
        let written = entry.changes() && matches!(statuses.get(i), Some(Status::Promoted));
        if !written || entry.role.is_attached() {
            continue;
        }
        let key = ImageKey::new(
            &entry.target.registry,
            &entry.target.repository,
            entry.target_digest(),
        );
        let image = images.entry(key.clone()).or_insert_with(|| ImagePromoted {
            promoted: Promoted {
                subject: run.subject(&key),
                fallback_absent: run.fallback_absent(&key),
                ..promoted(entry, stores)
            },
            entries: Vec::new(),
        });
        image.entries.push(i);
        let p = &mut image.promoted;
        add(&mut p.tags, &entry.target.tag);
        add(&mut p.source_tags, &entry.source.tag);
        for rule in &entry.rules {
            add(&mut p.rules, rule);
        }
        if let (None, Some(GateVerdict::Verified { rule, by })) = (&p.gate, &entry.gate) {
            p.gate = Some(Admission {
                rule: rule.clone(),
                verified_by: by.clone(),
            });
        }
    }
    images.into_values().collect()
}

/// What the record of the image `entry` writes says, its lists empty.
fn promoted(entry: &PlanEntry, stores: &StoreMap) -> Promoted {
    let endpoint = |name: &str| Endpoint {
        registry: name.to_string(),
        location: stores
            .get(name)
            .map_or_else(|| name.to_string(), |store| store.display_name()),
    };
    Promoted {
        rules: Vec::new(),
        source: endpoint(&entry.source.registry),
        source_repository: entry.source.repository.clone(),
        source_digest: entry.source.digest.clone(),
        source_tags: Vec::new(),
        target: endpoint(&entry.target.registry),
        repository: entry.target.repository.clone(),
        digest: entry.target_digest().clone(),
        tags: Vec::new(),
        gate: None,
        subject: None,
        fallback_absent: false,
    }
}

fn add(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|i| i == item) {
        list.push(item.to_string());
    }
}

impl From<crate::record::RecordError> for ExecError {
    fn from(error: crate::record::RecordError) -> ExecError {
        ExecError::Record(Box::new(error))
    }
}
