//! `require_attestation`: an image passes when, for each requirement, an
//! in-toto attestation attached to it, of the requirement's predicate type,
//! is signed by one of its keys, names the image as its subject, and has a
//! predicate that satisfies every condition. A condition on a field that is
//! absent fails, never passes.
//!
//! Where attestations are: cosign's `sha256-<hex>.att` manifest beside the
//! image (one DSSE envelope per layer, `cosign attest`), and the image's OCI
//! 1.1 referrers holding a Sigstore bundle or a bare DSSE envelope (`cosign
//! attest --new-bundle-format`, the referrers fallback tag included).

use std::collections::BTreeMap;

use serde_json::Value;

use super::PublicKey;
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::record::{BUNDLE_MEDIA_TYPE, Bundle, Envelope, IN_TOTO_PAYLOAD, referrers};
use crate::registry::{ReadOnly, RegistryError};

/// The media type of a bare DSSE envelope layer.
const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Attestations read per image, at most.
const MAX_ATTESTATIONS: usize = 64;
/// An envelope larger than this is not read.
const MAX_ENVELOPE_BYTES: u64 = 8 * 1024 * 1024;
/// The in-toto statement types read.
const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

/// One `require_attestation` entry, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    /// Its position among the rule's, for messages.
    pub index: usize,
    /// The predicate type.
    pub predicate_type: String,
    /// Keys one of which must have signed it.
    pub keys: Vec<PublicKey>,
    /// What its predicate must say.
    pub conditions: Vec<Condition>,
}

/// A condition on the predicate, compiled.
#[derive(Clone, Debug)]
pub struct Condition {
    /// The path as written.
    pub path: String,
    steps: Vec<Step>,
    /// The test.
    pub test: Test,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Condition) -> bool {
        self.path == other.path && self.test == other.test
    }
}

/// What a value at a condition's path must be.
#[derive(Clone, Debug)]
pub enum Test {
    /// Exactly this string.
    Equals(String),
    /// A string the pattern (as written) matches whole.
    Matches(String, regex_lite::Regex),
    /// One of these strings.
    OneOf(Vec<String>),
    /// A severity below this one.
    BelowSeverity(Severity),
}

impl PartialEq for Test {
    fn eq(&self, other: &Test) -> bool {
        match (self, other) {
            (Test::Equals(a), Test::Equals(b)) => a == b,
            (Test::Matches(a, _), Test::Matches(b, _)) => a == b,
            (Test::OneOf(a), Test::OneOf(b)) => a == b,
            (Test::BelowSeverity(a), Test::BelowSeverity(b)) => a == b,
            _ => false,
        }
    }
}

/// A finding's severity, as scanners name them (CVSS qualitative ratings,
/// Trivy's and Grype's words), lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// `none`, `negligible`, `unknown`.
    None,
    /// `low`.
    Low,
    /// `medium`, `moderate`.
    Medium,
    /// `high`, `important`.
    High,
    /// `critical`.
    Critical,
}

