//! Image references as users write them: `host[:port]/path[:tag][@digest]`,
//! `oci-layout:DIR//path[:tag]`, or `NAME/path` for a registry named in the config.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// Where images live: a registry host, a directory of OCI layouts, or a
/// registry declared by name in `promotions.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A Distribution API host, `host[:port]` (already normalised, `docker.io` for Docker Hub).
    Host(String),
    /// A directory whose sub-directories are OCI image layouts.
    OciLayout(PathBuf),
    /// A `[registries.NAME]` entry of the configuration.
    Named(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Host(host) => f.write_str(host),
            Location::OciLayout(dir) => write!(f, "oci-layout:{}", dir.display()),
            Location::Named(name) => f.write_str(name),
        }
    }
}

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Where the repository lives.
    pub location: Location,
    /// Repository path inside the location, e.g. `apps/web`.
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest, if given; it wins over the tag when both are present.
    pub digest: Option<Digest>,
}

/// Why a reference could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// The text as a whole is malformed.
    #[error("invalid reference `{input}`: {reason}")]
    Invalid {
        /// What the user wrote.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(input: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        input: input.to_string(),
        reason: reason.into(),
    }
}

const OCI_LAYOUT_PREFIX: &str = "oci-layout:";

impl Reference {
    /// Parses an image reference. `is_registry_name` says whether a first
    /// path segment names a registry of the configuration.
    pub fn parse(
        input: &str,
        is_registry_name: &dyn Fn(&str) -> bool,
    ) -> Result<Self, ReferenceError> {
        if let Some(rest) = input.strip_prefix(OCI_LAYOUT_PREFIX) {
            return parse_oci_layout(input, rest);
        }
        let (rest, digest) = split_digest(input)?;
        let (name, tag) = split_tag(input, rest)?;
        let (location, repository) = match split_url(input, name)? {
            Some((registry, repository)) => (registry, repository.to_string()),
            None => split_location(name, is_registry_name),
        };
        validate_repository(input, &repository)?;
        Ok(Reference {
            location,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest if there is one, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::OciLayout(dir) => write!(
                f,
                "{OCI_LAYOUT_PREFIX}{}//{}",
                dir.display(),
                self.repository
            )?,
            // A registry under a path needs `//` before the repository.
            Location::Host(url) if url.split_once("://").is_some_and(|(_, r)| r.contains('/')) => {
                write!(f, "{url}//{}", self.repository)?
            }
            other => write!(f, "{other}/{}", self.repository)?,
        }
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Parses `REGISTRY[/REPOSITORY]` as `hoist ls` takes it: the first segment is
/// always the registry (a host, a configured name or `oci-layout:DIR`).
pub fn parse_listing(
    input: &str,
    is_registry_name: &dyn Fn(&str) -> bool,
) -> Result<(Location, Option<String>), ReferenceError> {
    if let Some((scheme, rest)) = input.split_once("://") {
        // A URL is the registry, up to a `//` that starts the repository.
        let (registry, repository) = match rest.split_once("//") {
            Some((registry, repository)) => (registry, Some(repository)),
            None => (rest, None),
        };
        let location = Location::Host(format!("{scheme}://{}", registry.trim_end_matches('/')));
        return match repository.filter(|r| !r.is_empty()) {
            Some(repository) => {
                validate_repository(input, repository)?;
                Ok((location, Some(repository.to_string())))
            }
            None => Ok((location, None)),
        };
    }
    if let Some(rest) = input.strip_prefix(OCI_LAYOUT_PREFIX) {
        if rest.is_empty() {
            return Err(invalid(input, "oci-layout: needs a directory"));
        }
        if let Some((dir, repo)) = split_layout_path(rest) {
            validate_repository(input, repo)?;
            return Ok((Location::OciLayout(dir), Some(repo.to_string())));
        }
        // A directory that is itself a layout lists its tags; any other lists its catalog.
        let path = Path::new(rest);
        if path.join("oci-layout").is_file() {
            let (dir, repo) = split_last_segment(rest);
            return Ok((Location::OciLayout(dir), Some(repo.to_string())));
        }
        return Ok((Location::OciLayout(path.to_path_buf()), None));
    }
    let (first, rest) = match input.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (input, None),
    };
    if first.is_empty() {
        return Err(invalid(input, "missing registry"));
    }
    let location = if is_registry_name(first) {
        Location::Named(first.to_string())
    } else {
        Location::Host(normalise_host(first))
    };
    match rest {
        Some(repo) if !repo.is_empty() => {
            validate_repository(input, repo)?;
            let repo = docker_hub_library(&location, repo);
            Ok((location, Some(repo)))
        }
        _ => Ok((location, None)),
    }
}

fn parse_oci_layout(input: &str, rest: &str) -> Result<Reference, ReferenceError> {
    let (rest, digest) = split_digest_from(input, rest)?;
    let (path, tag) = split_tag(input, rest)?;
    let (dir, repository) = match split_layout_path(path) {
        Some((dir, repo)) => (dir, repo.to_string()),
        None => {
            let (dir, repo) = split_last_segment(path);
            (dir, repo.to_string())
        }
    };
    validate_repository(input, &repository)?;
    Ok(Reference {
        location: Location::OciLayout(dir),
        repository,
        tag,
        digest,
    })
}

/// `DIR//REPOSITORY`, split at the last `//` (a repository never holds one,
/// a directory may end in `/`, as `/` itself does); an empty directory is `.`.
fn split_layout_path(path: &str) -> Option<(PathBuf, &str)> {
    let (dir, repo) = path.rsplit_once("//")?;
    Some((PathBuf::from(if dir.is_empty() { "." } else { dir }), repo))
}

fn split_last_segment(path: &str) -> (PathBuf, &str) {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some((dir, last)) => (PathBuf::from(if dir.is_empty() { "/" } else { dir }), last),
        None => (PathBuf::from("."), path),
    }
}

fn split_digest(input: &str) -> Result<(&str, Option<Digest>), ReferenceError> {
    split_digest_from(input, input)
}

fn split_digest_from<'a>(
    input: &str,
    text: &'a str,
) -> Result<(&'a str, Option<Digest>), ReferenceError> {
    match text.split_once('@') {
        Some((rest, digest)) => {
            let digest = digest
                .parse()
                .map_err(|e: crate::digest::InvalidDigest| invalid(input, e.to_string()))?;
            Ok((rest, Some(digest)))
        }
        None => Ok((text, None)),
    }
}

