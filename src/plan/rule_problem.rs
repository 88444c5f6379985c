//! Rules matching repositories by glob that found nothing to match: a
//! registry that does not list its repositories (Docker Hub, GHCR), a
//! catalog that listed none (Artifact Registry), or globs that match no
//! repository of a catalog. Each is said, naming the rule and the registry:
//! never a silent empty plan.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::discover::{CatalogListing, Inventory, matched_repositories};
use crate::keys::RepositoryKey;
use crate::registry::CatalogRefusal;
use crate::report::count;
use crate::rules::{Rule, RuleSet};

/// How much a rule problem matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Said, and the exit status stays: rules may name repositories that
    /// do not exist yet.
    Warning,
    /// The rule could not be planned: the run exits 1; other rules are
    /// planned and applied all the same.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Why a rule matching by glob has no repository to promote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleProblemKind {
    /// The source registry does not list its repositories (no catalog, or
    /// none to these credentials): an error.
    NoCatalog,
    /// Its catalog listed no repository at all, which is almost surely a
    /// registry that does not really list them: an error, and the rule
    /// matches nothing (not even names other rules spell out).
    EmptyCatalog,
    /// Its catalog lists repositories, none of which the globs match: a warning.
    NoMatch,
    /// A repository it matches has no tag list (the registry does not
    /// serve one), and the rule selects tags by glob: only the tags it
    /// names or pins could be looked up. An error.
    NoTagList,
}

impl RuleProblemKind {
    /// How much it matters.
    pub fn severity(self) -> Severity {
        match self {
            RuleProblemKind::NoCatalog
            | RuleProblemKind::EmptyCatalog
            | RuleProblemKind::NoTagList => Severity::Error,
            RuleProblemKind::NoMatch => Severity::Warning,
        }
    }
}

/// A rule that matched no repository, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuleProblem {
    /// The rule.
    pub rule: String,
    /// Its source registry.
    pub registry: String,
    /// What happened.
    pub kind: RuleProblemKind,
    /// `error` (exit 1) or `warning`.
    pub severity: Severity,
    /// The whole message, rule and registry named.
    pub message: String,
}

impl RuleProblem {
    /// Whether the rule could not be planned.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)
    }
}

/// The problem of each rule matching by glob that matched nothing, in the
/// order of the file.
pub fn rule_problems(rules: &RuleSet, inventory: &Inventory) -> Vec<RuleProblem> {
    let mut problems: Vec<RuleProblem> = rules
        .rules
        .iter()
        .filter(|rule| rule.repositories.needs_listing())
        .filter_map(|rule| problem_of(rule, inventory))
        .collect();
    for rule in rules
        .rules
        .iter()
        .filter(|rule| rule.selection.tags.needs_listing())
    {
        for repository in matched_repositories(rule, inventory) {
            let key = RepositoryKey::new(&rule.from, repository);
            if let Some(said) = inventory.unlisted.get(&key) {
                problems.push(RuleProblem {
                    rule: rule.name.clone(),
                    registry: rule.from.clone(),
                    kind: RuleProblemKind::NoTagList,
                    severity: Severity::Error,
                    message: format!(
                        "rule `{}`: {said}, so tags {:?} cannot be matched in `{repository}` of registry `{}`: only the tags the rule names or pins were looked up; name them in `tags`, e.g. [\"1.2.3\"], or `pin` them",
                        rule.name,
                        rule.selection.tags.written(),
                        rule.from
                    ),
                });
            }
        }
    }
    problems
}

/// What is wrong with one rule matching by glob, if anything.
fn problem_of(rule: &Rule, inventory: &Inventory) -> Option<RuleProblem> {
    let (kind, detail) = match inventory.catalogs.get(&rule.from)? {
        CatalogListing::Refused(refusal) => (RuleProblemKind::NoCatalog, unlisted(rule, refusal)),
        CatalogListing::Listed(0) => (RuleProblemKind::EmptyCatalog, listed_none(rule)),
        CatalogListing::Listed(_) if !matched_repositories(rule, inventory).is_empty() => {
            return None;
        }
        CatalogListing::Listed(listed) => (
            RuleProblemKind::NoMatch,
            format!(
                "no repository of registry `{}` matches {:?} (its catalog lists {})",
                rule.from,
                rule.repositories.written(),
                count(*listed, "repository", "repositories")
            ),
        ),
    };
    Some(RuleProblem {
        rule: rule.name.clone(),
        registry: rule.from.clone(),
        kind,
        severity: kind.severity(),
        message: format!("rule `{}`: {detail}", rule.name),
    })
}

/// A registry that does not list its repositories, with what it answered.
fn unlisted(rule: &Rule, refusal: &CatalogRefusal) -> String {
    let who = if refusal.is_about_credentials() {
        ": it may list none, or none to the credentials sent, or want a login where none is configured"
    } else {
        ""
    };
    format!(
        "registry `{}` does not list its repositories ({refusal}{who}): name them in `repositories`, e.g. {}",
        rule.from,
        example(rule)
    )
}

/// A catalog that listed nothing at all.
fn listed_none(rule: &Rule) -> String {
    format!(
        "registry `{}` listed no repository at all (GET /v2/_catalog answered an empty list), so {:?} matches nothing; a registry that lists none may not list its repositories: name them in `repositories`, e.g. {}",
        rule.from,
        rule.repositories.written(),
        example(rule)
    )
}

/// `["team/NAME"]`: the rule's first glob with each wildcard segment
/// replaced by `NAME`, for the advice to spell repositories out.
fn example(rule: &Rule) -> String {
    let glob = rule
        .repositories
        .written()
        .iter()
        .find(|p| !p.starts_with('!'))
        .map_or("NAME", String::as_str);
    let name: Vec<&str> = glob
        .split('/')
        .map(|segment| {
            if segment.contains(['*', '?', '[', ']', '{', '}', '\\']) {
                "NAME"
            } else {
                segment
            }
        })
        .collect();
    let mut name = name.join("/");
    while name.contains("NAME/NAME") {
        name = name.replace("NAME/NAME", "NAME");
    }
    format!("[\"{name}\"]")
}

#[cfg(test)]
#[path = "rule_problem_tests.rs"]
mod tests;
