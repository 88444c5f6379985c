//! The serde model of `promotions.toml`, exactly as DESIGN.md specifies it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run settings.
    #[serde(default)]
    pub settings: Settings,
    /// Registries by name.
    #[serde(default)]
    pub registries: std::collections::BTreeMap<String, RegistryConfig>,
    /// Promotion rules, in file order.
    #[serde(default, rename = "promotion")]
    pub promotions: Vec<Promotion>,
}

/// The JSON Schema of `promotions.toml`, as checked in under `schemas/`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Config);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// `[settings]`: how a run behaves.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Threads: the most operations in flight at once (default 48). Each
    /// registry's concurrency adapts below it (from 16, growing while
    /// throughput grows, halved on a 429 or a timeout) unless its
    /// `max_connections` is set.
    pub jobs: usize,
    /// Attempts per request, with exponential backoff and jitter.
    pub retries: u32,
    /// Idle timeout of each read or write, in seconds.
    pub timeout_secs: u64,
    /// Sign a promotion record (an in-toto statement in a DSSE envelope)
    /// for every image written to a target, and attach it to the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSettings>,
}

/// `[settings] record`: the key promotion records are signed with. The
/// key's PEM never belongs in this file: name a file, or an environment
/// variable holding it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSettings {
    /// PKCS#8 PEM private key (ECDSA P-256 or Ed25519), relative to the
    /// config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Environment variable holding the PEM private key instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            jobs: 48,
            retries: 4,
            timeout_secs: 60,
            record: None,
        }
    }
}

/// `[registries.NAME]`: one registry or OCI layout store.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `https://host`, `http://host`, `host:port` or `oci-layout:./dir`.
    pub url: String,
    /// Environment variable holding the username.
    #[serde(default)]
    pub username_env: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Environment variable holding a ready bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Extra CA certificate (PEM) to trust, relative to the config file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip TLS verification (explicit only).
    #[serde(default)]
    pub insecure: bool,
    /// Concurrent requests to this registry.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Client-side rate limit.
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Upload blobs in `PATCH` chunks of this many bytes, for registries that
    /// refuse a single monolithic `PUT`.
    #[serde(default)]
    pub upload_chunk_size: Option<u64>,
}

/// One value or a list of them (`to = "prod"` or `to = ["a", "b"]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// May an existing target tag change digest?
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Overwrite {
    /// Never: such an entry is blocked.
    #[default]
    Never,
    /// Always.
    Always,
}

/// Copy, or move (delete the source tag once promoted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Leave the source alone.
    #[default]
    Copy,
    /// Delete the source tag once every target has it.
    Move,
}

fn default_tags() -> Vec<String> {
    vec!["*".to_string()]
}

fn default_true() -> bool {
    true
}

/// `[[promotion]]`: one rule.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// Unique name, used in plans, reports and diagnostics.
    pub name: String,
    /// Source registry name.
    pub from: String,
    /// Target registry name(s).
    pub to: OneOrMany<String>,
    /// Repository globs over the source catalog; `!` excludes.
    pub repositories: Vec<String>,
    /// Target repository template.
    #[serde(default)]
    pub target: Option<String>,
    /// Tag globs; `!` excludes.
    #[serde(default = "default_tags")]
    pub tags: Vec<String>,
    /// Semver requirement.
    #[serde(default)]
    pub semver: Option<String>,
    /// Select prerelease versions too.
    #[serde(default)]
    pub prerelease: bool,
    /// Keep the N highest versions per repository.
    #[serde(default)]
    pub latest: Option<usize>,
    /// Promote these tags only at these digests.
    #[serde(default)]
    pub pin: BTreeMap<String, String>,
    /// Target tag template.
    #[serde(default)]
    pub tag: Option<String>,
    /// Moving tags.
    #[serde(default)]
    pub floating: Vec<String>,
    /// Also write the source tag when `tag` renames it.
    #[serde(default)]
    pub keep_source_tag: bool,
    /// May an existing target tag change digest?
    #[serde(default)]
    pub overwrite: Overwrite,
    /// Platforms to keep from an index; empty keeps it verbatim.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Copy signatures, SBOMs and attestations.
    #[serde(default = "default_true")]
    pub referrers: bool,
    /// Copy or move.
    #[serde(default)]
    pub mode: Mode,
    /// Promote only images signed (cosign) by one of these keys.
    #[serde(default)]
    pub require_signature: Option<RequireSignature>,
    /// Attestations an image must carry to be promoted: each an in-toto
    /// attestation of a predicate type, signed by one of its keys, about the
    /// image, whose predicate satisfies its conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_attestation: Vec<RequireAttestation>,
    /// `hoist verify` fails each target image of this rule without a
    /// promotion record (`[settings] record`) signed by one of these keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_record: Option<RequireRecord>,
    /// Delete target tags the rule owns that its source no longer selects:
    /// `true` (the rule's selection decides) or `"recorded"` (only tags
    /// whose image carries this rule's promotion record, signed by a key of
    /// `require_record`). Each deletion is a plan entry first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<Prune>,
    /// The most tags one run may prune for this rule: a count (`10`) or a
    /// share of the rule's target tags (`"20%"`). Above it nothing of the
    /// rule is pruned. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prune: Option<MaxPrune>,
}

