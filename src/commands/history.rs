//! `hoist history REF`: the promotion records of an image, or of every
//! tagged image of a repository, read from the registry and checked
//! against the keys given.

use std::collections::BTreeMap;

use crate::cli::{HistoryArgs, HistoryFormat};
use crate::digest::Digest;
use crate::gate::PublicKey;
use crate::record::{self, ImageHistory};
use crate::reference::Reference;
use crate::registry::stores::Stores;
use crate::registry::{ReadOnly, RegistryError};
use crate::render;
use crate::report;
use crate::rules::is_attached_tag;

use super::error::CommandError;
use super::status::ExitStatus;

pub(super) fn history(stores: &Stores, args: &HistoryArgs) -> Result<ExitStatus, CommandError> {
    let reference = Reference::parse(&args.reference, &|name| stores.is_registry_name(name))?;
    let keys = args
        .keys
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            PublicKey::read(&name).map_err(|cause| CommandError::Key { path: name, cause })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let store = ReadOnly::new(stores.open(&reference.location)?);
    let repository = &reference.repository;
    let images = images_of(
        &store,
        repository,
        reference.tag.as_deref(),
        reference.digest.as_ref(),
    )?;
    let found = record::history(&store, repository, images, &keys)?;
    let named = format!("{}/{repository}", reference.location);
    match args.format {
        HistoryFormat::Table => report::print_raw(&render::render_history(&named, &found)),
        HistoryFormat::Json => report::print_raw(&json(&named, &found)),
    }
    let unverified = found
        .iter()
        .flat_map(|image| &image.records)
        .any(|line| line.verified == Some(false));
    Ok(if unverified {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// The images `tag`, `digest` or (neither) every tag of `repository`
/// names, each with its tags; attached artifacts' tags are not images.
fn images_of(
    store: &ReadOnly,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&Digest>,
) -> Result<Vec<(Digest, Vec<String>)>, RegistryError> {
    if let Some(digest) = digest {
        return Ok(vec![(
            digest.clone(),
            tag.map(str::to_string).into_iter().collect(),
        )]);
    }
    let tags = match tag {
        Some(tag) => vec![tag.to_string()],
        None => store.tags(repository)?,
    };
    let mut images: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for tag in tags.iter().filter(|t| !is_attached_tag(t)) {
        if let Some(head) = store.manifest_head(repository, tag)? {
            images.entry(head.digest).or_default().push(tag.clone());
        }
    }
    Ok(images.into_iter().collect())
}

fn json(reference: &str, images: &[ImageHistory]) -> String {
    let value = serde_json::json!({ "reference": reference, "images": images });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}
