//! `hoist promote`: one image, Stevedore's semantics, turned into a plan the
//! executor runs like any other (so `--dry-run` shows the real plan).

use std::collections::BTreeMap;

use crate::plan::{Action, PLAN_FORMAT, Plan, PlanEntry, Role, SourceImage, TargetTag};
use crate::platform::Platform;
use crate::reference::{Location, Reference, validate_tag};
use crate::registry::ReadOnly;
use crate::rules::{Template, Values, Variable, tag_version};

/// Why an image cannot be promoted as asked.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    /// A reference, repository or tag on the command line is malformed.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// The command line asks for something that cannot be done; says what to change.
    #[error("{0}")]
    Arguments(String),
    /// A `--semver-template` that does not parse or render.
    #[error("--semver-template `{template}`: {problem}")]
    Template {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The source tag or digest is not in the source.
    #[error("{0} not found")]
    SourceMissing(String),
    /// The `--platform` filter cannot be applied.
    #[error("--platform: {0}")]
    Platforms(#[from] crate::manifest::FilterError),
    /// Reading the source or the target failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// One image to promote, as the command line asked: hoist's own flags and
/// Stevedore's spellings arrive here alike.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The image: `host[:port]/path[:tag][@digest]`, `NAME/path:tag` or `oci-layout:DIR//path:tag`.
    pub source: String,
    /// Where to: a repository, optionally with a tag.
    pub target: Option<String>,
    /// Target tags: the first replaces the source tag, the rest are extra.
    pub tags: Vec<String>,
    /// Also write the source tag when a tag replaces it.
    pub keep_source_tag: bool,
    /// Derive semantic-version tags from the source tag.
    pub semver_tags: bool,
    /// Their templates (default [`DEFAULT_SEMVER_TEMPLATES`]).
    pub semver_templates: Vec<String>,
    /// Target registry in place of the source's.
    pub registry: Option<String>,
    /// Target namespace: everything before the image name.
    pub namespace: Option<String>,
    /// Target image name: the last path segment.
    pub name: Option<String>,
}

/// Stevedore's default semantic-version tags.
pub const DEFAULT_SEMVER_TEMPLATES: [&str; 2] = ["{major}.{minor}.{patch}", "{major}.{minor}"];

/// Where the image goes and under which tags, before any registry is read.
#[derive(Debug, PartialEq, Eq)]
pub struct Destination {
    /// The target repository (its tag and digest unset).
    pub target: Reference,
    /// Tags to write, the main tag first: the main tag and the kept source
    /// tag are version tags, written before the others, which float.
    pub tags: Vec<(String, Role)>,
}

/// Works out the target repository and tags from the command line.
pub fn destination(
    args: &Request,
    source: &Reference,
    is_name: &dyn Fn(&str) -> bool,
) -> Result<Destination, PromoteError> {
    let (target, explicit_tag) = target_repository(args, source, is_name)?;
    if target.location == source.location
        && target.repository == source.repository
        && args.tags.is_empty()
        && explicit_tag.is_none()
        && !args.semver_tags
    {
        return Err(PromoteError::Arguments("the target is the source itself: give a TARGET, --registry, --namespace, --name or --tag".to_string()));
    }
    let mut tags = named_tags(args, explicit_tag, source.tag.as_ref())?;
    if args.semver_tags {
        for (series, tag) in semver_tags(args, source)? {
            add_tag(&mut tags, tag, Role::Floating { series });
        }
    }
    for (tag, _) in &tags {
        validate_tag(tag, tag)?;
    }
    Ok(Destination { target, tags })
}

/// The target repository (TARGET, or the source's), moved by `--registry`
/// and renamed by `--namespace` and `--name`; with the tag TARGET names,
/// which is then the main tag.
fn target_repository(
    args: &Request,
    source: &Reference,
    is_name: &dyn Fn(&str) -> bool,
) -> Result<(Reference, Option<String>), PromoteError> {
    let (mut target, explicit_tag) = match &args.target {
        Some(text) => {
            let mut target = Reference::parse(text, is_name)?;
            if target.digest.is_some() {
                return Err(PromoteError::Arguments(format!(
                    "the target `{text}` names a digest; name a repository and optionally a tag"
                )));
            }
            let tag = target.tag.take();
            (target, tag)
        }
        None => (source.clone(), None),
    };
    target.tag = None;
    target.digest = None;
    if let Some(registry) = &args.registry {
        target.location = if is_name(registry) {
            Location::Named(registry.clone())
        } else {
            match crate::registry::spec::RegistrySpec::parse(registry) {
                Ok(crate::registry::spec::RegistrySpec::OciLayout(dir)) => Location::OciLayout(dir),
                _ => Location::Host(registry.clone()),
            }
        };
    }
    target.repository = renamed(&target.repository, args);
    crate::reference::validate_repository(&target.repository, &target.repository)?;
    Ok((target, explicit_tag))
}

/// `repository` with its namespace (all but the last segment) and name
/// replaced as `--namespace` and `--name` ask.
fn renamed(repository: &str, args: &Request) -> String {
    let (namespace, name) = repository.rsplit_once('/').unwrap_or(("", repository));
    let namespace = args.namespace.as_deref().unwrap_or(namespace);
    let name = args.name.as_deref().unwrap_or(name);
    [namespace.trim_matches('/'), name]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// The tags named outright, early ones first: the main tag (TARGET's, else
/// the first `--tag`, else the source's), the source tag with
/// `--keep-source-tag`, then the other `--tag` values.
fn named_tags(
    args: &Request,
    explicit_tag: Option<String>,
    source_tag: Option<&String>,
) -> Result<Vec<(String, Role)>, PromoteError> {
    let mut extra = args.tags.iter();
    let main = explicit_tag
        .or_else(|| extra.next().cloned())
        .or(source_tag.cloned())
        .ok_or_else(|| {
            PromoteError::Arguments(format!(
                "`{}` names no tag: give --tag for the target",
                args.source
            ))
        })?;
    let mut tags = Vec::new();
    add_tag(&mut tags, main, Role::Version);
    if args.keep_source_tag
        && let Some(tag) = source_tag
    {
        add_tag(&mut tags, tag.clone(), Role::Version);
    }
    for tag in extra {
        let series = tag.clone();
        add_tag(&mut tags, tag.clone(), Role::Floating { series });
    }
    Ok(tags)
}

/// Adds a tag unless it is already there: its first mention decides its
/// role (a version tag is written early).
fn add_tag(tags: &mut Vec<(String, Role)>, tag: String, role: Role) {
    if !tags.iter().any(|(t, _)| *t == tag) {
        tags.push((tag, role));
    }
}

/// `--semver-tags`: the source tag's version rendered through each
/// `--semver-template` (Stevedore's defaults without one), with the template.
fn semver_tags(args: &Request, source: &Reference) -> Result<Vec<(String, String)>, PromoteError> {
    let Some(tag) = &source.tag else {
        return Err(PromoteError::Arguments(
            "--semver-tags needs a source tag that is a semantic version".to_string(),
        ));
    };
    let Some(version) = tag_version(tag) else {
        return Err(PromoteError::Arguments(format!(
            "--semver-tags: the source tag `{tag}` is not a semantic version (e.g. 1.4.2 or v1.4.2-rc.1)"
        )));
    };
    let templates: Vec<String> = if args.semver_templates.is_empty() {
        DEFAULT_SEMVER_TEMPLATES
            .iter()
            .map(|t| t.to_string())
            .collect()
    } else {
        args.semver_templates.clone()
    };
    let values = Values {
        tag,
        version: Some(&version),
        path: &source.repository,
    };
    templates
        .iter()
        .map(|text| {
            let template =
                Template::parse(text, &Variable::ALL).map_err(|e| PromoteError::Template {
                    template: text.clone(),
                    problem: format!("{} ({})", e.message, e.help),
                })?;
            let tag = template
                .render(&values)
                .ok_or_else(|| PromoteError::Template {
                    template: text.clone(),
                    problem: format!("cannot be rendered for `{tag}`"),
                })?;
            Ok((template.to_string(), tag))
        })
        .collect()
}

/// What `hoist promote` copies besides the tags: the image's platforms
/// and whether its signatures, attestations and SBOMs go along.
#[derive(Clone, Debug, Default)]
pub struct Carry<'a> {
    /// Keep only these platforms of an index (none: all).
    pub platforms: &'a [Platform],
    /// Carry the artifacts attached to the image (`--no-referrers` clears it).
    pub referrers: bool,
}

/// Reads the source and target and builds the plan: one entry per tag, and
/// one per artifact attached to the image when `carry.referrers`.
/// Tags are overwritten (a promotion moves `latest`); the plan shows `~`.
pub fn plan(
    source: &Reference,
    source_store: &ReadOnly,
    destination: &Destination,
    target_store: &ReadOnly,
    carry: &Carry<'_>,
) -> Result<Plan, PromoteError> {
    let reference = source.manifest_reference();
    let head = source_store
        .manifest_head(&source.repository, &reference)?
        .ok_or_else(|| PromoteError::SourceMissing(source.to_string()))?;
    let mut target_digest = None;
    if !carry.platforms.is_empty() {
        let written = crate::filter::filter_image(
            source_store,
            &source.repository,
            &head.digest,
            carry.platforms,
        )??;
        target_digest = (written != head.digest).then_some(written);
    }
    let image = SourceImage {
        registry: source.location.to_string(),
        repository: source.repository.clone(),
        tag: source.tag.clone().unwrap_or_else(|| reference.clone()),
        digest: head.digest.clone(),
        media_type: head.media_type.clone(),
    };
    let writer = EntryWriter {
        destination,
        target_store,
        carry,
    };
    let mut entries = Vec::new();
    for (tag, role) in &destination.tags {
        entries.push(writer.entry(image.clone(), tag, role.clone(), target_digest.clone())?);
    }
    let mut skipped = Vec::new();
    if carry.referrers {
        let attached = attached_images(source_store, &image)?;
        for attached in attached {
            match &target_digest {
                None => {
                    let tag = attached.tag.clone();
                    let role = Role::Attached {
                        subject: image.digest.clone(),
                    };
                    entries.push(writer.entry(attached, &tag, role, None)?);
                }
                Some(filtered) => skipped.push(signature_left_behind(&attached, &image, filtered)),
            }
        }
    }
    let target_name = destination.target.location.to_string();
    Ok(Plan {
        format: PLAN_FORMAT,
        registries: BTreeMap::from([
            (image.registry.clone(), image.registry.clone()),
            (target_name.clone(), target_name),
        ]),
        summary: crate::plan::summarize(&entries, skipped.len()),
        estimate: estimate(&entries, source_store, target_store),
        entries,
        skipped,
        rule_problems: Vec::new(),
    })
}

/// The work `entries` mean, as `plan` estimates it for rules: each image's
/// tree read from the source (of a filtered index, the platforms kept).
fn estimate(
    entries: &[PlanEntry],
    source_store: &ReadOnly,
    target_store: &ReadOnly,
) -> crate::plan::Estimate {
    let mut inventory = crate::plan::Inventory::default();
    for entry in entries {
        let (source, target) = (&entry.source, &entry.target);
        let stores = [
            (&source.registry, source_store),
            (&target.registry, target_store),
        ];
        for (name, store) in stores {
            inventory.stores.insert(name.clone(), store.store_id());
        }
        if let Some(current) = &target.current_digest {
            let key = crate::plan::tag_key(&target.registry, &target.repository, &target.tag);
            inventory.target_heads.insert(key, current.clone());
        }
        let written = entry.target_digest();
        let key = (source.registry.clone(), written.clone());
        if !entry.changes() || inventory.contents.contains_key(&key) {
            continue;
        }
        let contents = crate::discover::image_contents(
            source_store,
            &source.repository,
            &source.digest,
            &entry.platforms,
            written,
        );
        if let Ok(contents) = contents {
            inventory.contents.insert(key, contents);
        }
    }
    crate::plan::estimate(entries, &inventory)
}

/// Makes the plan entries of one promotion, reading each target tag.
struct EntryWriter<'a> {
    destination: &'a Destination,
    target_store: &'a ReadOnly,
    carry: &'a Carry<'a>,
}

