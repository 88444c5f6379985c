//! What must hold before an image is written: a reviewed plan's entries
//! still match the registries (`apply --plan`), and which images the targets
//! already hold.

use std::collections::BTreeSet;
use std::sync::Arc;

use rayon::prelude::*;

use super::error::ExecError;
use super::options::lookup;
use super::status::{Status, Statuses};
use crate::digest::Digest;
use crate::plan::{ImageKey, ImageToWrite, Plan, PlanEntry};
use crate::registry::StoreMap;

/// What re-checking a reviewed entry found.
enum Check {
    /// As planned: go ahead.
    Go,
    /// The target already holds the planned digest.
    Done,
}

/// Re-checks every entry that writes something against the registries:
/// those already done become unchanged, those whose source or target moved
/// since planning are refused.
pub fn check_reviewed(plan: &Plan, stores: &StoreMap, statuses: &Statuses) {
    let checks: Vec<(usize, Result<Check, ExecError>)> = plan
        .entries
        .par_iter()
        .enumerate()
        .filter(|(_, e)| e.changes())
        .map(|(i, e)| (i, check_entry(e, stores)))
        .collect();
    for (i, check) in checks {
        match check {
            Ok(Check::Go) => {}
            Ok(Check::Done) => statuses.set(i, Status::Unchanged),
            Err(why) => statuses.set(i, Status::Refused(Arc::new(why))),
        }
    }
}

/// An entry of a reviewed plan still matches the registries.
fn check_entry(entry: &PlanEntry, stores: &StoreMap) -> Result<Check, ExecError> {
    // Already done (a re-run of a reviewed plan after a kill, or after a move
    // deleted the source): nothing to refuse.
    let target = lookup(stores, &entry.target.registry)?;
    let held = target
        .manifest_head(&entry.target.repository, &entry.target.tag)?
        .map(|h| h.digest);
    if held.as_ref() == Some(entry.target_digest()) {
        return Ok(Check::Done);
    }
    let source = lookup(stores, &entry.source.registry)?;
    let now = source
        .manifest_head(&entry.source.repository, &entry.source.tag)?
        .map(|h| h.digest);
    let shown = |digest: Option<&Digest>| digest.map_or("absent".to_string(), Digest::short);
    if now.as_ref() != Some(&entry.source.digest) {
        return Err(ExecError::SourceMoved {
            reference: format!(
                "{}/{}:{}",
                entry.source.registry, entry.source.repository, entry.source.tag
            ),
            planned: entry.source.digest.short(),
            now: shown(now.as_ref()),
        });
    }
    if held != entry.target.current_digest {
        return Err(ExecError::TargetChanged {
            reference: format!(
                "{}/{}:{}",
                entry.target.registry, entry.target.repository, entry.target.tag
            ),
            planned: shown(entry.target.current_digest.as_ref()),
            now: shown(held.as_ref()),
        });
    }
    Ok(Check::Go)
}

/// Whether each image is in its target already: a target tag points at it,
/// by the plan. A reviewed plan may be old, so there what it saw is asked
/// again (`recheck`); a failed look-up is that image's error.
pub fn present_images(
    plan: &Plan,
    images: &[ImageToWrite],
    stores: &StoreMap,
    recheck: bool,
) -> Vec<Result<bool, ExecError>> {
    let held: BTreeSet<ImageKey> = plan
        .entries
        .iter()
        .filter_map(|e| {
            Some(ImageKey {
                digest: e.target.current_digest.clone()?,
                ..e.image_key()
            })
        })
        .collect();
    images
        .par_iter()
        .map(|image| {
            let held = held.contains(&image.key);
            if !held || !recheck {
                return Ok(held);
            }
            let target = lookup(stores, &image.key.registry)?;
            Ok(target
                .manifest_head(&image.key.repository, &image.key.digest.to_string())?
                .is_some())
        })
        .collect()
}
