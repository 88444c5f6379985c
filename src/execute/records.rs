//! The promotion records of what a run wrote (`[settings] record`): one per
//! image per target repository, each written once every entry of the run
//! that points at it is done, so after the image and all its tags. A
//! record that cannot be written fails the entries of its image: the
//! promotion happened, its evidence did not.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::error::ExecError;
use super::options::lookup;
use super::status::{Status, Statuses};
use crate::plan::{GateVerdict, ImageKey, Plan, PlanEntry};
use crate::record::{Admission, Endpoint, Promoted, RecordWritten, Recorder};
use crate::registry::StoreMap;

/// One image the run promoted, and the entries that wrote its tags.
struct ImagePromoted {
    promoted: Promoted,
    entries: Vec<usize>,
}

/// Writes the record of every image the run wrote a tag of; the entries of
/// an image whose record fails are failed with why.
pub(super) fn write_records(
    plan: &Plan,
    statuses: &Statuses,
    stores: &StoreMap,
    recorder: &Recorder,
) -> Vec<RecordWritten> {
    let images = promoted_images(plan, statuses, stores);
    images
        .into_par_iter()
        .filter_map(|image| {
            let written = lookup(stores, &image.promoted.target.registry)
                .and_then(|store| Ok(recorder.write(store.as_ref(), &image.promoted)?));
            match written {
                Ok(attached) => Some(RecordWritten {
                    registry: image.promoted.target.registry.clone(),
                    repository: image.promoted.repository.clone(),
                    digest: image.promoted.digest.clone(),
                    record: attached.manifest,
                    fallback_tag: attached.fallback_tag,
                }),
                Err(error) => {
                    let error = Arc::new(error);
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
fn promoted_images(plan: &Plan, statuses: &Statuses, stores: &StoreMap) -> Vec<ImagePromoted> {
    let mut images: BTreeMap<ImageKey, ImagePromoted> = BTreeMap::new();
    for (i, entry) in plan.entries.iter().enumerate() {
        let written = entry.changes() && matches!(statuses.get(i), Some(Status::Promoted));
        if !written || entry.role.is_attached() {
            continue;
        }
        let key = ImageKey::new(
            &entry.target.registry,
            &entry.target.repository,
            entry.target_digest(),
        );
        let image = images.entry(key).or_insert_with(|| ImagePromoted {
            promoted: promoted(entry, stores),
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