impl EntryWriter<'_> {
    /// The entry writing `image` (at `filtered`, a platform-filtered index's
    /// digest, if any) to target tag `tag`: created, updated or unchanged.
    fn entry(
        &self,
        image: SourceImage,
        tag: &str,
        role: Role,
        filtered: Option<crate::digest::Digest>,
    ) -> Result<PlanEntry, PromoteError> {
        let repository = &self.destination.target.repository;
        let current = self
            .target_store
            .manifest_head(repository, tag)?
            .map(|h| h.digest);
        let wanted = filtered.as_ref().unwrap_or(&image.digest);
        let action = match &current {
            None => Action::Create,
            Some(c) if c == wanted => Action::UNCHANGED,
            Some(_) => Action::Update,
        };
        let attached = role.is_attached();
        Ok(PlanEntry {
            action,
            role,
            source: image,
            target: TargetTag {
                registry: self.destination.target.location.to_string(),
                repository: repository.clone(),
                tag: tag.to_string(),
                current_digest: current,
                digest: filtered,
            },
            rules: vec!["promote".to_string()],
            platforms: if attached {
                Vec::new()
            } else {
                self.carry.platforms.to_vec()
            },
            referrers: self.carry.referrers && !attached,
            mode: Default::default(),
        })
    }
}

