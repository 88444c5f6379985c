//! What the inventory says about one source image under one rule: the
//! verdict of its gate, and the digest its target tags get.

use super::inventory::{GateKey, Inventory, filter_key};
use crate::digest::Digest;
use crate::entry::GateVerdict;
use crate::manifest::FilterError;
use crate::registry::ManifestHead;
use crate::rules::Rule;

/// The verdict of `rule`'s `require_signature` on the image `head`.
pub(super) fn gate_verdict(
    rule: &Rule,
    head: &ManifestHead,
    inventory: &Inventory,
) -> Option<GateVerdict> {
    rule.gate.as_ref()?;
    let key = GateKey {
        rule: rule.name.clone(),
        registry: rule.from.clone(),
        digest: head.digest.clone(),
    };
    Some(match inventory.gates.get(&key) {
        Some(verdict) => GateVerdict::of(&rule.name, verdict),
        None => GateVerdict::Refused {
            rule: rule.name.clone(),
            setting: Default::default(),
            reason: "its signatures could not be checked".to_string(),
        },
    })
}

/// Why a tag whose index the rule filters by platform cannot be promoted.
#[derive(Debug, thiserror::Error)]
pub(super) enum PlatformFilterError {
    /// The index cannot be filtered (it has none of the platforms, …).
    #[error("platforms: {0}")]
    Refused(FilterError),
    /// Discovery could not read the index.
    #[error("the image could not be read to filter its platforms")]
    Unread,
}

/// The digest a target tag gets for `head` under `rule`: the source's, or
/// the platform-filtered index discovery computed.
pub(super) fn effective_digest(
    rule: &Rule,
    head: &ManifestHead,
    inventory: &Inventory,
) -> Result<Digest, PlatformFilterError> {
    let Some(key) = filter_key(rule, head) else {
        return Ok(head.digest.clone());
    };
    match inventory.filtered.get(&key) {
        Some(Ok(digest)) => Ok(digest.clone()),
        Some(Err(reason)) => Err(PlatformFilterError::Refused(reason.clone())),
        None => Err(PlatformFilterError::Unread),
    }
}
