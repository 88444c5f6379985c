//! Templates for target repositories and tags: `{tag}`, `{major}`, `{minor}`,
//! `{patch}`, `{prerelease}`, `{build}`, `{path}`, `{name}`, `{namespace}`.
//! Stevedore's Go-template spellings (`{{ .Major }}`) are accepted too.

use std::fmt;
use std::ops::Range;

use semver::Version;

/// A variable a template can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variable {
    /// The source tag.
    Tag,
    /// Major version.
    Major,
    /// Minor version.
    Minor,
    /// Patch version.
    Patch,
    /// Prerelease part (`rc.1`), empty for a release.
    Prerelease,
    /// Build metadata, empty when absent.
    Build,
    /// The source repository path.
    Path,
    /// Its last segment.
    Name,
    /// All but its last segment.
    Namespace,
}

impl Variable {
    /// Every variable, in the order the documentation lists them.
    pub const ALL: [Variable; 9] = [
        Variable::Tag,
        Variable::Major,
        Variable::Minor,
        Variable::Patch,
        Variable::Prerelease,
        Variable::Build,
        Variable::Path,
        Variable::Name,
        Variable::Namespace,
    ];

    /// Its name inside braces.
    pub fn name(self) -> &'static str {
        match self {
            Variable::Tag => "tag",
            Variable::Major => "major",
            Variable::Minor => "minor",
            Variable::Patch => "patch",
            Variable::Prerelease => "prerelease",
            Variable::Build => "build",
            Variable::Path => "path",
            Variable::Name => "name",
            Variable::Namespace => "namespace",
        }
    }

    fn from_name(name: &str) -> Option<Variable> {
        let name = name.to_ascii_lowercase();
        let name = if name == "metadata" { "build" } else { &name };
        Variable::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Whether it only has a value for a semantic version.
    pub fn needs_version(self) -> bool {
        matches!(
            self,
            Variable::Major
                | Variable::Minor
                | Variable::Patch
                | Variable::Prerelease
                | Variable::Build
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Variable(Variable),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    text: String,
    pieces: Vec<Piece>,
}

/// A template that does not parse: what and where (bytes within the template).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// Where in the template text.
    pub range: Range<usize>,
    /// How to fix it.
    pub help: String,
}

impl Variable {
    /// `{a}, {b}`: the variables a template may use, for help texts.
    fn names(allowed: &[Variable]) -> String {
        allowed
            .iter()
            .map(|v| format!("{{{}}}", v.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The variable named `inner` (at `range` of the template), when it is
    /// one of `allowed`; else what is wrong and the nearest name.
    fn allowed(
        inner: &str,
        range: Range<usize>,
        allowed: &[Variable],
    ) -> Result<Variable, TemplateError> {
        match Variable::from_name(inner) {
            Some(variable) if allowed.contains(&variable) => Ok(variable),
            Some(variable) => Err(TemplateError {
                message: format!("`{{{}}}` cannot be used here", variable.name()),
                range,
                help: format!("this template can use {}", Variable::names(allowed)),
            }),
            None => {
                let names: Vec<&str> = allowed.iter().map(|v| v.name()).collect();
                let help = match crate::config::nearest(inner, names.iter().copied()) {
                    Some(near) => {
                        format!(
                            "did you mean `{{{near}}}`? Known: {}",
                            Variable::names(allowed)
                        )
                    }
                    None => format!("known variables: {}", Variable::names(allowed)),
                };
                Err(TemplateError {
                    message: format!("unknown template variable `{inner}`"),
                    range,
                    help,
                })
            }
        }
    }
}

/// The values a template is rendered with.
#[derive(Clone, Copy, Debug)]
pub struct Values<'a> {
    /// The source tag, when rendering a tag.
    pub tag: &'a str,
    /// Its version, when it is one.
    pub version: Option<&'a Version>,
    /// The source repository path.
    pub path: &'a str,
}

impl Template {
    /// Parses `text`, accepting only `allowed` variables.
    pub fn parse(text: &str, allowed: &[Variable]) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0;
        let allowed_names = || Variable::names(allowed);
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(TemplateError {
                    message: "unmatched `}`".to_string(),
                    range: offset + open..offset + open + 1,
                    help: format!("variables are written in braces: {}", allowed_names()),
                });
            }
            literal.push_str(&rest[..open]);
            let go_style = rest[open..].starts_with("{{");
            let (inner_start, closer) = if go_style {
                (open + 2, "}}")
            } else {
                (open + 1, "}")
            };
            let Some(close) = rest[inner_start..].find(closer).map(|c| c + inner_start) else {
                return Err(TemplateError {
                    message: "unclosed `{`".to_string(),
                    range: offset + open..offset + rest.len(),
                    help: format!("close it: {}", allowed_names()),
                });
            };
            let inner = rest[inner_start..close].trim();
            let inner = if go_style {
                inner.trim_start_matches('.')
            } else {
                inner
            };
            let range = offset + open..offset + close + closer.len();
            let variable = Variable::allowed(inner, range, allowed)?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Variable(variable));
            offset += close + closer.len();
            rest = &text[offset..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template {
            text: text.to_string(),
            pieces,
        })
    }

    /// Whether rendering needs the tag to be a semantic version.
    pub fn needs_version(&self) -> bool {
        self.variables().any(Variable::needs_version)
    }

    /// Whether the template has no variables at all (`latest`).
    pub fn is_constant(&self) -> bool {
        self.variables().next().is_none()
    }

    /// Whether the template is exactly `{tag}`.
    pub fn is_source_tag(&self) -> bool {
        self.pieces == [Piece::Variable(Variable::Tag)]
    }

    /// The source tag a tag template wrote `tag` from, for a template of
    /// text and one `{tag}` (`{tag}`, `{tag}-prod`); `None` when `tag` is
    /// not of its shape or the template cannot be read backwards.
    pub fn source_tag_of(&self, tag: &str) -> Option<String> {
        let mut before = String::new();
        let mut after = String::new();
        let mut seen_tag = false;
        for piece in &self.pieces {
            match (piece, seen_tag) {
                (Piece::Variable(Variable::Tag), false) => seen_tag = true,
                (Piece::Text(text), false) => before.push_str(text),
                (Piece::Text(text), true) => after.push_str(text),
                _ => return None,
            }
        }
        let inner = tag.strip_prefix(&before)?.strip_suffix(&after)?;
        (seen_tag && !inner.is_empty()).then(|| inner.to_string())
    }

    /// Whether the template can be read backwards by [`Self::source_tag_of`].
    pub fn is_reversible(&self) -> bool {
        let tags = self.variables().filter(|v| *v == Variable::Tag).count();
        tags == 1 && self.variables().all(|v| v == Variable::Tag)
    }

    /// Whether the template could have written `tag`: its text where it
    /// has text, digits for `{major}`, `{minor}` and `{patch}`, anything
    /// for the other variables.
    pub fn could_write(&self, tag: &str) -> bool {
        fn rest_matches(pieces: &[Piece], tag: &str) -> bool {
            let Some((first, rest)) = pieces.split_first() else {
                return tag.is_empty();
            };
            match first {
                Piece::Text(text) => tag
                    .strip_prefix(text.as_str())
                    .is_some_and(|tail| rest_matches(rest, tail)),
                Piece::Variable(Variable::Major | Variable::Minor | Variable::Patch) => {
                    let digits = tag.bytes().take_while(u8::is_ascii_digit).count();
                    (1..=digits).any(|n| rest_matches(rest, &tag[n..]))
                }
                Piece::Variable(_) => (0..=tag.len())
                    .filter(|&n| tag.is_char_boundary(n))
                    .any(|n| rest_matches(rest, &tag[n..])),
            }
        }
        rest_matches(&self.pieces, tag)
    }

    fn variables(&self) -> impl Iterator<Item = Variable> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Variable(v) => Some(*v),
            Piece::Text(_) => None,
        })
    }

    /// Renders the template; `None` when it needs a version and there is none.
    pub fn render(&self, values: &Values<'_>) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Variable(variable) => {
                    let version = if variable.needs_version() {
                        Some(values.version?)
                    } else {
                        None
                    };
                    match (variable, version) {
                        (Variable::Tag, _) => out.push_str(values.tag),
                        (Variable::Path, _) => out.push_str(values.path),
                        (Variable::Name, _) => {
                            out.push_str(values.path.rsplit('/').next().unwrap_or(values.path))
                        }
                        (Variable::Namespace, _) => {
                            out.push_str(values.path.rsplit_once('/').map_or("", |(ns, _)| ns))
                        }
                        (Variable::Major, Some(v)) => out.push_str(&v.major.to_string()),
                        (Variable::Minor, Some(v)) => out.push_str(&v.minor.to_string()),
                        (Variable::Patch, Some(v)) => out.push_str(&v.patch.to_string()),
                        (Variable::Prerelease, Some(v)) => out.push_str(v.pre.as_str()),
                        (Variable::Build, Some(v)) => out.push_str(v.build.as_str()),
                        (_, None) => return None,
                    }
                }
            }
        }
        Some(out)
    }

    /// Renders a repository path: empty segments (from an empty `{namespace}`)
    /// are dropped, so `stable/{namespace}/{name}` of `web` is `stable/web`.
    pub fn render_repository(&self, path: &str) -> String {
        let rendered = self
            .render(&Values {
                tag: "",
                version: None,
                path,
            })
            .unwrap_or_default();
        rendered
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(tag: &'a str, version: Option<&'a Version>, path: &'a str) -> Values<'a> {
        Values { tag, version, path }
    }

    /// A tag template with one `{tag}` reads back; a floating template
    /// recognises the tags it could write, and only those.
    #[test]
    fn templates_read_backwards_for_pruning() {
        let parse = |t: &str| Template::parse(t, &Variable::ALL).unwrap();
        let prod = parse("{tag}-prod");
        assert!(prod.is_reversible());
        assert_eq!(prod.source_tag_of("1.2.0-prod").as_deref(), Some("1.2.0"));
        assert_eq!(prod.source_tag_of("1.2.0"), None);
        assert_eq!(prod.source_tag_of("-prod"), None);
        assert_eq!(parse("{tag}").source_tag_of("x").as_deref(), Some("x"));
        assert!(!parse("v{major}.{minor}").is_reversible());
        assert!(!parse("{tag}-{tag}").is_reversible());
        let minor = parse("{major}.{minor}");
        assert!(minor.could_write("1.4") && minor.could_write("10.22"));
        assert!(
            !minor.could_write("1.4.2") && !minor.could_write("1.x") && !minor.could_write("1")
        );
        assert!(parse("latest").could_write("latest") && !parse("latest").could_write("latest2"));
        assert!(parse("{major}-{prerelease}").could_write("2-rc.1"));
    }

    #[test]
    fn renders_version_parts() {
        let v = Version::parse("1.4.2-rc.1+build.7").unwrap();
        let t = Template::parse(
            "{major}.{minor}.{patch}-{prerelease}+{build}",
            &Variable::ALL,
        )
        .unwrap();
        assert_eq!(
            t.render(&values("v1.4.2-rc.1+build.7", Some(&v), "a"))
                .unwrap(),
            "1.4.2-rc.1+build.7"
        );
        assert!(t.needs_version());
        assert_eq!(t.render(&values("main", None, "a")), None);
    }

    #[test]
    fn accepts_go_template_spellings() {
        let v = Version::parse("0.1.0-base2.4.6").unwrap();
        let t = Template::parse("{{ .Major }}.{{.Minor}}", &Variable::ALL).unwrap();
        assert_eq!(
            t.render(&values("0.1.0-base2.4.6", Some(&v), "a")).unwrap(),
            "0.1"
        );
    }

    #[test]
    fn repository_parts() {
        let t = Template::parse(
            "stable/{namespace}/{name}",
            &[Variable::Path, Variable::Name, Variable::Namespace],
        )
        .unwrap();
        assert_eq!(
            t.render_repository("staging/team/web"),
            "stable/staging/team/web"
        );
        assert_eq!(t.render_repository("web"), "stable/web");
        let t = Template::parse("mirror/{path}", &Variable::ALL).unwrap();
        assert_eq!(t.render_repository("apps/web"), "mirror/apps/web");
    }

    #[test]
    fn unknown_and_forbidden_variables_point_at_themselves() {
        let err = Template::parse("{major}.{minr}", &Variable::ALL).unwrap_err();
        assert_eq!(err.message, "unknown template variable `minr`");
        assert_eq!(err.range, 8..14);
        assert!(
            err.help.starts_with("did you mean `{minor}`?"),
            "{}",
            err.help
        );
        let err = Template::parse("x/{tag}", &[Variable::Path, Variable::Name]).unwrap_err();
        assert_eq!(err.message, "`{tag}` cannot be used here");
        assert_eq!(err.range, 2..7);
        assert_eq!(
            Template::parse("{major", &Variable::ALL)
                .unwrap_err()
                .message,
            "unclosed `{`"
        );
        assert_eq!(
            Template::parse("a}", &Variable::ALL).unwrap_err().message,
            "unmatched `}`"
        );
    }

    #[test]
    fn constants_and_source_tag() {
        assert!(
            Template::parse("latest", &Variable::ALL)
                .unwrap()
                .is_constant()
        );
        assert!(
            Template::parse("{tag}", &Variable::ALL)
                .unwrap()
                .is_source_tag()
        );
        assert!(
            !Template::parse("{tag}-prod", &Variable::ALL)
                .unwrap()
                .is_source_tag()
        );
    }
}