/// The signature, attestation and SBOM tags of `image` in its repository,
/// each as the image it points at. A tag that resolves to the image itself
/// (GitLab's answer to `sha256-<hex>`) is not one of them.
fn attached_images(
    source_store: &ReadOnly,
    image: &SourceImage,
) -> Result<Vec<SourceImage>, PromoteError> {
    let tags = source_store.tags(&image.repository)?;
    let mut attached = Vec::new();
    for tag in crate::plan::attached_tag_names(&image.digest, &tags) {
        let Some(head) = source_store.manifest_head(&image.repository, tag)? else {
            continue;
        };
        if head.digest == image.digest {
            continue;
        }
        attached.push(SourceImage {
            tag: tag.clone(),
            digest: head.digest,
            media_type: head.media_type,
            ..image.clone()
        });
    }
    Ok(attached)
}

/// Why an artifact attached to an index is not carried when `--platform`
/// filters that index: it names the index's digest, and the filtered index
/// is another image.
fn signature_left_behind(
    attached: &SourceImage,
    image: &SourceImage,
    filtered: &crate::digest::Digest,
) -> crate::plan::SkippedTag {
    crate::plan::SkippedTag {
        rule: "promote".to_string(),
        registry: attached.registry.clone(),
        repository: attached.repository.clone(),
        tag: attached.tag.clone(),
        reason: format!(
            "attached to {}, which --platform filters into a new index {}: it does not apply to that image and is not carried (sign the filtered image)",
            image.digest, filtered
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(line: &[&str]) -> Request {
        let mut argv = vec!["hoist", "promote"];
        argv.extend(line);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::Promote(args) => args.request(),
            _ => unreachable!(),
        }
    }

    /// The tags `hoist promote LINE` writes, or its error as a user reads it.
    fn tags_for(line: &[&str]) -> Result<Vec<String>, String> {
        let args = args(line);
        let source = Reference::parse(&args.source, &|_| false).unwrap();
        destination(&args, &source, &|_| false)
            .map(|d| d.tags.into_iter().map(|t| t.0).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn stevedore_worked_example() {
        let mut tags = tags_for(&[
            "reg.example.com/app1:0.1.0-base2.4.6",
            "prod.example.com/app1",
            "--promote-image-tag",
            "latest",
            "--force-promote-source-image",
            "--enable-semver-tags",
            "--semver-tags-template",
            "{{ .Major }}.{{ .Minor }}.{{ .Patch }}",
            "--semver-tags-template",
            "{{ .Major }}.{{ .Minor }}",
        ])
        .unwrap();
        tags.sort();
        assert_eq!(tags, ["0.1", "0.1.0", "0.1.0-base2.4.6", "latest"]);
        // The defaults are the same two templates.
        let mut defaults = tags_for(&[
            "reg.example.com/app1:0.1.0-base2.4.6",
            "prod.example.com/app1",
            "--tag",
            "latest",
            "--keep-source-tag",
            "--semver-tags",
        ])
        .unwrap();
        defaults.sort();
        assert_eq!(defaults, tags);
    }

    #[test]
    fn first_tag_replaces_the_rest_are_extra() {
        assert_eq!(
            tags_for(&["r.io/a/b:1.0", "s.io/a/b", "--tag", "x", "--tag", "y"]).unwrap(),
            ["x", "y"]
        );
        assert_eq!(tags_for(&["r.io/a/b:1.0", "s.io/a/b"]).unwrap(), ["1.0"]);
        assert_eq!(
            tags_for(&["r.io/a/b:1.0", "s.io/a/b:prod"]).unwrap(),
            ["prod"]
        );
    }

    #[test]
    fn registry_namespace_and_name_rewrite_the_source() {
        let args = args(&[
            "r.io/team/tools/app:1.0",
            "--promote-image-registry-host",
            "prod.io",
            "--promote-image-registry-namespace",
            "stable",
            "--promote-image-name",
            "svc",
        ]);
        let source = Reference::parse(&args.source, &|_| false).unwrap();
        let d = destination(&args, &source, &|_| false).unwrap();
        assert_eq!(d.target.to_string(), "prod.io/stable/svc");
        let args = args_only_name();
        let source = Reference::parse(&args.source, &|_| false).unwrap();
        let d = destination(&args, &source, &|_| false).unwrap();
        assert_eq!(d.target.to_string(), "r.io/team/svc");
    }

    fn args_only_name() -> Request {
        args(&["r.io/team/app:1.0", "--name", "svc"])
    }

    #[test]
    fn semver_errors_are_errors() {
        let err = tags_for(&["r.io/a:main", "s.io/a", "--semver-tags"]).unwrap_err();
        assert!(err.contains("not a semantic version"), "{err}");
        let err = tags_for(&[
            "r.io/a:1.0.0",
            "s.io/a",
            "--semver-tags",
            "--semver-template",
            "{nope}",
        ])
        .unwrap_err();
        assert!(err.contains("nope"), "{err}");
        let err = tags_for(&["r.io/a:1.0.0"]).unwrap_err();
        assert!(err.contains("source itself"), "{err}");
    }
}
