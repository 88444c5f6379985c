//! `require_signature` compiled: the rule's keys read and parsed.

use crate::config::{FieldPath, Problem};

/// The keys of a `require_signature`, read and parsed; problems point at
/// the key that cannot be used.
pub(super) fn compile_gate(
    gate: &crate::config::RequireSignature,
    at: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<std::sync::Arc<crate::gate::Gate>> {
    if gate.keys.is_empty() {
        problems.push(
            Problem::at(at.key("keys"), "`keys` is empty").help(
                "name the cosign public keys that sign for this rule, e.g. [\"keys/ci.pub\"]",
            ),
        );
        return None;
    }
    let mut keys = Vec::new();
    for (i, path) in gate.keys.iter().enumerate() {
        let key = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| {
                crate::gate::PublicKey::from_pem(path, &pem).map_err(|e| e.to_string())
            });
        match key {
            Ok(key) => keys.push(key),
            Err(why) => problems.push(
                Problem::at(at.key("keys").index(i), format!("`{path}`: {why}"))
                    .help("a cosign public key (cosign.pub, PEM), relative to this file"),
            ),
        }
    }
    (keys.len() == gate.keys.len()).then(|| {
        std::sync::Arc::new(crate::gate::Gate {
            keys,
            annotations: gate.annotations.clone(),
        })
    })
}
