//! Where `hoist promote` writes and under which tags: the target repository
//! and Stevedore's tag semantics (main tag, extra tags, the source tag, and
//! the semantic-version tags derived from each of them that is a version).

use super::PromoteError;
use crate::plan::Role;
use crate::reference::{Location, Reference, ReferenceError, validate_tag};
use crate::rules::{Template, Values, Variable, lenient_version};

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
    /// Derive semantic-version tags from every tag written that is a version.
    pub semver_tags: bool,
    /// Their templates (default [`DEFAULT_SEMVER_TEMPLATES`]).
    pub semver_templates: Vec<String>,
    /// Target registry in place of the source's.
    pub registry: Option<String>,
    /// Target namespace: everything before the image name.
    pub namespace: Option<String>,
    /// Target image name: the last path segment.
    pub name: Option<String>,
    /// Delete the source tag once the target holds the image (`--move`).
    pub move_source: bool,
}

/// The semantic-version templates of Stevedore's promote example (its
/// built-in default is the first alone).
pub const DEFAULT_SEMVER_TEMPLATES: [&str; 2] = ["{major}.{minor}.{patch}", "{major}.{minor}"];

/// Where the image goes and under which tags, before any registry is read.
#[derive(Debug, PartialEq, Eq)]
pub struct Destination {
    /// The target repository (its tag and digest unset).
    pub target: Reference,
    /// Tags to write, the main tag first: the main tag and the kept source
    /// tag are version tags, written before the others, which float.
    pub tags: Vec<(String, Role)>,
    /// What the user should know about how the tags came out (tags that
    /// are not versions and derive nothing), for stderr.
    pub notes: Vec<String>,
}

/// Parses the source as `hoist promote` reads it: without a tag or a digest
/// it is `:latest`, as docker and Stevedore read it.
pub fn source_reference(
    text: &str,
    is_name: &dyn Fn(&str) -> bool,
) -> Result<Reference, ReferenceError> {
    let mut source = Reference::parse(text, is_name)?;
    if source.tag.is_none() && source.digest.is_none() {
        source.tag = Some("latest".to_string());
    }
    Ok(source)
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
    let mut notes = Vec::new();
    if args.semver_tags {
        let derived = semver_tags(args, &tags, &source.repository)?;
        notes = derived.notes;
        for (series, tag) in derived.tags {
            add_tag(&mut tags, tag, Role::Floating { series });
        }
    }
    for (tag, _) in &tags {
        validate_tag(tag, tag)?;
    }
    refuse_moving_onto_itself(args, source, &target, &tags)?;
    Ok(Destination {
        target,
        tags,
        notes,
    })
}

/// `--move` must not delete what it writes: a target tag that is the source
/// tag itself (same registry, repository and tag) would be deleted with it.
fn refuse_moving_onto_itself(
    args: &Request,
    source: &Reference,
    target: &Reference,
    tags: &[(String, Role)],
) -> Result<(), PromoteError> {
    let same_repository =
        target.location == source.location && target.repository == source.repository;
    match &source.tag {
        Some(tag) if args.move_source && same_repository && tags.iter().any(|(t, _)| t == tag) => {
            Err(PromoteError::Arguments(format!(
                "--move would delete `{tag}`, which it also writes in the same repository: drop --move, or write to another repository"
            )))
        }
        _ => Ok(()),
    }
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

/// What `--semver-tags` derives: `(template, tag)` pairs, and notes on the
/// tags that derive nothing.
struct Derived {
    tags: Vec<(String, String)>,
    notes: Vec<String>,
}

/// `--semver-tags`: every named tag that is a version (read leniently, as
/// Stevedore's Masterminds semver does) rendered through each template.
/// A tag that is not a version derives nothing and is noted: Stevedore skips
/// it silently. A template that does not parse is an error.
fn semver_tags(
    args: &Request,
    named: &[(String, Role)],
    path: &str,
) -> Result<Derived, PromoteError> {
    let templates = semver_templates(args)?;
    let mut derived = Derived {
        tags: Vec::new(),
        notes: Vec::new(),
    };
    for (tag, _) in named {
        let Some(version) = lenient_version(tag) else {
            derived.notes.push(format!(
                "--semver-tags: `{tag}` is not a semantic version (e.g. 1.4.2, v1.4 or 1.4.2-rc.1): no tags derived from it"
            ));
            continue;
        };
        let values = Values {
            tag,
            version: Some(&version),
            path,
        };
        for template in &templates {
            let rendered = template
                .render(&values)
                .ok_or_else(|| PromoteError::Template {
                    template: template.to_string(),
                    problem: format!("cannot be rendered for `{tag}`"),
                })?;
            derived.tags.push((template.to_string(), rendered));
        }
    }
    Ok(derived)
}

/// The `--semver-template` values parsed (the defaults without one).
fn semver_templates(args: &Request) -> Result<Vec<Template>, PromoteError> {
    let texts: Vec<String> = if args.semver_templates.is_empty() {
        DEFAULT_SEMVER_TEMPLATES
            .iter()
            .map(|t| t.to_string())
            .collect()
    } else {
        args.semver_templates.clone()
    };
    texts
        .iter()
        .map(|text| {
            Template::parse(text, &Variable::ALL).map_err(|e| PromoteError::Template {
                template: text.clone(),
                problem: format!("{} ({})", e.message, e.help),
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "destination_tests.rs"]
mod tests;
