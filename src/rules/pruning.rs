//! `prune` and `max_prune` compiled: whether a rule deletes the target
//! tags it owns and its source no longer selects, how ownership is proven,
//! and the most one run may delete.

use crate::config::{FieldPath, MaxPrune, Problem, Promotion, Prune};

/// The most tags one run prunes for a rule when `max_prune` is not set.
/// A nightly promotion retires a few versions per rule; more than ten at
/// once is more often a source that lost its tags (a wrong namespace, a
/// registry restored from an old backup) than a cleanup anyone meant.
pub const DEFAULT_MAX_PRUNE: usize = 10;

/// A rule's pruning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pruning {
    /// Only tags whose image carries this rule's promotion record, signed
    /// by a key of the rule's `require_record`, are candidates.
    pub recorded: bool,
    /// The most candidates one run deletes.
    pub cap: Cap,
}

/// `max_prune`: a count, or a share of the rule's target tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// At most this many.
    Count(usize),
    /// At most this percentage (rounded down) of the rule's target tags.
    Percent(u8),
}

impl Cap {
    /// The most tags a rule with `owned` target tags may prune.
    pub fn limit(self, owned: usize) -> usize {
        match self {
            Cap::Count(n) => n,
            Cap::Percent(p) => owned * usize::from(p) / 100,
        }
    }
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cap::Count(n) => write!(f, "{n}"),
            Cap::Percent(p) => write!(f, "\"{p}%\""),
        }
    }
}

/// The rule's pruning, or `None` when it prunes nothing; problems for a
/// setting that cannot be honoured.
pub(super) fn compile_pruning(
    p: &Promotion,
    tag: &super::Template,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Pruning> {
    let recorded = match p.prune? {
        Prune::Flag(false) => return None,
        Prune::Flag(true) => false,
        Prune::Recorded(_) => true,
    };
    let before = problems.len();
    let at = path.key("prune");
    if p.mode == crate::config::Mode::Move {
        problems.push(
            Problem::at(at.clone(), "`prune` on a rule with mode = \"move\"").help(
                "a move deletes each source tag it promotes, so prune would then delete \
                 every tag the rule moved; remove one of them",
            ),
        );
    }
    if !tag.is_reversible() {
        problems.push(
            Problem::at(at.clone(), format!("`prune` needs a tag template that names its source tag, not `{tag}`"))
                .help("prune reads each target tag back to the source tag it came from: write `tag` with one {tag} (e.g. \"{tag}-prod\"), or leave it out"),
        );
    }
    if recorded && p.require_record.is_none() {
        problems.push(
            Problem::at(at.clone(), "prune = \"recorded\" needs `require_record`").help(
                "add require_record = { keys = [\"keys/promoter.pub\"] }: the public keys \
                 whose promotion records prove a tag is this rule's",
            ),
        );
    }
    let cap = match &p.max_prune {
        None => Cap::Count(DEFAULT_MAX_PRUNE),
        Some(MaxPrune::Count(n)) => Cap::Count(*n),
        Some(MaxPrune::Share(text)) => match percent(text) {
            Some(p) => Cap::Percent(p),
            None => {
                problems.push(
                    Problem::at(path.key("max_prune"), format!("`{text}` is not a share"))
                        .help("write a count (max_prune = 10) or a percentage from 0% to 100% (max_prune = \"20%\")"),
                );
                Cap::Count(0)
            }
        },
    };
    (problems.len() == before).then_some(Pruning { recorded, cap })
}

/// `"20%"` → 20; `None` unless a whole percentage from 0 to 100.
fn percent(text: &str) -> Option<u8> {
    let number: u8 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
    (number <= 100).then_some(number)
}
