//! Step 3c of discovery: each image a gated rule selects, checked once
//! against that rule's `require_signature`.

use std::collections::BTreeMap;

use super::inventory::GateKey;
use super::{Discovery, ReadFailure, handle, read_par, selections};
use crate::gate::check;
use crate::rules::Rule;

/// Where to read one image's signatures, and the rule whose gate it faces.
struct ToCheck<'a> {
    rule: &'a Rule,
    repository: &'a str,
    tags: &'a [String],
}

impl Discovery<'_> {
    /// Step 3c: the verdict on every image a rule with `require_signature`
    /// selects (its signatures are read from the source once per rule).
    pub(super) fn check_gates(&mut self) {
        let gated = self.rules.rules.iter().filter(|r| r.gate.is_some());
        let mut to_check: BTreeMap<GateKey, ToCheck<'_>> = BTreeMap::new();
        for selection in selections(gated, &self.inventory) {
            let Some(head) = self.selected_head(&selection) else {
                continue;
            };
            let key = GateKey {
                rule: selection.rule.name.clone(),
                registry: selection.rule.from.clone(),
                digest: head.digest.clone(),
            };
            to_check.entry(key).or_insert(ToCheck {
                rule: selection.rule,
                repository: selection.repository,
                tags: selection.tags,
            });
        }
        let handles = self.handles;
        let checked = read_par(
            to_check,
            |(
                GateKey {
                    registry, digest, ..
                },
                image,
            )| {
                let Some(gate) = image.rule.gate.as_deref() else {
                    return Ok(None);
                };
                check(
                    handle(handles, registry)?,
                    image.repository,
                    digest,
                    image.tags,
                    gate,
                )
                .map(Some)
                .map_err(|source| ReadFailure::Gate {
                    registry: registry.clone(),
                    repository: image.repository.to_string(),
                    digest: digest.clone(),
                    source: Box::new(source),
                })
            },
        );
        let checked: Vec<(GateKey, _)> = checked
            .into_iter()
            .map(|(key, verdict)| (key.0, verdict))
            .collect();
        for (key, verdict) in self.keep(checked) {
            if let Some(verdict) = verdict {
                self.inventory.gates.insert(key, verdict);
            }
        }
    }
}
