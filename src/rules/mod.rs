//! Compiled promotion rules: repository globs, tag selection, templates and
//! floating tags, validated once so discovery and planning never meet a bad
//! pattern.

mod fields;
mod gate;
mod pattern;
mod template;
mod version;

use std::collections::{BTreeMap, HashMap};

use semver::Version;

pub use pattern::PatternSet;
pub use template::{Template, TemplateError, Values, Variable};
pub use version::{Requirement, lenient_version, tag_version};

use self::fields::Fields;
use crate::config::{
    Config, FieldPath, Mode, Overwrite, Part, Problem, Promotion, did_you_mean, is_broken,
};
use crate::digest::Digest;
use crate::platform::Platform;

/// Variables a `target` repository template may use.
const REPOSITORY_VARIABLES: [Variable; 3] = [Variable::Path, Variable::Name, Variable::Namespace];
/// Variables a floating tag may use: everything but the source tag itself.
const FLOATING_VARIABLES: [Variable; 8] = [
    Variable::Major,
    Variable::Minor,
    Variable::Patch,
    Variable::Prerelease,
    Variable::Build,
    Variable::Path,
    Variable::Name,
    Variable::Namespace,
];

/// One `[[promotion]]`, compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Position in the file, for diagnostics.
    pub index: usize,
    /// Unique name.
    pub name: String,
    /// Source registry name.
    pub from: String,
    /// Target registry names.
    pub to: Vec<String>,
    /// Source repositories.
    pub repositories: PatternSet,
    /// Target repository template.
    pub target: Template,
    /// Tag globs.
    pub tags: PatternSet,
    /// Version requirement.
    pub semver: Option<Requirement>,
    /// Select prereleases too.
    pub prerelease: bool,
    /// Keep the N highest versions.
    pub latest: Option<usize>,
    /// Tags promoted only at these digests.
    pub pins: BTreeMap<String, Digest>,
    /// Target tag template.
    pub tag: Template,
    /// Floating tag templates.
    pub floating: Vec<Template>,
    /// Also write the source tag when `tag` renames it.
    pub keep_source_tag: bool,
    /// May an existing target tag change digest?
    pub overwrite: Overwrite,
    /// Platforms kept from an index (empty: all).
    pub platforms: Vec<Platform>,
    /// Copy referrers.
    pub referrers: bool,
    /// Copy or move.
    pub mode: Mode,
    /// What an image must carry to be promoted (`require_signature`).
    pub gate: Option<std::sync::Arc<crate::gate::Gate>>,
    /// The target tags a command line names for its source tag (`hoist
    /// promote`): each written as given, in place of `tag`,
    /// `keep_source_tag` and `floating`. Empty for a rule of the file.
    pub named_tags: Vec<NamedTag>,
    /// Where the rule was written, for messages that name its settings.
    pub origin: Origin,
}

/// A target tag a command line names outright.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedTag {
    /// The tag.
    pub tag: String,
    /// The series it floats over (its template, or the tag itself for an
    /// extra tag), when it is written after the version tags as floating
    /// tags are; `None`: a version tag.
    pub floats: Option<String>,
}

/// Where a rule was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// A `[[promotion]]` of the configuration file.
    #[default]
    File,
    /// The command line of `hoist promote` or `hoist docker-promote`.
    CommandLine,
}

impl Origin {
    /// The name of the signature gate's setting where the rule was written.
    pub fn gate_setting(self) -> &'static str {
        match self {
            Origin::File => "require_signature",
            Origin::CommandLine => "--require-signature",
        }
    }
}

/// A source tag a rule selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedTag {
    /// The tag.
    pub tag: String,
    /// Its version, when it names one.
    pub version: Option<Version>,
    /// Selected only because it is pinned (the filters would leave it out):
    /// it is promoted, but takes no floating tag.
    pub pinned_only: bool,
}

/// The compiled rules of a file, in file order.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    /// The rules.
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Compiles every readable rule; every problem found is returned, each
    /// pointing at its field.
    pub fn compile(config: &Config) -> (RuleSet, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let registries: Vec<&str> = config.registries.keys().map(String::as_str).collect();
        for (index, promotion) in config.promotions.iter().enumerate() {
            if is_broken(promotion) {
                continue;
            }
            let path = FieldPath::promotion(index);
            let first = *names.entry(&promotion.name).or_insert(index);
            if first != index {
                problems.push(
                    Problem::at(
                        path.key("name"),
                        format!("duplicate rule name `{}`", promotion.name),
                    )
                    .label("second use")
                    .also(
                        FieldPath::promotion(first).key("name"),
                        Part::Value,
                        "first use",
                    )
                    .help("rule names appear in plans and reports; give each rule its own"),
                );
            }
            match compile_rule(index, promotion, &registries) {
                Ok(rule) => rules.push(rule),
                Err(mut found) => problems.append(&mut found),
            }
        }
        (RuleSet { rules }, problems)
    }

    /// Only the rules named (all when `names` is empty); an unknown name is an error.
    pub fn only(self, names: &[String]) -> Result<RuleSet, UnknownRule> {
        if names.is_empty() {
            return Ok(self);
        }
        let known: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(UnknownRule {
                name: unknown.clone(),
                hint: did_you_mean(unknown, &known, "rules"),
            });
        }
        Ok(RuleSet {
            rules: self
                .rules
                .into_iter()
                .filter(|r| names.contains(&r.name))
                .collect(),
        })
    }

    /// The rule at position `index` of the file.
    pub fn at(&self, index: usize) -> Option<&Rule> {
        self.rules.iter().find(|r| r.index == index)
    }

    /// The rule named `name`.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