impl Severity {
    /// The severity a word names, in any case.
    pub fn parse(word: &str) -> Option<Severity> {
        Some(match word.to_ascii_lowercase().as_str() {
            "none" | "negligible" | "unknown" | "info" | "informational" => Severity::None,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" | "important" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// One step of a path into a predicate.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Each,
}

/// Why a path is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{path}` is not a field path (write `a.b`, `list[0]` or `list[*].c`): {why}")]
pub struct PathError {
    /// The path.
    pub path: String,
    /// What is wrong.
    pub why: &'static str,
}

impl Condition {
    /// The condition `test` on the field at `path`.
    pub fn new(path: &str, test: Test) -> Result<Condition, PathError> {
        Ok(Condition {
            path: path.to_string(),
            steps: parse_path(path)?,
            test,
        })
    }

    /// Whether `predicate` satisfies it; why not, for people.
    pub fn holds(&self, predicate: &Value) -> Result<(), String> {
        let each = self.steps.iter().position(|s| *s == Step::Each);
        let prefix = &self.steps[..each.unwrap_or(self.steps.len())];
        if walk(predicate, prefix).is_empty() {
            return Err(format!("`{}` is absent", self.path));
        }
        let values = walk(predicate, &self.steps);
        if let Test::BelowSeverity(limit) = &self.test {
            // A list of no findings passes; every finding must rank below.
            for value in values {
                let found = value.as_str().and_then(Severity::parse);
                match found {
                    Some(severity) if severity < *limit => {}
                    Some(_) => {
                        return Err(format!(
                            "`{}` has a finding of severity {}, at or above {limit:?}",
                            self.path,
                            shown(value)
                        ));
                    }
                    None => {
                        return Err(format!(
                            "`{}` holds {}, which is no severity",
                            self.path,
                            shown(value)
                        ));
                    }
                }
            }
            return Ok(());
        }
        if values.is_empty() {
            return Err(format!("`{}` is absent", self.path));
        }
        for value in values {
            let text = value.as_str();
            let passes = match (&self.test, text) {
                (Test::Equals(wanted), Some(text)) => text == wanted,
                (Test::Matches(_, pattern), Some(text)) => pattern.is_match(text),
                (Test::OneOf(allowed), Some(text)) => allowed.iter().any(|a| a == text),
                _ => false,
            };
            if !passes {
                return Err(format!(
                    "`{}` is {}, {}",
                    self.path,
                    shown(value),
                    self.test.wanted()
                ));
            }
        }
        Ok(())
    }
}

impl Test {
    fn wanted(&self) -> String {
        match self {
            Test::Equals(wanted) => format!("not `{wanted}`"),
            Test::Matches(pattern, _) => format!("which does not match `{pattern}`"),
            Test::OneOf(allowed) => format!("not one of `{}`", allowed.join("`, `")),
            Test::BelowSeverity(limit) => format!("not below {limit:?}"),
        }
    }
}

/// A value as a message quotes it.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("`{text}`"),
        other => format!("`{other}`"),
    }
}

fn parse_path(path: &str) -> Result<Vec<Step>, PathError> {
    let error = |why| PathError {
        path: path.to_string(),
        why,
    };
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if key.is_empty() && steps.is_empty() {
            return Err(error("it starts with no field name"));
        }
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        } else if rest.is_empty() {
            return Err(error("it has an empty field name"));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else {
                return Err(error("a `[` is not closed"));
            };
            steps.push(match &inner[..end] {
                "*" => Step::Each,
                n => Step::Index(
                    n.parse()
                        .map_err(|_| error("an index is not a number or `*`"))?,
                ),
            });
            rest = &inner[end + 1..];
        }
        if !rest.is_empty() {
            return Err(error("text follows a `]`"));
        }
    }
    Ok(steps)
}

/// Every value `steps` reach in `value` (a missing field reaches nothing).
fn walk<'v>(value: &'v Value, steps: &[Step]) -> Vec<&'v Value> {
    let Some((step, rest)) = steps.split_first() else {
        return vec![value];
    };
    match (step, value) {
        (Step::Key(key), Value::Object(map)) => {
            map.get(key).map(|v| walk(v, rest)).unwrap_or_default()
        }
        (Step::Index(i), Value::Array(list)) => {
            list.get(*i).map(|v| walk(v, rest)).unwrap_or_default()
        }
        (Step::Each, Value::Array(list)) => list.iter().flat_map(|v| walk(v, rest)).collect(),
        _ => Vec::new(),
    }
}

/// An attestation found beside or among the referrers of an image.
struct Found {
    envelope: Envelope,
}

/// Why the best attestation of a type failed, most specific last.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Refusal {
    None,
    OtherKey,
    OtherImage,
    Condition(String),
}

impl Refusal {
    fn describe(&self) -> String {
        match self {
            Refusal::None => "no attestation of this type is attached".to_string(),
            Refusal::OtherKey => "attested, but not by any key in its keys".to_string(),
            Refusal::OtherImage => "attested by a trusted key, but about another image".to_string(),
            Refusal::Condition(why) => format!("attested by a trusted key, but {why}"),
        }
    }
}

/// Checks image `digest` against every requirement: `Ok` with what verified
/// (one phrase per requirement), or why the first one failing fails.
pub fn check(
    store: &ReadOnly,
    repository: &str,
    digest: &Digest,
    tags: &[String],
    requirements: &[Requirement],
) -> Result<Result<Vec<String>, String>, RegistryError> {
    let wanted: Vec<&str> = requirements
        .iter()
        .map(|r| r.predicate_type.as_str())
        .collect();
    let found = attestations(store, repository, digest, tags, &wanted)?;
    let mut passed = Vec::new();
    for requirement in requirements {
        match judge(requirement, &found, digest) {
            Ok(key) => passed.push(format!("{} ({key})", requirement.predicate_type)),
            Err(refusal) => {
                return Ok(Err(format!(
                    "require_attestation[{}] ({}): {}",
                    requirement.index,
                    requirement.predicate_type,
                    refusal.describe()
                )));
            }
        }
    }
    Ok(Ok(passed))
}

