//! Semantic versions in tags (a leading `v` accepted) and `semver`
//! requirements, with prereleases matched by plain version order when a rule
//! opts into them.

use std::cmp::Ordering;

use semver::{Comparator, Op, Prerelease, Version, VersionReq};

/// The version a tag names, if it names one: `1.2.3`, `v1.2.3`, `1.2.3-rc.1`.
pub fn tag_version(tag: &str) -> Option<Version> {
    let bare = tag
        .strip_prefix('v')
        .or_else(|| tag.strip_prefix('V'))
        .unwrap_or(tag);
    Version::parse(bare).ok()
}

/// The version a tag names when read as leniently as Masterminds semver
/// (Stevedore's) reads it: a leading `v`, and a missing minor or patch read
/// as 0 (`v1.2` and `1.2` are 1.2.0, `1` is 1.0.0), before any `-pre` or `+build`.
pub fn lenient_version(tag: &str) -> Option<Version> {
    let bare = tag
        .strip_prefix('v')
        .or_else(|| tag.strip_prefix('V'))
        .unwrap_or(tag);
    let core_end = bare.find(['-', '+']).unwrap_or(bare.len());
    let (core, suffix) = bare.split_at(core_end);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut padded = parts.join(".");
    for _ in parts.len()..3 {
        padded.push_str(".0");
    }
    Version::parse(&format!("{padded}{suffix}")).ok()
}

/// A `semver = "..."` requirement.
#[derive(Clone, Debug)]
pub struct Requirement {
    req: VersionReq,
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.req.fmt(f)
    }
}

impl Requirement {
    /// Parses a requirement such as `>=1.0.0, <3` or `^v1.4`.
    pub fn parse(text: &str) -> Result<Requirement, semver::Error> {
        Ok(Requirement {
            req: VersionReq::parse(&strip_v(text))?,
        })
    }

    /// Whether `version` satisfies the requirement. A prerelease satisfies it
    /// only when `prerelease` is allowed, and then by plain version order
    /// (`>=1.0.0, <3` admits `2.0.0-rc.1` but not `3.0.0-rc.1`).
    pub fn matches(&self, version: &Version, prerelease: bool) -> bool {
        if version.pre.is_empty() {
            return self.req.matches(version);
        }
        prerelease && self.req.comparators.iter().all(|c| in_range(c, version))
    }
}

/// Drops a `v` in front of a version inside a requirement.
fn strip_v(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous = ' ';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let starts_version = matches!(previous, ' ' | ',' | '=' | '>' | '<' | '~' | '^');
        if (c == 'v' || c == 'V')
            && starts_version
            && chars.peek().is_some_and(char::is_ascii_digit)
        {
            previous = c;
            continue;
        }
        out.push(c);
        previous = c;
    }
    out
}

/// `major.minor.patch-0`: the lowest version of that release, prereleases included.
fn floor(major: u64, minor: u64, patch: u64) -> Version {
    let mut v = Version::new(major, minor, patch);
    v.pre = Prerelease::new("0").unwrap_or(Prerelease::EMPTY);
    v
}