/// `--rule NAME` names no rule of the configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no rule named `{name}`: {hint}")]
pub struct UnknownRule {
    /// The name given.
    pub name: String,
    /// The nearest rule names, or the list of them.
    pub hint: String,
}

fn compile_rule(index: usize, p: &Promotion, registries: &[&str]) -> Result<Rule, Vec<Problem>> {
    let mut fields = Fields::new(FieldPath::promotion(index), registries);
    fields.name(&p.name);
    fields.registry(&p.from, fields.path.key("from"));
    let to = fields.targets(&p.to);
    let repositories = fields.patterns(
        &p.repositories,
        "repositories",
        "list globs over the source catalog, e.g. [\"apps/**\"]",
    );
    let tags = fields.patterns(
        &p.tags,
        "tags",
        "remove it to select every tag, or list globs such as [\"v*\"]",
    );
    let target = fields.template(
        p.target.as_deref().unwrap_or("{path}"),
        fields.path.key("target"),
        &REPOSITORY_VARIABLES,
    );
    let tag = fields.template(
        p.tag.as_deref().unwrap_or("{tag}"),
        fields.path.key("tag"),
        &Variable::ALL,
    );
    let floating = fields.floating(&p.floating, &FLOATING_VARIABLES);
    let semver = fields.semver(p.semver.as_deref());
    fields.latest(p.latest);
    let pins = fields.pins(&p.pin);
    let platforms = fields.platforms(&p.platforms);
    let gate = p.require_signature.as_ref().and_then(|gate| {
        let at = fields.path.key("require_signature");
        gate::compile_gate(gate, &at, &mut fields.problems)
    });
    let (Some(repositories), Some(tags), Some(target), Some(tag), true) =
        (repositories, tags, target, tag, fields.problems.is_empty())
    else {
        return Err(fields.problems);
    };
    if let Some(problem) = move_onto_itself(p, &target, &tag, &fields.path) {
        return Err(vec![problem]);
    }
    Ok(Rule {
        index,
        name: p.name.clone(),
        from: p.from.clone(),
        to,
        repositories,
        target,
        tags,
        semver,
        prerelease: p.prerelease,
        latest: p.latest,
        pins,
        tag,
        floating,
        keep_source_tag: p.keep_source_tag,
        overwrite: p.overwrite,
        platforms,
        referrers: p.referrers,
        mode: p.mode,
        gate,
        named_tags: Vec::new(),
        origin: Origin::File,
    })
}

/// A move rule whose target is its own source (one of `to` is `from`, the
/// repository and the tag unchanged) would delete each tag it promotes.
fn move_onto_itself(
    p: &Promotion,
    target: &Template,
    tag: &Template,
    path: &FieldPath,
) -> Option<Problem> {
    let same_repository = ["team/app", "app", "a/b/c"]
        .iter()
        .all(|probe| target.render_repository(probe) == *probe);
    let same_tag = tag.is_source_tag() || p.keep_source_tag;
    let onto_source = p.to.as_slice().contains(&p.from);
    (p.mode == crate::config::Mode::Move && onto_source && same_repository && same_tag).then(|| {
        Problem::at(
            path.key("mode"),
            format!(
                "rule `{}` moves tags onto themselves: `{}` is in both `from` and `to`, with the same repositories and tags, so each move would delete the tag it promotes",
                p.name, p.from
            ),
        )
        .label("a move onto its own source")
        .help("promote to another registry, give a `target` or a `tag` that differs from the source, or use mode = \"copy\"")
    })
}

