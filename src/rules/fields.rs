//! Each setting of one `[[promotion]]` checked into its compiled form. A
//! setting that is wrong adds a problem pointing at its field and compiles
//! to nothing, so every problem of a rule is found in one pass.

use std::collections::BTreeMap;

use super::{PatternSet, Requirement, Template, Variable};
use crate::config::{FieldPath, OneOrMany, Part, Problem, did_you_mean};
use crate::digest::Digest;
use crate::platform::Platform;

/// The fields of one rule being compiled, and the problems found so far.
pub(super) struct Fields<'a> {
    /// Where the rule is in the file.
    pub path: FieldPath,
    /// What is wrong with it so far.
    pub problems: Vec<Problem>,
    /// The registries the file names.
    registries: &'a [&'a str],
}

impl<'a> Fields<'a> {
    pub(super) fn new(path: FieldPath, registries: &'a [&'a str]) -> Fields<'a> {
        Fields {
            path,
            problems: Vec::new(),
            registries,
        }
    }

    /// `name`: a non-empty word.
    pub(super) fn name(&mut self, name: &str) {
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            self.problems.push(
                Problem::at(
                    self.path.key("name"),
                    "a rule name must be a non-empty word",
                )
                .help("use letters, digits, `-` and `_`, e.g. `apps-nightly`"),
            );
        }
    }

    /// A registry name at `at`: one of `[registries]`.
    pub(super) fn registry(&mut self, name: &str, at: FieldPath) {
        if !self.registries.contains(&name) {
            self.problems.push(
                Problem::at(at, format!("no registry named `{name}`"))
                    .label("not a [registries.NAME]")
                    .help(did_you_mean(name, self.registries, "registries")),
            );
        }
    }

    /// `to`: one registry or several, none unknown.
    pub(super) fn targets(&mut self, to: &OneOrMany<String>) -> Vec<String> {
        let names = to.as_slice().to_vec();
        if names.is_empty() {
            self.problems
                .push(Problem::at(self.path.key("to"), "`to` names no registry"));
        }
        for (i, name) in names.iter().enumerate() {
            let at = match to {
                OneOrMany::One(_) => self.path.key("to"),
                OneOrMany::Many(_) => self.path.key("to").index(i),
            };
            self.registry(name, at);
        }
        names
    }

    /// A list of globs (`repositories`, `tags`), not empty.
    pub(super) fn patterns(
        &mut self,
        globs: &[String],
        field: &str,
        help: &str,
    ) -> Option<PatternSet> {
        let at = self.path.key(field);
        if globs.is_empty() {
            self.problems
                .push(Problem::at(at.clone(), format!("`{field}` is empty")).help(help));
        }
        PatternSet::compile(globs, &at)
            .map_err(|mut found| self.problems.append(&mut found))
            .ok()
    }

    /// A template at `at` that may use the `allowed` variables.
    pub(super) fn template(
        &mut self,
        text: &str,
        at: FieldPath,
        allowed: &[Variable],
    ) -> Option<Template> {
        Template::parse(text, allowed)
            .map_err(|e| {
                self.problems.push(
                    Problem::at(at, e.message)
                        .part(Part::Within(e.range))
                        .help(e.help),
                )
            })
            .ok()
    }

    /// `floating`: templates that follow a series of versions, or fixed names.
    pub(super) fn floating(&mut self, texts: &[String], allowed: &[Variable]) -> Vec<Template> {
        let mut floating = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let at = self.path.key("floating").index(i);
            let Some(t) = self.template(text, at.clone(), allowed) else {
                continue;
            };
            if !t.is_constant() && !t.needs_version() {
                self.problems.push(
                    Problem::at(at, format!("floating tag `{text}` names no version part"))
                        .help("a floating tag follows a series of versions: use {major}, {minor}, ... or a fixed name such as `latest`"),
                );
            } else {
                floating.push(t);
            }
        }
        floating
    }

    /// `semver`: a version requirement.
    pub(super) fn semver(&mut self, text: Option<&str>) -> Option<Requirement> {
        Requirement::parse(text?)
            .map_err(|e| {
                self.problems.push(
                    Problem::at(
                        self.path.key("semver"),
                        format!("bad semver requirement: {e}"),
                    )
                    .help(
                        "write comparators separated by commas, e.g. \">=1.0.0, <3\" or \"^1.4\"",
                    ),
                )
            })
            .ok()
    }

    /// `latest`: at least 1.
    pub(super) fn latest(&mut self, latest: Option<usize>) {
        if latest == Some(0) {
            self.problems.push(
                Problem::at(self.path.key("latest"), "`latest` must be at least 1")
                    .help("remove it to keep every selected version"),
            );
        }
    }

    /// `pin`: each tag at a manifest digest.
    pub(super) fn pins(&mut self, pins: &BTreeMap<String, String>) -> BTreeMap<String, Digest> {
        let mut parsed = BTreeMap::new();
        for (tag, digest) in pins {
            match digest.parse::<Digest>() {
                Ok(digest) => {
                    parsed.insert(tag.clone(), digest);
                }
                Err(_) => self.problems.push(
                    Problem::at(
                        self.path.key("pin").key(tag),
                        format!("the pin of `{tag}` is not a digest"),
                    )
                    .help("pin a tag to a manifest digest: \"sha256:<64 hex digits>\""),
                ),
            }
        }
        parsed
    }

    /// `platforms`: each `os/arch[/variant]`.
    pub(super) fn platforms(&mut self, texts: &[String]) -> Vec<Platform> {
        let mut platforms = Vec::new();
        for (i, platform) in texts.iter().enumerate() {
            match platform.parse::<Platform>() {
                Ok(platform) => platforms.push(platform),
                Err(_) => self.problems.push(
                    Problem::at(
                        self.path.key("platforms").index(i),
                        format!("`{platform}` is not a platform"),
                    )
                    .help(
                        "write os/arch or os/arch/variant, e.g. \"linux/amd64\" or \"linux/arm64/v8\"",
                    ),
                ),
            }
        }
        platforms
    }
}