/// Splits `name:tag`, where the colon is after the last `/` (so a port is not a tag).
fn split_tag<'a>(input: &str, text: &'a str) -> Result<(&'a str, Option<String>), ReferenceError> {
    let last_slash = text.rfind('/').map_or(0, |i| i + 1);
    match text[last_slash..].find(':') {
        Some(i) => {
            let (name, tag) = (&text[..last_slash + i], &text[last_slash + i + 1..]);
            validate_tag(input, tag)?;
            Ok((name, Some(tag.to_string())))
        }
        None => Ok((text, None)),
    }
}

/// A reference that starts with a URL (`https://host[/path]//repository`, or
/// `https://host/repository` when the registry has no path): the registry and
/// the repository. `None` when `name` is not a URL.
fn split_url<'a>(
    input: &str,
    name: &'a str,
) -> Result<Option<(Location, &'a str)>, ReferenceError> {
    let Some((scheme, rest)) = name.split_once("://") else {
        return Ok(None);
    };
    if scheme != "http" && scheme != "https" {
        return Err(invalid(input, format!("unsupported scheme `{scheme}`")));
    }
    let (registry, repository) = match rest.split_once("//") {
        Some((registry, repository)) => (registry, repository),
        None => rest
            .split_once('/')
            .ok_or_else(|| invalid(input, "a URL needs a repository after the registry"))?,
    };
    Ok(Some((
        Location::Host(format!("{scheme}://{registry}")),
        repository,
    )))
}

fn split_location(name: &str, is_registry_name: &dyn Fn(&str) -> bool) -> (Location, String) {
    if let Some((first, rest)) = name.split_once('/') {
        if is_registry_name(first) {
            return (Location::Named(first.to_string()), rest.to_string());
        }
        if first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.starts_with('[')
        {
            let location = Location::Host(normalise_host(first));
            let repo = docker_hub_library(&location, rest);
            return (location, repo);
        }
    }
    let location = Location::Host("docker.io".to_string());
    let repo = docker_hub_library(&location, name);
    (location, repo)
}

/// Docker Hub's aliases all mean `docker.io`.
fn normalise_host(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        other => other.to_string(),
    }
}

/// On Docker Hub, a one-segment repository is an official image under `library/`.
fn docker_hub_library(location: &Location, repo: &str) -> String {
    if *location == Location::Host("docker.io".to_string()) && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo.to_string()
    }
}

/// Repository path rules of the OCI distribution spec:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn validate_repository(input: &str, repo: &str) -> Result<(), ReferenceError> {
    if repo.is_empty() {
        return Err(invalid(input, "missing repository"));
    }
    if repo.len() > 255 {
        return Err(invalid(input, "repository longer than 255 characters"));
    }
    for segment in repo.split('/') {
        if !valid_path_segment(segment) {
            return Err(invalid(
                input,
                format!(
                    "repository segment `{segment}` must be lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
                ),
            ));
        }
    }
    Ok(())
}