/// `prune = false | true | "recorded"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Prune {
    /// `true` or `false`.
    Flag(bool),
    /// `"recorded"`.
    Recorded(Recorded),
}

/// The one word `prune` takes besides a boolean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Recorded {
    /// Only tags whose image carries this rule's promotion record.
    #[serde(rename = "recorded")]
    Recorded,
}

/// `max_prune = 10` or `max_prune = "20%"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MaxPrune {
    /// At most this many tags.
    Count(usize),
    /// At most this share of the rule's target tags, `"N%"`.
    Share(String),
}

/// One `require_attestation` entry: `{ predicate_type = "...", keys =
/// [...], conditions = [{ path = "...", equals = "..." }, ...] }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequireAttestation {
    /// The predicate type, exactly (`https://slsa.dev/provenance/v1`).
    pub predicate_type: String,
    /// Public keys (PEM), paths relative to this file; an attestation signed
    /// by any one of them will do.
    pub keys: Vec<String>,
    /// What the predicate must say; all must hold.
    #[serde(default)]
    pub conditions: Vec<AttestationCondition>,
}

/// A condition on a field of a predicate: the field at `path` (dotted,
/// `[*]` for every element of a list, `[N]` for one) must exist and pass
/// the one test given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationCondition {
    /// Where in the predicate, e.g. `runDetails.builder.id`.
    pub path: String,
    /// Every value there is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// Every value there matches this regular expression as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// Every value there is one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    /// Every severity there (a vulnerability report's findings) is below
    /// this one (`low`, `medium`, `high`, `critical`); a list of no
    /// findings passes, a report without the list fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below_severity: Option<String>,
}

/// `require_record = { keys = [...] }`: the keys a target image's
/// promotion record must verify against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequireRecord {
    /// Public keys (PEM), paths relative to this file; a record signed by
    /// any one of them will do.
    pub keys: Vec<String>,
}

/// `require_signature = { keys = [...], annotations = { ... } }`, or keyless
/// `{ identity = "...", issuer = "...", trusted_root = "..." }` (or both: a
/// signature of either kind will do): the gate an image must pass to be
/// promoted by the rule.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequireSignature {
    /// cosign public keys (PEM: ECDSA P-256 or P-384, Ed25519, RSA), paths
    /// relative to this file; a signature by any one of them will do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Keyless: the signing certificate's identity (its subject alternative
    /// name: a workflow URI or an email), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Keyless: a regular expression the whole identity must match (instead
    /// of `identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_regexp: Option<String>,
    /// Keyless: the OIDC issuer that vouched for the identity, exactly
    /// (e.g. `https://token.actions.githubusercontent.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Keyless: a regular expression the whole issuer must match (instead of
    /// `issuer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_regexp: Option<String>,
    /// Keyless: sigstore's `trusted_root.json` (certificate authorities and
    /// transparency log keys), relative to this file; nothing is fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<String>,
    /// Each must appear with this value in the signed payload's `optional`
    /// section (`cosign sign -a key=value`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}