/// The key of the first attestation that passes `requirement`, or the most
/// specific refusal among those of its type.
fn judge(requirement: &Requirement, found: &[Found], digest: &Digest) -> Result<String, Refusal> {
    let mut best = Refusal::None;
    for attestation in found {
        let Some(statement) = statement(&attestation.envelope) else {
            continue;
        };
        if statement["predicateType"].as_str() != Some(requirement.predicate_type.as_str()) {
            continue;
        }
        let Some(key) = attestation.envelope.signed_by(&requirement.keys) else {
            best = best.max(Refusal::OtherKey);
            continue;
        };
        let names_image = statement["subject"].as_array().is_some_and(|subjects| {
            subjects
                .iter()
                .any(|s| s["digest"][digest.algorithm()].as_str() == Some(digest.hex()))
        });
        if !names_image {
            best = best.max(Refusal::OtherImage);
            continue;
        }
        let failed = requirement
            .conditions
            .iter()
            .find_map(|c| c.holds(&statement["predicate"]).err());
        match failed {
            None => return Ok(key.name.clone()),
            Some(why) => best = best.max(Refusal::Condition(why)),
        }
    }
    Err(best)
}

/// The in-toto statement an envelope carries, when it is one.
fn statement(envelope: &Envelope) -> Option<Value> {
    if envelope.payload_type != IN_TOTO_PAYLOAD {
        return None;
    }
    let statement: Value = serde_json::from_slice(&envelope.payload_bytes()?).ok()?;
    STATEMENT_TYPES
        .contains(&statement["_type"].as_str()?)
        .then_some(statement)
}

/// The DSSE envelopes attached to image `digest`, of the predicate types
/// `wanted` where the manifest says which.
fn attestations(
    store: &ReadOnly,
    repository: &str,
    digest: &Digest,
    tags: &[String],
    wanted: &[&str],
) -> Result<Vec<Found>, RegistryError> {
    let mut layers: Vec<(Descriptor, bool)> = Vec::new();
    let att = format!("{}.att", digest.to_string().replacen(':', "-", 1));
    if tags.contains(&att) {
        let manifest = store.manifest_get(repository, &att)?;
        layers.extend(typed_layers(&manifest.bytes, wanted, Holder::AttTag));
    }
    for referrer in referrers(store, repository, digest)?
        .iter()
        .filter(|r| !crate::manifest::is_index(&r.media_type))
        .take(MAX_ATTESTATIONS)
    {
        let manifest = store.manifest_get(repository, &referrer.digest.to_string())?;
        layers.extend(typed_layers(&manifest.bytes, wanted, Holder::Referrer));
    }
    let mut found = Vec::new();
    for (layer, bundled) in layers.into_iter().take(MAX_ATTESTATIONS) {
        if layer.size > MAX_ENVELOPE_BYTES {
            continue;
        }
        let bytes = store.blob_bytes(repository, &layer.digest, layer.size, "the attestation")?;
        let envelope = match bundled {
            true => serde_json::from_slice::<Bundle>(&bytes)
                .ok()
                .map(|b| b.dsse_envelope),
            false => serde_json::from_slice::<Envelope>(&bytes).ok(),
        };
        found.extend(envelope.map(|envelope| Found { envelope }));
    }
    Ok(found)
}

/// Which manifest holds attestations, and so where it names their type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// cosign's `sha256-<hex>.att`: each layer's `predicateType` annotation.
    AttTag,
    /// A referrer: the manifest's `dev.sigstore.bundle.predicateType`.
    Referrer,
}

/// The layers of a manifest that hold an attestation (a DSSE envelope or a
/// Sigstore bundle), skipping those whose annotation says they are of a
/// type not `wanted`; each with whether it is a bundle.
fn typed_layers(manifest: &[u8], wanted: &[&str], holder: Holder) -> Vec<(Descriptor, bool)> {
    let type_key = match holder {
        Holder::AttTag => "predicateType",
        Holder::Referrer => "dev.sigstore.bundle.predicateType",
    };
    let referrer = holder == Holder::Referrer;
    let Ok(value) = serde_json::from_slice::<Value>(manifest) else {
        return Vec::new();
    };
    let annotations = |v: &Value| -> BTreeMap<String, String> {
        serde_json::from_value(v["annotations"].clone()).unwrap_or_default()
    };
    let of_wanted_type =
        |a: &BTreeMap<String, String>| a.get(type_key).is_none_or(|t| wanted.contains(&t.as_str()));
    let manifest_annotations = annotations(&value);
    if referrer && !of_wanted_type(&manifest_annotations) {
        return Vec::new();
    }
    let layers = value["layers"].as_array().cloned().unwrap_or_default();
    layers
        .into_iter()
        .filter(|layer| referrer || of_wanted_type(&annotations(layer)))
        .filter_map(|layer| {
            let descriptor: Descriptor = serde_json::from_value(layer).ok()?;
            let bundled = descriptor.media_type == BUNDLE_MEDIA_TYPE;
            let envelope = descriptor.media_type == DSSE_MEDIA_TYPE;
            (bundled || envelope).then_some((descriptor, bundled))
        })
        .collect()
}

#[cfg(test)]
#[path = "attestation_tests.rs"]
mod tests;