fn valid_path_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &segment[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Tag rules of the OCI distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(invalid(
            input,
            format!(
                "tag `{tag}` must be 1-128 of letters, digits, `_`, `.`, `-`, not starting with `.` or `-`"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        Reference::parse(s, &|name| name == "staging").unwrap()
    }

    #[test]
    fn docker_style_references() {
        let r = parse("localhost:5000/apps/web:1.2.3");
        assert_eq!(r.location, Location::Host("localhost:5000".into()));
        assert_eq!(r.repository, "apps/web");
        assert_eq!(r.tag.as_deref(), Some("1.2.3"));

        let r = parse("ubuntu");
        assert_eq!(r.location, Location::Host("docker.io".into()));
        assert_eq!(r.repository, "library/ubuntu");
        assert_eq!(r.manifest_reference(), "latest");

        let r = parse("index.docker.io/bitnami/nginx:1");
        assert_eq!(r.location, Location::Host("docker.io".into()));
        assert_eq!(r.repository, "bitnami/nginx");

        let d = format!("sha256:{}", "b".repeat(64));
        let r = parse(&format!("ghcr.io/o/app:v1@{d}"));
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.tag.as_deref(), Some("v1"));
    }

    #[test]
    fn named_registries_and_layouts() {
        let r = parse("staging/apps/web:1");
        assert_eq!(r.location, Location::Named("staging".into()));
        assert_eq!(r.repository, "apps/web");

        let r = parse("oci-layout:examples/store//apps/web:1.0");
        assert_eq!(r.location, Location::OciLayout("examples/store".into()));
        assert_eq!(r.repository, "apps/web");
        assert_eq!(r.tag.as_deref(), Some("1.0"));

        let r = parse("oci-layout:out/web:2");
        assert_eq!(r.location, Location::OciLayout("out".into()));
        assert_eq!(r.repository, "web");
    }

    #[test]
    fn layout_references_print_back_to_themselves() {
        for (input, dir, repository) in [
            // Found by the `reference` fuzz target: printed as `oci-layout:///a`.
            ("oci-layout:/a", "/", "a"),
            ("oci-layout:///a", "/", "a"),
            ("oci-layout:d///a", "d/", "a"),
            ("oci-layout:d//x//apps/web", "d//x", "apps/web"),
            ("oci-layout://web", ".", "web"),
        ] {
            let r = parse(input);
            assert_eq!(r.location, Location::OciLayout(dir.into()), "{input}");
            assert_eq!(r.repository, repository, "{input}");
            assert_eq!(parse(&r.to_string()), r, "{input} printed as {r}");
        }
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "reg.io/Repo:tag",
            "reg.io/repo:bad tag",
            "reg.io/repo:-x",
            "reg.io/repo@sha256:../../etc",
            "reg.io/a//b",
            "reg.io/",
        ] {
            assert!(Reference::parse(bad, &|_| false).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn listing_targets() {
        let no = |_: &str| false;
        assert_eq!(
            parse_listing("127.0.0.1:5000", &no).unwrap(),
            (Location::Host("127.0.0.1:5000".into()), None)
        );
        assert_eq!(
            parse_listing("127.0.0.1:5000/a/b", &no).unwrap(),
            (Location::Host("127.0.0.1:5000".into()), Some("a/b".into()))
        );
    }

    #[test]
    fn a_url_is_a_registry_up_to_a_double_slash() {
        let no = |_: &str| false;
        let host = |url: &str| Location::Host(url.to_string());
        assert_eq!(
            parse_listing("https://registry.example.com", &no).unwrap(),
            (host("https://registry.example.com"), None)
        );
        assert_eq!(
            parse_listing("https://jfrog.io/artifactory/api/docker/local/", &no).unwrap(),
            (host("https://jfrog.io/artifactory/api/docker/local"), None)
        );
        assert_eq!(
            parse_listing(
                "https://jfrog.io/artifactory/api/docker/local//apps/web",
                &no
            )
            .unwrap(),
            (
                host("https://jfrog.io/artifactory/api/docker/local"),
                Some("apps/web".into())
            )
        );
        let image =
            Reference::parse("https://jfrog.io/repository/hosted//apps/web:1.0", &no).unwrap();
        assert_eq!(image.location, host("https://jfrog.io/repository/hosted"));
        assert_eq!(
            (image.repository.as_str(), image.tag.as_deref()),
            ("apps/web", Some("1.0"))
        );
        // Without `//` the host is the registry and the path the repository.
        let plain = Reference::parse("http://127.0.0.1:5000/apps/web:2.0", &no).unwrap();
        assert_eq!(plain.location, host("http://127.0.0.1:5000"));
        assert_eq!(plain.repository, "apps/web");
        for bad in ["ftp://host/app:1", "https://host", "https://host//Apps:1"] {
            assert!(Reference::parse(bad, &no).is_err(), "{bad} accepted");
        }
    }
}
