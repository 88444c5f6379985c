//! `mode = "move"`: once every target of a source tag has it, the source
//! tag is deleted, never before and never one another run still reads.
//!
//! Names do not prove that a target is not the source (one registry under
//! two names, a DNS alias, a load balancer), so a deletion proves it
//! instead: the source manifest is held before the delete, every copy is
//! read again after it, and a copy that went with the source brings the
//! source tag back from the held bytes and fails its entries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rayon::prelude::*;

use super::StoreMap;
use super::error::ExecError;
use super::status::Status;
use crate::digest::Digest;
use crate::keys::{ImageKey, TagKey};
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::plan::{Role, Transfer};
use crate::registry::{Registry, RegistryError};

/// A source tag of the plan.
type SourceTag = TagKey;

/// A target tag a source tag was promoted to, and the digest it must hold.
struct Copy {
    registry: String,
    repository: String,
    tag: String,
    digest: Digest,
}

impl Copy {
    fn name(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// What the run did to a source tag's entries.
struct SourceState {
    digest: Digest,
    all_done: bool,
    moved: bool,
    /// The image this tag's artifact is attached to (a signature's subject).
    subject: Option<Digest>,
    /// Where its entries put it.
    copies: Vec<Copy>,
    /// Whether this run wrote any of them (false on a no-op re-run).
    wrote: bool,
}

/// An image in a source repository.
type SourceImage = ImageKey;

/// What moving did: the source tags deleted, notes on those kept, and the
/// source tags whose deletion was undone, with why (their entries fail).
#[derive(Default)]
pub struct Moved {
    /// Deleted source tags, `registry/repository:tag`.
    pub moved: Vec<String>,
    /// Source tags kept, and why.
    pub notes: Vec<String>,
    /// Source tags put back because a copy went with them.
    undone: BTreeMap<SourceTag, Arc<ExecError>>,
}

impl Moved {
    /// Fails the entries of every source tag whose move was undone.
    pub fn fail_undone(&self, plan: &Plan, statuses: &mut [Status]) {
        for (entry, status) in plan.entries.iter().zip(statuses) {
            let key = TagKey::new(
                &entry.source.registry,
                &entry.source.repository,
                &entry.source.tag,
            );
            if let Some(error) = self.undone.get(&key) {
                *status = Status::Failed(error.clone());
            }
        }
    }
}

/// Moved tags and notes on tags kept, as the report lists them.
#[derive(Default)]
struct Moves {
    done: Moved,
    /// Images some moved tag was deleted from.
    left: BTreeSet<SourceImage>,
    /// Images a moved tag of was kept.
    kept: BTreeSet<SourceImage>,
}

/// A source tag to delete, with what the run did to it.
type Moving<'a> = (&'a SourceTag, &'a SourceState);

/// How deleting one source tag went.
enum Deletion {
    /// The tag is deleted: its copies are to be checked.
    Deleted,
    /// The tag was already gone.
    Gone,
    /// The registry cannot delete a tag alone: delete by digest.
    NotAlone,
    /// The tag stays (a note says why).
    Kept,
}

/// `mode = "move"`: deletes each source tag whose every entry is done. A
/// registry that cannot delete tags gets the manifest deleted by digest,
/// only when no other tag of the source repository points at it. The
/// signatures, attestations and SBOMs of a moved image move with it, once
/// the image has left the source; when it stays, they stay too.
pub fn move_sources(plan: &Plan, statuses: &[Status], stores: &StoreMap) -> Moved {
    let mut sources: BTreeMap<SourceTag, SourceState> = BTreeMap::new();
    for (entry, status) in plan.entries.iter().zip(statuses) {
        let key = TagKey::new(
            &entry.source.registry,
            &entry.source.repository,
            &entry.source.tag,
        );
        let slot = sources.entry(key).or_insert(SourceState {
            digest: entry.source.digest.clone(),
            all_done: true,
            moved: false,
            subject: None,
            copies: Vec::new(),
            wrote: false,
        });
        let done = matches!(status, Status::Promoted | Status::Unchanged);
        slot.all_done &= done;
        slot.wrote |= matches!(status, Status::Promoted);
        slot.moved |= entry.travel.mode == Transfer::Move && !entry.role.is_floating();
        if let Role::Attached { subject } = &entry.role {
            slot.subject = Some(subject.clone());
        }
        if done {
            slot.copies.push(Copy {
                registry: entry.target.registry.clone(),
                repository: entry.target.repository.clone(),
                tag: entry.target.tag.clone(),
                digest: entry.target_digest().clone(),
            });
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
        .filter(|(TagKey { registry, repository, tag }, state)| {
            let subject = state.subject.clone().unwrap_or_else(|| state.digest.clone());
            let image = ImageKey::new(registry, repository, &subject);
            let stays = !moves.left.contains(&image) || moves.kept.contains(&image);
            if stays {
                moves.done.notes.push(format!(
                    "kept {registry}/{repository}:{tag}: the image it is attached to ({}) stays in the source",
                    image.digest.short()
                ));
            }
            !stays
        })
        .collect();
    moves.delete_all(&attached, stores);
    moves.done
}

impl Moves {
    /// Deletes the source tags `sources` whose every entry is done; a
    /// registry that cannot delete a tag alone gets their manifests deleted
    /// by digest where no other tag needs them.
    fn delete_all(&mut self, sources: &[Moving<'_>], stores: &StoreMap) {
        // Tags a registry would not delete, by (registry, repository, digest).
        let mut by_digest: BTreeMap<SourceImage, (Manifest, Vec<Moving<'_>>)> = BTreeMap::new();
        for &(key, state) in sources {
            let TagKey {
                registry,
                repository,
                tag,
            } = key;
            let image = ImageKey::new(registry, repository, &state.digest.clone());
            let name = format!("{registry}/{repository}:{tag}");
            if !state.all_done {
                self.done
                    .notes
                    .push(format!("kept {name}: not every target has it"));
                self.kept.insert(image);
                continue;
            }
            let Some(source) = stores.get(registry) else {
                continue;
            };
            if !state.wrote
                && !source.deletes_tags_alone()
                && self.shared_with_others(source.as_ref(), key, state, sources)
            {
                self.kept.insert(image);
                continue;
            }
            // Held before anything is deleted: what puts the tag back.
            let held = match source.manifest_get(repository, &state.digest.to_string()) {
                Ok(held) => held,
                Err(e) => {
                    self.done.notes.push(format!(
                        "kept {name}: its manifest could not be read to hold before deleting: {e}"
                    ));
                    self.kept.insert(image);
                    continue;
                }
            };
            match self.delete_tag(source.as_ref(), key, &state.digest) {
                // Gone already: taken by the deletion of another tag (a
                // registry deleting every tag of the image), so its copies
                // are checked all the same.
                Deletion::Deleted | Deletion::Gone => {
                    let tags = [(key, state)];
                    if self.confirm(source.as_ref(), &tags, &held, stores) {
                        self.done.moved.push(name);
                        self.left.insert(image);
                    } else {
                        self.kept.insert(image);
                    }
                }
                Deletion::NotAlone => {
                    let slot = by_digest.entry(image).or_insert_with(|| (held, Vec::new()));
                    slot.1.push((key, state));
                }
                Deletion::Kept => {
                    self.kept.insert(image);
                }
            }
        }
        for (image, (held, tags)) in by_digest {
            let Some(source) = stores.get(&image.registry) else {
                continue;
            };
            if self.delete_by_digest(source.as_ref(), &image, &tags, &held, stores) {
                self.left.insert(image);
            } else {
                self.kept.insert(image);
            }
        }
    }

    /// A source tag this run wrote nothing for (a re-run) whose image other
    /// tags of the repository share was kept before for that reason, or
    /// will be: a registry that deletes by digest only cannot delete it
    /// alone, so no `DELETE` is sent to find that out again, and a no-op
    /// re-run writes nothing. Says so in a note.
    fn shared_with_others(
        &mut self,
        source: &dyn Registry,
        key: &SourceTag,
        state: &SourceState,
        sources: &[Moving<'_>],
    ) -> bool {
        let TagKey {
            registry,
            repository,
            tag,
        } = key;
        let name = format!("{registry}/{repository}:{tag}");
        // The tags moved with it do not count: they go together.
        let together: Vec<String> = sources
            .iter()
            .filter(|(other, s)| {
                other.repository_key() == key.repository_key()
                    && s.digest == state.digest
                    && s.all_done
            })
            .map(|(key, _)| key.tag.clone())
            .collect();
        match other_tags_at(source, repository, &state.digest, &together) {
            Ok(others) if others.is_empty() => false,
            Ok(others) => {
                let verb = if others.len() == 1 { "points" } else { "point" };
                self.done.notes.push(format!(
                    "kept {name}: {} also {verb} at its image ({}), so a registry that deletes by digest cannot delete it alone; delete the tag by hand where the registry deletes tags alone",
                    others.join(", "),
                    state.digest.short()
                ));
                true
            }
            Err(e) => {
                self.done.notes.push(format!("kept {name}: {e}"));
                true
            }
        }
    }

    /// Deletes one source tag once it is checked to hold `digest` still.
    fn delete_tag(&mut self, source: &dyn Registry, key: &SourceTag, digest: &Digest) -> Deletion {
        let TagKey {
            registry,
            repository,
            tag,
        } = key;
        let name = format!("{registry}/{repository}:{tag}");
        match source.manifest_head(repository, tag) {
            Ok(Some(head)) if head.digest == *digest => {}
            Ok(None) => return Deletion::Gone,
            Ok(Some(head)) => {
                let now = head.digest.short();
                self.done
                    .notes
                    .push(format!("kept {name}: it moved to {now} during the run"));
                return Deletion::Kept;
            }
            Err(e) => {
                self.done.notes.push(format!("kept {name}: {e}"));
                return Deletion::Kept;
            }
        }
        match source.tag_delete(repository, tag) {
            Ok(true) => Deletion::Deleted,
            Ok(false) => Deletion::NotAlone,
            // A retried DELETE whose first attempt went through.
            Err(e) if e.is_not_found() => Deletion::Deleted,
            Err(e) => {
                self.done
                    .notes
                    .push(format!("kept {name}: deleting it failed: {e}"));
                Deletion::Kept
            }
        }
    }

    /// Deletes the manifest the source tags `tags` point at, when no other
    /// tag of the repository does (directly or as an index child); whether
    /// they are gone for good (their copies checked).
    fn delete_by_digest(
        &mut self,
        source: &dyn Registry,
        image: &SourceImage,
        tags: &[Moving<'_>],
        held: &Manifest,
        stores: &StoreMap,
    ) -> bool {
        let ImageKey {
            registry,
            repository,
            digest,
        } = image;
        let names: Vec<String> = tags
            .iter()
            .map(|(key, _)| format!("{registry}/{repository}:{}", key.tag))
            .collect();
        let shown = names.join(", ");
        let own: Vec<String> = tags.iter().map(|(key, _)| key.tag.clone()).collect();
        let others = match other_tags_at(source, repository, digest, &own) {
            Ok(others) => others,
            Err(e) => {
                self.done.notes.push(format!("kept {shown}: {e}"));
                return false;
            }
        };
        if !others.is_empty() {
            let verb = if others.len() == 1 { "points" } else { "point" };
            self.done.notes.push(format!(
                "kept {shown}: the registry cannot delete a tag alone, and {} still {verb} at {}",
                others.join(", "),
                digest.short()
            ));
            return false;
        }
        let deleted = match source.manifest_delete(repository, digest) {
            // A retried DELETE whose first attempt went through.
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map_err(|e| e.to_string()),
        };
        if let Err(e) = deleted {
            self.done.notes.push(format!(
                "kept {shown}: deleting {} failed: {e}",
                digest.short()
            ));
            return false;
        }
        if !self.confirm(source, tags, held, stores) {
            return false;
        }
        self.done.moved.extend(names);
        true
    }

    /// After deleting the source tags `tags`: whether every copy they were
    /// moved to is still there. When one is not, the target was the
    /// source under another name: the tags are put back from `held` and
    /// their entries fail with why.
    fn confirm(
        &mut self,
        source: &dyn Registry,
        tags: &[Moving<'_>],
        held: &Manifest,
        stores: &StoreMap,
    ) -> bool {
        let copies: Vec<&Copy> = tags.iter().flat_map(|(_, s)| &s.copies).collect();
        let missing: Vec<(&Copy, String)> = copies
            .par_iter()
            .filter_map(|copy| copy_missing(copy, stores).map(|found| (*copy, found)))
            .collect();
        let Some((copy, found)) = missing.first() else {
            return true;
        };
        for &(key, _) in tags {
            let TagKey {
                registry,
                repository,
                tag,
            } = key;
            let source_tag = format!("{registry}/{repository}:{tag}");
            let restored = put_back(source, repository, tag, held);
            self.done.undone.insert(
                key.clone(),
                Arc::new(ExecError::MoveUndone {
                    source_tag,
                    copy: copy.name(),
                    found: found.clone(),
                    restored,
                }),
            );
        }
        // A registry that deleted every tag of the manifest took copies in
        // the same repository with it: they are put back too.
        for (copy, _) in &missing {
            if copy.digest == held.digest
                && let Some(target) = stores.get(&copy.registry)
                && let Err(e) = target.manifest_put(&copy.repository, &copy.tag, held)
            {
                self.done.notes.push(format!(
                    "{} could not be put back after the undone move: {e}",
                    copy.name()
                ));
            }
        }
        false
    }
}

/// What reading `copy` again found when it is not there at its digest.
fn copy_missing(copy: &Copy, stores: &StoreMap) -> Option<String> {
    let Some(target) = stores.get(&copy.registry) else {
        return Some(format!(
            "could not be read (registry `{}` is not open)",
            copy.registry
        ));
    };
    match target.manifest_head(&copy.repository, &copy.tag) {
        Ok(Some(head)) if head.digest == copy.digest => None,
        Ok(Some(head)) => Some(format!(
            "pointed at {} instead of {}",
            head.digest.short(),
            copy.digest.short()
        )),
        Ok(None) => Some("was gone".to_string()),
        Err(e) => Some(format!("could not be read ({e})")),
    }
}

/// Puts a deleted source tag back from the manifest held before the
/// delete; says how it went. When the registry refuses, the bytes are
/// saved to a file so nothing is lost (the blobs stay in the registry).
fn put_back(source: &dyn Registry, repository: &str, tag: &str, held: &Manifest) -> String {
    let short = held.digest.short();
    match source.manifest_put(repository, tag, held) {
        Ok(()) => format!("the source tag was put back at {short} from the manifest hoist held"),
        Err(e) => {
            let file = std::env::temp_dir().join(format!(
                "hoist-{}-{tag}-{}.json",
                repository.replace('/', "_"),
                held.digest.hex()
            ));
            match std::fs::write(&file, &held.bytes) {
                Ok(()) => format!(
                    "putting the source tag back failed ({e}): its manifest ({}, media type {}) is saved at {}, and its blobs are still in the registry",
                    short,
                    held.media_type,
                    file.display()
                ),
                Err(write) => format!(
                    "putting the source tag back failed ({e}), and saving its manifest to {} failed too ({write})",
                    file.display()
                ),
            }
        }
    }
}

/// Tags of `repository`, other than `except`, that point at `digest`.
pub(super) fn other_tags_at(
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
