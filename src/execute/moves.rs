//! `mode = "move"`: once every target of a source tag has it, the source
//! tag is deleted, never before and never one another run still reads.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::StoreMap;
use super::status::Status;
use crate::digest::Digest;
use crate::plan::Plan;
use crate::plan::{Role, Transfer};
use crate::registry::{Registry, RegistryError};

/// A source tag of the plan: `(registry, repository, tag)`.
type SourceTag = (String, String, String);

/// What the run did to a source tag's entries.
struct SourceState {
    digest: Digest,
    all_done: bool,
    moved: bool,
    /// The image this tag's artifact is attached to (a signature's subject).
    subject: Option<Digest>,
}

/// An image in a source repository: `(registry, repository, digest)`.
type SourceImage = (String, String, Digest);

/// Moved tags and notes on tags kept, as the report lists them.
#[derive(Default)]
struct Moves {
    moved: Vec<String>,
    notes: Vec<String>,
    /// Images some moved tag was deleted from.
    left: std::collections::BTreeSet<SourceImage>,
    /// Images a moved tag of was kept.
    kept: std::collections::BTreeSet<SourceImage>,
}

/// `mode = "move"`: deletes each source tag whose every entry is done. A
/// registry that cannot delete tags gets the manifest deleted by digest,
/// only when no other tag of the source repository points at it. The
/// signatures, attestations and SBOMs of a moved image move with it, once
/// the image has left the source; when it stays, they stay too.
pub fn move_sources(
    plan: &Plan,
    statuses: &[Status],
    stores: &StoreMap,
) -> (Vec<String>, Vec<String>) {
    let mut sources: BTreeMap<SourceTag, SourceState> = BTreeMap::new();
    for (entry, status) in plan.entries.iter().zip(statuses) {
        let key = (
            entry.source.registry.clone(),
            entry.source.repository.clone(),
            entry.source.tag.clone(),
        );
        let slot = sources.entry(key).or_insert(SourceState {
            digest: entry.source.digest.clone(),
            all_done: true,
            moved: false,
            subject: None,
        });
        slot.all_done &= matches!(status, Status::Promoted | Status::Unchanged);
        slot.moved |= entry.mode == Transfer::Move && !entry.role.is_floating();
        if let Role::Attached { subject } = &entry.role {
            slot.subject = Some(subject.clone());
        }
    }
    let mut moves = Moves::default();
    let (images, attached): (Vec<_>, Vec<_>) = sources
        .iter()
        .filter(|(_, s)| s.moved)
        .partition(|(_, s)| s.subject.is_none());
    moves.delete_all(&images, stores);
    let attached: Vec<_> = attached
        .into_iter()
        .filter(|((registry, repository, tag), state)| {
            let subject = state.subject.clone().unwrap_or_else(|| state.digest.clone());
            let image = (registry.clone(), repository.clone(), subject);
            let stays = !moves.left.contains(&image) || moves.kept.contains(&image);
            if stays {
                moves.notes.push(format!(
                    "kept {registry}/{repository}:{tag}: the image it is attached to ({}) stays in the source",
                    image.2.short()
                ));
            }
            !stays
        })
        .collect();
    moves.delete_all(&attached, stores);
    (moves.moved, moves.notes)
}

