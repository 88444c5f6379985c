//! `mode = "move"`: once every target of a source tag has it, the source
//! tag is deleted, never before and never one another run still reads.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::StoreMap;
use super::status::Status;
use crate::config::Mode;
use crate::digest::Digest;
use crate::plan::{Plan, short_digest};
use crate::registry::{Registry, RegistryError};

/// `mode = "move"`: deletes each source tag whose every entry is done. A
/// registry that cannot delete tags gets the manifest deleted by digest,
/// only when no other tag of the source repository points at it.
pub fn move_sources(
    plan: &Plan,
    statuses: &[Status],
    stores: &StoreMap,
) -> (Vec<String>, Vec<String>) {
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
        let deleted = match digest.parse::<Digest>() {
            Err(e) => Err(format!("{e}")),
            Ok(d) => match source.manifest_delete(&repository, &d) {
                // A retried DELETE whose first attempt went through.
                Err(e) if e.is_not_found() => Ok(()),
                other => other.map_err(|e| e.to_string()),
            },
        };
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
) -> Result<Vec<String>, RegistryError> {
    let tags = source.tags(repository)?;
    let heads: Vec<Result<Option<String>, RegistryError>> = tags
        .par_iter()
        .filter(|t| !except.contains(t))
        .map(|tag| {
            let head = source.manifest_head(repository, tag)?;
            let Some(head) = head else {
                return Ok(None);
            };
            if head.digest.to_string() == digest {
                return Ok(Some(tag.clone()));
            }
            // An index whose child is this manifest would break too.
            if crate::manifest::is_index(&head.media_type) {
                let index = source.manifest_get(repository, &head.digest.to_string())?;
                let view = index.view().map_err(|source| RegistryError::Manifest {
                    what: format!("{repository}@{}", head.digest),
                    source,
                })?;
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