/// Whether `v` lies in the comparator's range, by version order only.
fn in_range(c: &Comparator, v: &Version) -> bool {
    let (major, minor, patch) = (c.major, c.minor, c.patch);
    let exact = || {
        let mut bound = Version::new(major, minor.unwrap_or(0), patch.unwrap_or(0));
        bound.pre = c.pre.clone();
        bound
    };
    // The lowest version above the part the comparator names.
    let next = || match (minor, patch) {
        (None, _) => floor(major.saturating_add(1), 0, 0),
        (Some(minor), None) => floor(major, minor.saturating_add(1), 0),
        (Some(minor), Some(patch)) => floor(major, minor, patch.saturating_add(1)),
    };
    let lower = |bound: Version| v.cmp_precedence(&bound) != Ordering::Less;
    let below = |bound: Version| v.cmp_precedence(&bound) == Ordering::Less;
    match c.op {
        Op::Exact | Op::Wildcard => match (minor, patch) {
            (Some(_), Some(_)) if c.op == Op::Exact => {
                v.cmp_precedence(&exact()) == Ordering::Equal
            }
            // `=1.2` and `1.*` start at the release, as `>=1.2.0` does.
            _ => {
                lower(Version::new(major, minor.unwrap_or(0), patch.unwrap_or(0))) && below(next())
            }
        },
        Op::Greater => match (minor, patch) {
            (Some(_), Some(_)) => v.cmp_precedence(&exact()) == Ordering::Greater,
            _ => lower(next()),
        },
        Op::GreaterEq => lower(exact()),
        Op::Less => below(if c.pre.is_empty() {
            floor(major, minor.unwrap_or(0), patch.unwrap_or(0))
        } else {
            exact()
        }),
        Op::LessEq => match (minor, patch) {
            (Some(_), Some(_)) => v.cmp_precedence(&exact()) != Ordering::Greater,
            _ => below(next()),
        },
        Op::Tilde => {
            let upper = match minor {
                Some(minor) => floor(major, minor.saturating_add(1), 0),
                None => floor(major.saturating_add(1), 0, 0),
            };
            lower(exact()) && below(upper)
        }
        Op::Caret => {
            let upper = match (major, minor, patch) {
                (0, None, _) => floor(1, 0, 0),
                (0, Some(0), None) => floor(0, 1, 0),
                (0, Some(0), Some(patch)) => floor(0, 0, patch.saturating_add(1)),
                (0, Some(minor), _) => floor(0, minor.saturating_add(1), 0),
                (major, _, _) => floor(major.saturating_add(1), 0, 0),
            };
            lower(exact()) && below(upper)
        }
        _ => c.matches(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_versions_read_as_masterminds_semver_does() {
        let read = |tag: &str| lenient_version(tag).map(|v| v.to_string());
        assert_eq!(read("v1.2").as_deref(), Some("1.2.0"));
        assert_eq!(read("1.2").as_deref(), Some("1.2.0"));
        assert_eq!(read("1").as_deref(), Some("1.0.0"));
        assert_eq!(read("1.2-rc.1").as_deref(), Some("1.2.0-rc.1"));
        assert_eq!(
            read("0.1.0-base2.4.6+b.7").as_deref(),
            Some("0.1.0-base2.4.6+b.7")
        );
        for not_a_version in ["latest", "1.2.3.4", "1..2", "v", "", "1.x"] {
            assert_eq!(read(not_a_version), None, "{not_a_version}");
        }
    }

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn tags_with_and_without_v() {
        assert_eq!(tag_version("v1.2.3"), Some(v("1.2.3")));
        assert_eq!(tag_version("1.2.3-rc.1"), Some(v("1.2.3-rc.1")));
        assert_eq!(tag_version("1.2"), None);
        assert_eq!(tag_version("latest"), None);
    }

    #[test]
    fn releases_follow_cargo_rules() {
        let req = Requirement::parse(">=1.0.0, <3").unwrap();
        assert!(req.matches(&v("1.0.0"), false));
        assert!(req.matches(&v("2.9.9"), false));
        assert!(!req.matches(&v("3.0.0"), false));
        assert!(!req.matches(&v("0.9.0"), false));
        assert!(
            Requirement::parse("^v1.4")
                .unwrap()
                .matches(&v("1.9.0"), false)
        );
        assert!(
            Requirement::parse(">= v2")
                .unwrap()
                .matches(&v("2.1.0"), false)
        );
    }

    #[test]
    fn prereleases_only_when_allowed_and_by_order() {
        let req = Requirement::parse(">=1.0.0, <3").unwrap();
        assert!(!req.matches(&v("2.0.0-rc.1"), false));
        assert!(req.matches(&v("2.0.0-rc.1"), true));
        assert!(!req.matches(&v("3.0.0-rc.1"), true));
        assert!(!req.matches(&v("1.0.0-rc.1"), true));
        assert!(
            Requirement::parse("^1.2")
                .unwrap()
                .matches(&v("1.5.0-beta"), true)
        );
        assert!(
            !Requirement::parse("^1.2")
                .unwrap()
                .matches(&v("2.0.0-beta"), true)
        );
        assert!(
            Requirement::parse("~1.2.3")
                .unwrap()
                .matches(&v("1.2.4-rc.1"), true)
        );
        assert!(
            Requirement::parse("1.*")
                .unwrap()
                .matches(&v("1.3.0-rc.1"), true)
        );
        assert!(
            Requirement::parse("=2.0.0-rc.1")
                .unwrap()
                .matches(&v("2.0.0-rc.1"), true)
        );
        assert!(
            !Requirement::parse("<=1.2")
                .unwrap()
                .matches(&v("1.3.0-rc.1"), true)
        );
    }

    #[test]
    fn bad_requirements_fail() {
        assert!(Requirement::parse(">=1.0.0 <<3").is_err());
        assert!(Requirement::parse("latest").is_err());
    }
}