impl Moves {
    /// Deletes the source tags `sources` whose every entry is done; a
    /// registry that cannot delete a tag alone gets their manifests deleted
    /// by digest where no other tag needs them.
    fn delete_all(&mut self, sources: &[(&SourceTag, &SourceState)], stores: &StoreMap) {
        // Tags a registry would not delete, by (registry, repository, digest).
        let mut by_digest: BTreeMap<SourceImage, Vec<String>> = BTreeMap::new();
        for (key, state) in sources {
            let (registry, repository, tag) = key;
            let image = (registry.clone(), repository.clone(), state.digest.clone());
            if !state.all_done {
                self.notes.push(format!(
                    "kept {registry}/{repository}:{tag}: not every target has it"
                ));
                self.kept.insert(image);
                continue;
            }
            let Some(source) = stores.get(registry) else {
                continue;
            };
            let moved_before = self.moved.len();
            match self.delete_tag(source.as_ref(), key, &state.digest) {
                Some(false) => by_digest.entry(image).or_default().push(tag.clone()),
                _ if self.moved.len() > moved_before => {
                    self.left.insert(image);
                }
                _ => {
                    self.kept.insert(image);
                }
            }
        }
        for (image, tags) in by_digest {
            let (registry, repository, digest) = &image;
            if let Some(source) = stores.get(registry) {
                let names: Vec<String> = tags
                    .iter()
                    .map(|t| format!("{registry}/{repository}:{t}"))
                    .collect();
                let moved_before = self.moved.len();
                self.delete_by_digest(source.as_ref(), repository, digest, &tags, names);
                if self.moved.len() > moved_before {
                    self.left.insert(image);
                } else {
                    self.kept.insert(image);
                }
            }
        }
    }

    /// Deletes one source tag once it is checked to hold `digest` still.
    /// `Some(false)` when the registry cannot delete a tag alone.
    fn delete_tag(
        &mut self,
        source: &dyn Registry,
        key: &SourceTag,
        digest: &Digest,
    ) -> Option<bool> {
        let (registry, repository, tag) = key;
        let name = format!("{registry}/{repository}:{tag}");
        match source.manifest_head(repository, tag) {
            Ok(Some(head)) if head.digest == *digest => {}
            Ok(None) => {
                self.moved.push(name);
                return None;
            }
            Ok(Some(head)) => {
                let now = head.digest.short();
                self.notes
                    .push(format!("kept {name}: it moved to {now} during the run"));
                return None;
            }
            Err(e) => {
                self.notes.push(format!("kept {name}: {e}"));
                return None;
            }
        }
        match source.tag_delete(repository, tag) {
            Ok(true) => self.moved.push(name),
            Ok(false) => return Some(false),
            Err(e) if e.is_not_found() => self.moved.push(name),
            Err(e) => self
                .notes
                .push(format!("kept {name}: deleting it failed: {e}")),
        }
        Some(true)
    }

    /// Deletes the manifest the tags `names` point at, when no other tag
    /// of the repository does (directly or as an index child).
    fn delete_by_digest(
        &mut self,
        source: &dyn Registry,
        repository: &str,
        digest: &Digest,
        tags: &[String],
        names: Vec<String>,
    ) {
        let shown = names.join(", ");
        let others = match other_tags_at(source, repository, digest, tags) {
            Ok(others) => others,
            Err(e) => return self.notes.push(format!("kept {shown}: {e}")),
        };
        if !others.is_empty() {
            let verb = if others.len() == 1 { "points" } else { "point" };
            return self.notes.push(format!(
                "kept {shown}: the registry cannot delete a tag alone, and {} still {verb} at {}",
                others.join(", "),
                digest.short()
            ));
        }
        let deleted = match source.manifest_delete(repository, digest) {
            // A retried DELETE whose first attempt went through.
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map_err(|e| e.to_string()),
        };
        match deleted {
            Ok(()) => self.moved.extend(names),
            Err(e) => self.notes.push(format!(
                "kept {shown}: deleting {} failed: {e}",
                digest.short()
            )),
        }
    }
}

/// Tags of `repository`, other than `except`, that point at `digest`.
fn other_tags_at(
    source: &dyn Registry,
    repository: &str,
    digest: &Digest,
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
            if head.digest == *digest {
                return Ok(Some(tag.clone()));
            }
            // An index whose child is this manifest would break too.
            if crate::manifest::is_index(&head.media_type) {
                let index = source.manifest_get(repository, &head.digest.to_string())?;
                let view = index.view().map_err(|source| RegistryError::Manifest {
                    what: format!("{repository}@{}", head.digest),
                    source,
                })?;
                if view.manifests.iter().any(|m| m.digest == *digest) {
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
