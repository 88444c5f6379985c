//! `require_signature` compiled: the rule's keys and trusted root read and
//! parsed, its identity and issuer patterns compiled; problems point at the
//! field that cannot be used.

use std::sync::Arc;

use crate::config::{
    AttestationCondition, FieldPath, Problem, RequireAttestation, RequireRecord, RequireSignature,
};
use crate::gate::attestation::{Condition, Requirement, Severity, Test};
use crate::gate::{Gate, Keyless, Matcher, PublicKey, TrustedRoot};

/// The gate of a `require_signature`, or the problems that stop it.
pub(super) fn compile_gate(
    gate: &RequireSignature,
    at: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Gate> {
    let before = problems.len();
    let keyless_asked = gate.identity.is_some()
        || gate.identity_regexp.is_some()
        || gate.issuer.is_some()
        || gate.issuer_regexp.is_some()
        || gate.trusted_root.is_some();
    if gate.keys.is_empty() && !keyless_asked {
        problems.push(Problem::at(at.key("keys"), "`keys` is empty").help(
            "name the cosign public keys that sign for this rule, e.g. [\"keys/ci.pub\"], \
                 or a keyless signer with identity, issuer and trusted_root",
        ));
        return None;
    }
    let keys = compile_keys(&gate.keys, at, problems);
    let keyless = if keyless_asked {
        compile_keyless(gate, at, problems)
    } else {
        None
    };
    (problems.len() == before).then(|| Gate {
        keys,
        keyless,
        annotations: gate.annotations.clone(),
        attestations: Vec::new(),
    })
}

/// A rule's gates: what an image must carry to be promoted
/// (`require_signature`, `require_attestation`), and the keys its target
/// images' records must verify against (`require_record`).
pub(super) fn compile_gates(
    p: &crate::config::Promotion,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> (Option<Arc<Gate>>, Option<Arc<Vec<PublicKey>>>) {
    let signature = p
        .require_signature
        .as_ref()
        .and_then(|gate| compile_gate(gate, &path.key("require_signature"), problems));
    let at = path.key("require_attestation");
    let attestations = compile_attestations(&p.require_attestation, &at, problems);
    let record = p
        .require_record
        .as_ref()
        .and_then(|required| compile_record_keys(required, &path.key("require_record"), problems));
    (combine(signature, attestations), record)
}

/// The rule's gate: its `require_signature`, with its `require_attestation`
/// requirements; `None` when it has neither.
fn combine(signature: Option<Gate>, attestations: Vec<Requirement>) -> Option<Arc<Gate>> {
    match (signature, attestations.is_empty()) {
        (None, true) => None,
        (Some(gate), _) => Some(Arc::new(Gate {
            attestations,
            ..gate
        })),
        (None, false) => Some(Arc::new(Gate {
            keys: Vec::new(),
            keyless: None,
            annotations: Default::default(),
            attestations,
        })),
    }
}

/// Each `require_attestation` entry compiled, or the problems found.
pub(super) fn compile_attestations(
    required: &[RequireAttestation],
    at: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Vec<Requirement> {
    let mut compiled = Vec::new();
    for (index, entry) in required.iter().enumerate() {
        let at = at.index(index);
        let before = problems.len();
        if entry.predicate_type.trim().is_empty() {
            problems.push(
                Problem::at(at.key("predicate_type"), "`predicate_type` is empty").help(
                    "name the in-toto predicate type, e.g. \"https://slsa.dev/provenance/v1\"",
                ),
            );
        }
        if entry.keys.is_empty() {
            problems.push(Problem::at(at.key("keys"), "`keys` is empty").help(
                "name the public keys that sign these attestations, e.g. [\"keys/builder.pub\"]",
            ));
        }
        let keys = compile_keys(&entry.keys, &at, problems);
        let conditions = entry
            .conditions
            .iter()
            .enumerate()
            .filter_map(|(i, c)| compile_condition(c, &at.key("conditions").index(i), problems))
            .collect();
        if problems.len() == before {
            compiled.push(Requirement {
                index,
                predicate_type: entry.predicate_type.clone(),
                keys,
                conditions,
            });
        }
    }
    compiled
}

fn compile_condition(
    condition: &AttestationCondition,
    at: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Condition> {
    let tests = [
        condition.equals.is_some(),
        condition.matches.is_some(),
        condition.one_of.is_some(),
        condition.below_severity.is_some(),
    ];
    if tests.iter().filter(|t| **t).count() != 1 {
        problems.push(
            Problem::at(at.clone(), "a condition needs exactly one test")
                .help("give one of `equals`, `matches`, `one_of` or `below_severity`"),
        );
        return None;
    }
    let test = if let Some(text) = &condition.equals {
        Test::Equals(text.clone())
    } else if let Some(pattern) = &condition.matches {
        match regex_lite::Regex::new(&format!("^(?:{pattern})$")) {
            Ok(regex) => Test::Matches(pattern.clone(), regex),
            Err(e) => {
                problems.push(Problem::at(at.key("matches"), format!("`{pattern}`: {e}")));
                return None;
            }
        }
    } else if let Some(allowed) = &condition.one_of {
        Test::OneOf(allowed.clone())
    } else {
        let word = condition.below_severity.as_deref().unwrap_or_default();
        match Severity::parse(word) {
            Some(severity) => Test::BelowSeverity(severity),
            None => {
                problems.push(
                    Problem::at(at.key("below_severity"), format!("`{word}` is no severity"))
                        .help("use low, medium, high or critical"),
                );
                return None;
            }
        }
    };
    match Condition::new(&condition.path, test) {
        Ok(compiled) => Some(compiled),
        Err(e) => {
            problems.push(Problem::at(at.key("path"), e.to_string()));
            None
        }
    }
}

/// The keys of a `require_record`, or the problems that stop them.
pub(super) fn compile_record_keys(
    required: &RequireRecord,
    at: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Arc<Vec<PublicKey>>> {
    if required.keys.is_empty() {
        problems.push(
            Problem::at(at.key("keys"), "`keys` is empty")
                .help("name the public keys that sign this run's promotion records, e.g. [\"keys/promoter.pub\"]"),
        );
        return None;
    }
    let before = problems.len();
    let keys = compile_keys(&required.keys, at, problems);
    (problems.len() == before).then(|| Arc::new(keys))
}

fn compile_keys(paths: &[String], at: &FieldPath, problems: &mut Vec<Problem>) -> Vec<PublicKey> {
    let mut keys = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match PublicKey::read(path) {
            Ok(key) => keys.push(key),
            Err(why) => problems.push(
                Problem::at(at.key("keys").index(i), format!("`{path}`: {why}")).help(
                    "a cosign public key (cosign.pub, PEM: ECDSA P-256 or P-384, Ed25519, RSA), \
                     relative to this file",
                ),
            ),
        }
    }
    keys
}

/// The identity, issuer and trusted root of a keyless gate: exactly one of
/// each pair, every one present.
fn compile_keyless(
    gate: &RequireSignature,
    at: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Keyless> {
    let identity = matcher(
        (&gate.identity, "identity"),
        (&gate.identity_regexp, "identity_regexp"),
        "the signing certificate's identity, e.g. \
         \"https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main\"",
        at,
        problems,
    );
    let issuer = matcher(
        (&gate.issuer, "issuer"),
        (&gate.issuer_regexp, "issuer_regexp"),
        "the OIDC issuer, e.g. \"https://token.actions.githubusercontent.com\"",
        at,
        problems,
    );
    let root = match &gate.trusted_root {
        None => {
            problems.push(
                Problem::at(
                    at.clone(),
                    "a keyless require_signature needs `trusted_root`",
                )
                .help(
                    "name sigstore's trusted_root.json (e.g. from `cosign trusted-root create` \
                     or the sigstore TUF repository), relative to this file",
                ),
            );
            None
        }
        Some(path) => {
            let root = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|json| TrustedRoot::from_json(path, &json).map_err(|e| e.to_string()));
            match root {
                Ok(root) => Some(Arc::new(root)),
                Err(why) => {
                    problems.push(
                        Problem::at(at.key("trusted_root"), format!("`{path}`: {why}"))
                            .help("sigstore's trusted_root.json, relative to this file"),
                    );
                    None
                }
            }
        }
    };
    Some(Keyless {
        identity: identity?,
        issuer: issuer?,
        root: root?,
    })
}

/// One of an exact value and a regular expression (`exact`, `pattern`:
/// the value and its field name).
fn matcher(
    exact: (&Option<String>, &str),
    pattern: (&Option<String>, &str),
    what: &str,
    at: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Matcher> {
    match (exact.0, pattern.0) {
        (Some(_), Some(_)) => {
            problems.push(
                Problem::at(
                    at.key(pattern.1),
                    format!("`{}` and `{}` both given", exact.1, pattern.1),
                )
                .help(format!(
                    "keep one: `{}` matches exactly, `{}` as a whole-value regular expression",
                    exact.1, pattern.1
                )),
            );
            None
        }
        (Some(value), None) => Some(Matcher::Exact(value.clone())),
        (None, Some(regexp)) => {
            match Matcher::pattern(regexp) {
                Ok(matcher) => Some(matcher),
                Err(e) => {
                    let why = e.to_string();
                    let first = why.lines().last().unwrap_or_default().trim().to_string();
                    problems.push(
                    Problem::at(at.key(pattern.1), format!("`{regexp}` is not a regular expression: {first}"))
                        .help("write a regular expression (Rust regex syntax) the whole value must match"),
                );
                    None
                }
            }
        }
        (None, None) => {
            problems.push(
                Problem::at(
                    at.clone(),
                    format!(
                        "a keyless require_signature needs `{}` or `{}`",
                        exact.1, pattern.1
                    ),
                )
                .help(format!("name {what}")),
            );
            None
        }
    }
}
