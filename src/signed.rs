//! Gates checked over a plan's images after planning: again just before
//! `apply --plan` writes (a signature can be removed between review and
//! apply), and on the targets by `hoist verify` (a target whose signatures
//! were lost).

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::digest::Digest;
use crate::gate::{Gate, GateSetting, Verdict, check};
use crate::plan::{Action, GateVerdict, Plan, PlanEntry};
use crate::registry::{ReadOnly, StoreMap};
use crate::rules::RuleSet;

/// One image judged by one rule's gate.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Judged {
    /// The rule whose gate judges it.
    rule: String,
    /// The registry holding it, by name.
    registry: String,
    /// A repository holding it.
    repository: String,
    /// The image.
    digest: Digest,
}

/// Why an image does not pass its rule's gate (again).
#[derive(Debug, thiserror::Error)]
enum GateFailure {
    /// The plan names a registry that was not opened.
    #[error("registry `{0}` is not open")]
    NotOpen(String),
    /// The repository's tags, where signatures are found, could not be listed.
    #[error("its tags could not be listed: {0}")]
    Tags(std::sync::Arc<crate::registry::RegistryError>),
    /// The rule no longer has a gate.
    #[error("rule `{0}` has no require_signature in the configuration any more")]
    NoGate(String),
    /// The gate refused it, saying why.
    #[error("{0}")]
    Refused(String),
    /// An attestation requirement refused it, saying which and why.
    #[error("{0}")]
    AttestationRefused(String),
    /// Its signatures could not be read.
    #[error("its signatures could not be read: {0}")]
    Unreadable(crate::registry::RegistryError),
}

/// `apply --plan`: each image the reviewed plan says a gate verified is
/// checked again with the rule's gate as the configuration has it now. An
/// entry whose image no longer passes is blocked, with the reason.
pub fn recheck_reviewed(plan: &mut Plan, rules: &RuleSet, stores: &StoreMap) {
    let images: BTreeSet<Judged> = plan.entries.iter().filter_map(verified_source).collect();
    let verdicts = judge(images.into_iter().collect(), rules, stores);
    for entry in plan.entries.iter_mut() {
        let Some(key) = verified_source(entry) else {
            continue;
        };
        if let Some(Err(failure)) = verdicts.get(&key) {
            let reason = format!("checked again before writing, {failure}");
            let setting = match failure {
                GateFailure::AttestationRefused(_) => GateSetting::RequireAttestation,
                _ => GateSetting::RequireSignature,
            };
            entry.action = Action::blocked(match setting {
                GateSetting::RequireSignature => format!("require_signature: {reason}"),
                GateSetting::RequireAttestation => reason.clone(),
            });
            entry.gate = Some(GateVerdict::Refused {
                rule: key.rule,
                reason,
                setting,
            });
        }
    }
}

/// The source image of an entry that writes, as its gate judged it, when
/// the plan says the gate verified it.
fn verified_source(entry: &PlanEntry) -> Option<Judged> {
    let Some(GateVerdict::Verified { rule, .. }) = &entry.gate else {
        return None;
    };
    entry.changes().then(|| {
        let source = &entry.source;
        Judged {
            rule: rule.clone(),
            registry: source.registry.clone(),
            repository: source.repository.clone(),
            digest: source.digest.clone(),
        }
    })
}

/// `hoist verify`: each image written verbatim by a rule that requires a
/// signature and carries signatures must carry one in the target that
/// passes the gate. Problems, one line per image.
pub fn verify_targets(plan: &Plan, rules: &RuleSet, stores: &StoreMap) -> Vec<String> {
    let mut images: BTreeMap<Judged, Vec<&PlanEntry>> = BTreeMap::new();
    for entry in &plan.entries {
        let Some(GateVerdict::Verified { rule, .. }) = &entry.gate else {
            continue;
        };
        // A filtered index is another image than the one signed, and a rule
        // that does not carry signatures leaves them in the source.
        let verbatim = entry.target.digest.is_none();
        if !verbatim || !entry.travel.referrers || entry.target.current_digest.is_none() {
            continue;
        }
        let key = Judged {
            rule: rule.clone(),
            registry: entry.target.registry.clone(),
            repository: entry.target.repository.clone(),
            digest: entry.source.digest.clone(),
        };
        images.entry(key).or_default().push(entry);
    }
    let verdicts = judge(images.keys().cloned().collect(), rules, stores);
    images
        .into_iter()
        .filter_map(|(key, entries)| {
            let Err(reason) = verdicts.get(&key)? else {
                return None;
            };
            let Judged {
                registry,
                repository,
                digest,
                ..
            } = key;
            let tags: Vec<&str> = entries.iter().map(|e| e.target.tag.as_str()).collect();
            Some(format!(
                "{registry}/{repository}:{} ({}): require_signature: {reason}",
                tags.join(","),
                digest.short()
            ))
        })
        .collect()
}

/// Each image judged by its rule's gate in its registry (its repository's
/// tags listed once): `Ok(key)` when it passes, `Err(reason)` when not.
fn judge(
    images: Vec<Judged>,
    rules: &RuleSet,
    stores: &StoreMap,
) -> BTreeMap<Judged, Result<String, GateFailure>> {
    let mut repositories: BTreeMap<(String, String), Vec<Judged>> = BTreeMap::new();
    for image in images {
        let repository = (image.registry.clone(), image.repository.clone());
        repositories.entry(repository).or_default().push(image);
    }
    repositories
        .into_par_iter()
        .flat_map_iter(|((registry, repository), images)| {
            let store = stores.get(&registry).map(|s| ReadOnly::new(s.clone()));
            let tags = store
                .as_ref()
                .map(|s| s.tags(&repository).map_err(std::sync::Arc::new));
            images.into_iter().map(move |image| {
                let verdict = match (&store, &tags) {
                    (None, _) | (_, None) => Err(GateFailure::NotOpen(registry.clone())),
                    (Some(_), Some(Err(e))) => Err(GateFailure::Tags(e.clone())),
                    (Some(store), Some(Ok(tags))) => {
                        judge_one(store, &repository, &image, tags, rules)
                    }
                };
                (image, verdict)
            })
        })
        .collect()
}

/// One image against its rule's gate.
fn judge_one(
    store: &ReadOnly,
    repository: &str,
    image: &Judged,
    tags: &[String],
    rules: &RuleSet,
) -> Result<String, GateFailure> {
    let gate: Option<&Gate> = rules
        .rules
        .iter()
        .find(|r| r.name == image.rule)
        .and_then(|r| r.gate.as_deref());
    let Some(gate) = gate else {
        return Err(GateFailure::NoGate(image.rule.clone()));
    };
    match check(store, repository, &image.digest, tags, gate) {
        Ok(Verdict::Verified { key }) => Ok(key),
        Ok(Verdict::Refused(reason)) => Err(GateFailure::Refused(reason)),
        Ok(Verdict::AttestationRefused(reason)) => Err(GateFailure::AttestationRefused(reason)),
        Err(e) => Err(GateFailure::Unreadable(e)),
    }
}