impl Rule {
    /// The tags of one source repository this rule promotes: pinned tags, then
    /// those the globs, the version filters and `latest` keep.
    pub fn select_tags(&self, tags: &[String]) -> Vec<SelectedTag> {
        let ranks_versions = self.semver.is_some() || self.latest.is_some();
        let mut pinned_list = Vec::new();
        let mut versions = Vec::new();
        let mut others = Vec::new();
        // Signature, attestation and SBOM tags follow their subject
        // (`referrers`), never a rule's tag selection.
        for tag in tags.iter().filter(|tag| !is_attached_tag(tag)) {
            let version = tag_version(tag);
            let pinned = self.pins.contains_key(tag);
            let selected = |pinned_only| SelectedTag {
                tag: tag.clone(),
                version: version.clone(),
                pinned_only,
            };
            let passes = self.tags.matches(tag)
                && match &version {
                    Some(v) => {
                        (v.pre.is_empty() || self.prerelease)
                            && self
                                .semver
                                .as_ref()
                                .is_none_or(|req| req.matches(v, self.prerelease))
                    }
                    None => !ranks_versions,
                };
            match (passes, &version) {
                (true, Some(_)) => versions.push(selected(false)),
                (true, None) => others.push(selected(false)),
                (false, _) if pinned => pinned_list.push(selected(true)),
                (false, _) => {}
            }
        }
        if let Some(n) = self.latest {
            versions.sort_by(|a, b| b.version.cmp(&a.version).then_with(|| a.tag.cmp(&b.tag)));
            // `v1.2.0` and `1.2.0` are one version: both stay when it is kept.
            let mut kept = 0;
            let mut last: Option<Version> = None;
            versions.retain(|s| {
                if last.as_ref() != s.version.as_ref() {
                    kept += 1;
                    last = s.version.clone();
                }
                kept <= n || self.pins.contains_key(&s.tag)
            });
        }
        let mut selected = pinned_list;
        selected.append(&mut versions);
        selected.append(&mut others);
        selected.sort_by(|a, b| a.tag.cmp(&b.tag));
        selected
    }

    /// The tags the globs match that the rule's other settings leave out
    /// (`selected` being what [`Rule::select_tags`] kept), each with why:
    /// nothing a rule's globs match is skipped silently.
    pub fn left_out(&self, tags: &[String], selected: &[SelectedTag]) -> Vec<(String, String)> {
        let ranks_versions = self.semver.is_some() || self.latest.is_some();
        let kept: std::collections::BTreeSet<&str> =
            selected.iter().map(|s| s.tag.as_str()).collect();
        tags.iter()
            .filter(|tag| !is_attached_tag(tag) && self.tags.matches(tag))
            .filter(|tag| !kept.contains(tag.as_str()))
            .map(|tag| {
                let reason = match (tag_version(tag), &self.semver) {
                    (Some(v), _) if !v.pre.is_empty() && !self.prerelease => {
                        "a prerelease, and the rule has prerelease = false".to_string()
                    }
                    (Some(v), Some(req)) if !req.matches(&v, self.prerelease) => {
                        format!("outside semver = \"{req}\"")
                    }
                    (None, _) if ranks_versions => {
                        "not a version, and the rule selects versions (`semver` or `latest`)"
                            .to_string()
                    }
                    _ => match self.latest {
                        Some(n) => {
                            format!("older than the {n} highest versions `latest = {n}` keeps")
                        }
                        None => "left out by the rule".to_string(),
                    },
                };
                (tag.clone(), reason)
            })
            .collect()
    }

    /// The tags a selected source tag is written as, floating tags aside:
    /// the names a command line gave, or the `tag` template's (none when it
    /// cannot render) and the source tag with `keep_source_tag`.
    pub fn written_as(&self, selected: &SelectedTag, repository: &str) -> Vec<String> {
        if !self.named_tags.is_empty() {
            return self.named_tags.iter().map(|n| n.tag.clone()).collect();
        }
        let Some(rendered) = self.tag.render(&Values {
            tag: &selected.tag,
            version: selected.version.as_ref(),
            path: repository,
        }) else {
            return Vec::new();
        };
        let kept = self.keep_source_tag && selected.tag != rendered;
        let mut written = vec![rendered];
        if kept {
            written.push(selected.tag.clone());
        }
        written
    }

    /// The target repository for a source repository.
    pub fn target_repository(&self, source: &str) -> String {
        self.target.render_repository(source)
    }
}

/// Whether `tag` is one by which artifacts are attached to an image: cosign's
/// `sha256-<hex>.sig`, `.att`, `.sbom`, or the OCI referrers fallback tag
/// `sha256-<hex>` (any algorithm, its hex digits lowercase; the spec cuts
/// a fallback tag's hex to 64 digits, so a sha512 one has 64).
pub fn is_attached_tag(tag: &str) -> bool {
    let suffixed = [".sig", ".att", ".sbom"]
        .iter()
        .find_map(|suffix| tag.strip_suffix(suffix));
    let Some((algorithm, hex)) = suffixed.unwrap_or(tag).split_once('-') else {
        return false;
    };
    let length_fits = match algorithm {
        "sha256" => hex.len() == 64,
        "sha512" => hex.len() == 128 || (suffixed.is_none() && hex.len() == 64),
        _ => false,
    };
    length_fits && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
