//! Compiled promotion rules: repository globs, tag selection, templates and
//! floating tags, validated once so discovery and planning never meet a bad
//! pattern.

mod fields;
mod gate;
mod naming;
mod pattern;
mod pruning;
mod selection;
mod template;
mod travel;
mod version;

use std::collections::HashMap;

use semver::Version;

pub use naming::{NamedTag, Naming, VersionTags};

/// `require_attestation` entries compiled outside a file (`hoist promote`'s
/// flags), or every problem found.
pub fn compile_attestations(
    required: &[crate::config::RequireAttestation],
) -> Result<Vec<crate::gate::attestation::Requirement>, Vec<Problem>> {
    let mut problems = Vec::new();
    let compiled = gate::compile_attestations(
        required,
        &FieldPath::root("require_attestation"),
        &mut problems,
    );
    match problems.is_empty() {
        true => Ok(compiled),
        false => Err(problems),
    }
}
pub use pattern::PatternSet;
pub use pruning::{Cap, DEFAULT_MAX_PRUNE, Pruning};
pub use selection::Selection;
pub use template::{Template, TemplateError, Values, Variable};
pub use travel::{Transfer, Travel};
pub use version::{Requirement, lenient_version, tag_version};

use self::fields::Fields;
use crate::config::{
    Config, FieldPath, Overwrite, Part, Problem, Promotion, did_you_mean, is_broken,
};

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
    /// Which source tags it promotes.
    pub selection: Selection,
    /// What it names the target repositories and tags.
    pub naming: Naming,
    /// May an existing target tag change digest?
    pub overwrite: Overwrite,
    /// What travels with each image: platforms, referrers, copy or move.
    pub travel: Travel,
    /// What an image must carry to be promoted (`require_signature`).
    pub gate: Option<std::sync::Arc<crate::gate::Gate>>,
    /// The keys a target image's promotion record must verify against
    /// (`require_record`, checked by `hoist verify`).
    pub require_record: Option<std::sync::Arc<Vec<crate::gate::PublicKey>>>,
    /// Whether it deletes the target tags it owns and no longer selects.
    pub pruning: Option<Pruning>,
    /// Where the rule was written, for messages that name its settings.
    pub origin: Origin,
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
    /// The name of a gate's setting where the rule was written, to put
    /// before a refusal (`None`: the refusal names its requirement, as
    /// `require_attestation[0] (TYPE): …` does).
    pub fn gate_setting(self, setting: crate::gate::GateSetting) -> Option<&'static str> {
        use crate::gate::GateSetting::{RequireAttestation, RequireSignature};
        match (self, setting) {
            (Origin::File, RequireSignature) => Some("require_signature"),
            (Origin::CommandLine, RequireSignature) => Some("--require-signature"),
            (_, RequireAttestation) => None,
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
    let (gate, require_record) = gate::compile_gates(p, &fields.path, &mut fields.problems);
    let pruning = tag
        .as_ref()
        .and_then(|tag| pruning::compile_pruning(p, tag, &fields.path, &mut fields.problems));
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
        selection: Selection {
            tags,
            semver,
            prerelease: p.prerelease,
            latest: p.latest,
            pins,
        },
        naming: Naming {
            target,
            tag,
            floating,
            keep_source_tag: p.keep_source_tag,
            named_tags: Vec::new(),
        },
        overwrite: p.overwrite,
        travel: Travel {
            platforms,
            referrers: p.referrers,
            mode: p.mode.into(),
        },
        gate,
        require_record,
        pruning,
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
