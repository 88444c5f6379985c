//! Two rules (or one rule twice) that want one target tag at different
//! digests, and the diagnostic that points at both.

use std::collections::BTreeSet;

use crate::config::{FieldPath, Part, Problem};
use crate::digest::Digest;
use crate::discover::{Candidate, TagKey};

/// Rules that want one target tag at different digests: nothing is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// `registry/repository:tag`.
    pub target: String,
    /// What each rule wants there.
    pub claims: Vec<Claim>,
    /// Whether a floating tag collides with a tag of the same name.
    pub floating_clash: bool,
}

/// One rule's wish in a conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Position of the rule in the file, where the diagnostic points.
    pub rule_index: usize,
    /// The rule's name.
    pub rule: String,
    /// The source, `registry/repository:tag`.
    pub source: String,
    /// The digest the rule would write.
    pub digest: Digest,
}

impl Conflict {
    /// The conflict among the claims on one target tag, if they want
    /// different digests.
    pub(super) fn among(key: &TagKey, claims: &[Candidate]) -> Option<Conflict> {
        let digests: BTreeSet<&Digest> = claims.iter().map(|c| &c.digest).collect();
        if digests.len() <= 1 {
            return None;
        }
        Some(Conflict {
            target: key.to_string(),
            claims: claims
                .iter()
                .map(|c| Claim {
                    rule_index: c.rule_index,
                    rule: c.rule.clone(),
                    source: c.source.to_string(),
                    digest: c.digest.clone(),
                })
                .collect(),
            floating_clash: claims.iter().any(|c| c.role.is_floating())
                && claims.iter().any(|c| !c.role.is_floating()),
        })
    }

    /// The diagnostic: every rule involved is labelled at its name.
    pub fn problem(&self) -> Problem {
        let rules: BTreeSet<&str> = self.claims.iter().map(|c| c.rule.as_str()).collect();
        let who = if rules.len() == 1 {
            format!("rule `{}` writes", self.claims[0].rule)
        } else {
            format!(
                "rules {} write",
                rules
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        let mut problem: Option<Problem> = None;
        let mut labelled = BTreeSet::new();
        for claim in &self.claims {
            let text = format!("wants {} ({})", claim.source, claim.digest.short());
            let path = FieldPath::promotion(claim.rule_index).key("name");
            if !labelled.insert((claim.rule_index, &claim.digest)) {
                continue;
            }
            problem = Some(match problem {
                None => Problem::at(
                    path,
                    format!("conflict: {who} {} with different digests", self.target),
                )
                .label(text),
                Some(p) => p.also(path, Part::Value, text),
            });
        }
        let help = if self.floating_clash {
            "a floating tag has the name of a source tag: exclude that tag from `tags` (e.g. \"!latest\") or drop it from `floating`"
        } else {
            "narrow `repositories` or `tags` so only one rule writes this tag, or give one rule another `target` or `tag` template"
        };
        problem
            .unwrap_or_else(|| Problem::at(FieldPath::root("promotion"), "conflict"))
            .help(help)
    }
}
