//! One entry of the plan: the tag it writes, the image it points at, what
//! the tag is to its repository (its role) and what applying does (its action).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
pub use crate::gate::GateSetting;
pub use crate::rules::{Transfer, Travel};

/// A source tag a rule selected but cannot promote, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedTag {
    /// The rule.
    pub rule: String,
    /// Source registry name.
    pub registry: String,
    /// Source repository.
    pub repository: String,
    /// Source tag (empty when the whole repository is skipped).
    pub tag: String,
    /// Why.
    pub reason: String,
}

/// What applying an entry will do; refusals and kept tags say why.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// The target tag does not exist yet.
    Create,
    /// The target tag moves to another digest.
    Update,
    /// The target tag stays where it is.
    Unchanged {
        /// For a floating tag: the newer version tag of its series the target
        /// already holds it at, so it stays there rather than move back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept_at: Option<String>,
    },
    /// The target tag is deleted (`prune`): its rule owns it and its
    /// source no longer selects it.
    Prune {
        /// Why, for people.
        reason: String,
    },
    /// Refused.
    Blocked {
        /// Why, for people.
        reason: String,
    },
}

impl Action {
    /// Nothing to do: the tag already holds the digest.
    pub const UNCHANGED: Action = Action::Unchanged { kept_at: None };

    /// A refusal, and why.
    pub fn blocked(reason: impl Into<String>) -> Action {
        Action::Blocked {
            reason: reason.into(),
        }
    }

    /// Why it is refused, when it is.
    pub fn blocked_reason(&self) -> Option<&str> {
        match self {
            Action::Blocked { reason } => Some(reason),
            _ => None,
        }
    }

    /// The table's one-character marker.
    pub fn marker(&self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Unchanged { .. } => '=',
            Action::Prune { .. } => '-',
            Action::Blocked { .. } => '!',
        }
    }

    /// Whether applying writes something (an image, a tag).
    pub fn changes(&self) -> bool {
        matches!(self, Action::Create | Action::Update)
    }

    /// Whether applying deletes the target tag.
    pub fn is_prune(&self) -> bool {
        matches!(self, Action::Prune { .. })
    }
}

/// What a target tag is to its repository, which decides when it is written
/// and what it waits for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Role {
    /// A tag of one image, a version or any other selected tag: written as
    /// soon as its image is complete.
    Version,
    /// A tag that follows the highest version of a series (`1`, `1.4`,
    /// `latest`): written after the other tags of its repository, and only
    /// when the version tag of its source tag was.
    Floating {
        /// What it follows: the floating template (`{major}.{minor}`,
        /// `latest`), or the tag itself when named outright.
        series: String,
    },
    /// A signature, attestation or SBOM tag (cosign's `sha256-<hex>.sig`,
    /// `.att`, `.sbom`; the referrers fallback tag `sha256-<hex>`) carried
    /// with the image it is about: written last, only once that image is,
    /// and updated whenever the source's changes.
    Attached {
        /// The digest of the image it is about.
        subject: Digest,
    },
}

impl Role {
    /// A floating tag.
    pub fn is_floating(&self) -> bool {
        matches!(self, Role::Floating { .. })
    }

    /// An attached artifact's tag.
    pub fn is_attached(&self) -> bool {
        matches!(self, Role::Attached { .. })
    }

    /// Whether `tag` in this role is the referrers fallback tag of its
    /// subject: an index listing the subject's referrers, which a target
    /// may list more in (its own signatures, promotion records). It is
    /// merged into the target's, never written over it.
    pub fn is_referrers_listing(&self, tag: &str) -> bool {
        matches!(self, Role::Attached { subject } if crate::referrers::fallback_tag(subject) == tag)
    }

    /// Written after the other tags of its repository: floating and attached tags.
    pub fn is_late(&self) -> bool {
        !matches!(self, Role::Version)
    }
}

/// What a rule's `require_signature` found about the source image: shown
/// in the plan so a reviewer sees what was verified, and checked again by
/// `apply --plan`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum GateVerdict {
    /// A signature verifies, names the image and carries the annotations.
    Verified {
        /// The rule whose gate it passed.
        rule: String,
        /// What it was verified with: the key, as the rule names it.
        by: String,
    },
    /// No signature passes, or an attestation requirement fails.
    Refused {
        /// The rule whose gate refuses it.
        rule: String,
        /// Why, for people.
        reason: String,
        /// Which setting refuses it.
        #[serde(default, skip_serializing_if = "GateSetting::is_signature")]
        setting: GateSetting,
    },
}

impl GateVerdict {
    /// The verdict of `rule`'s gate, as the plan carries it.
    pub fn of(rule: &str, verdict: &crate::gate::Verdict) -> GateVerdict {
        let rule = rule.to_string();
        match verdict {
            crate::gate::Verdict::Verified { key } => GateVerdict::Verified {
                rule,
                by: key.clone(),
            },
            crate::gate::Verdict::Refused(reason) => GateVerdict::Refused {
                rule,
                reason: reason.clone(),
                setting: GateSetting::RequireSignature,
            },
            crate::gate::Verdict::AttestationRefused(reason) => GateVerdict::Refused {
                rule,
                reason: reason.clone(),
                setting: GateSetting::RequireAttestation,
            },
        }
    }

    /// Why the gate refuses the image, when it does.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            GateVerdict::Verified { .. } => None,
            GateVerdict::Refused { reason, .. } => Some(reason),
        }
    }

    /// The setting that refuses the image, when one does.
    pub fn refused_by(&self) -> Option<GateSetting> {
        match self {
            GateVerdict::Verified { .. } => None,
            GateVerdict::Refused { setting, .. } => Some(*setting),
        }
    }
}

/// The image a target tag will point at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceImage {
    /// Source registry name.
    pub registry: String,
    /// Source repository.
    pub repository: String,
    /// Source tag.
    pub tag: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest media type.
    pub media_type: String,
}

/// `registry/repository:tag`, as the plan table and conflicts name it.
impl fmt::Display for SourceImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// The tag a plan entry writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TargetTag {
    /// Target registry name.
    pub registry: String,
    /// Target repository.
    pub repository: String,
    /// Target tag.
    pub tag: String,
    /// Digest the tag holds now, if it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_digest: Option<Digest>,
    /// The digest written, when it is not the source's: a new index keeping
    /// only the rule's `platforms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// One target `(registry, repository, tag)` and what will happen to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanEntry {
    /// What applying does (`action`, with `reason` or `kept_at`).
    #[serde(flatten)]
    pub action: Action,
    /// What the tag is: a version, a floating tag of a series, or an
    /// artifact attached to a subject.
    pub role: Role,
    /// Where the image comes from.
    pub source: SourceImage,
    /// The tag written.
    pub target: TargetTag,
    /// Rules that produce this entry, in file order.
    pub rules: Vec<String>,
    /// What travels with the image: its platforms, its referrers, and
    /// whether the source tag is deleted once every target has it.
    #[serde(flatten)]
    pub travel: Travel,
    /// The verdict of the rule's `require_signature` on the source image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateVerdict>,
}

impl PlanEntry {
    /// The digest the target tag will hold.
    pub fn target_digest(&self) -> &Digest {
        self.target.digest.as_ref().unwrap_or(&self.source.digest)
    }

    /// Written after the other tags of its repository: floating and attached tags.
    pub fn is_late(&self) -> bool {
        self.role.is_late()
    }

    /// Whether this late entry follows `regular`, so must not be written
    /// when `regular` was not: a floating tag follows the version tag of the
    /// same source tag; an attached tag follows the image that is its subject.
    pub fn follows(&self, regular: &PlanEntry) -> bool {
        match &self.role {
            Role::Version => false,
            Role::Floating { .. } => {
                regular.source.registry == self.source.registry
                    && regular.source.repository == self.source.repository
                    && regular.source.tag == self.source.tag
            }
            Role::Attached { subject } => regular.target_digest() == subject,
        }
    }

    /// Whether applying writes something.
    pub fn changes(&self) -> bool {
        self.action.changes()
    }

    /// Why the entry is blocked, why a floating tag stays, or why a move is
    /// only a copy: what the table says after the columns.
    pub fn remark(&self) -> Option<String> {
        match &self.action {
            Action::Blocked { reason } => return Some(format!("blocked: {reason}")),
            Action::Prune { reason } => return Some(format!("prune: {reason}")),
            Action::Unchanged {
                kept_at: Some(version),
            } => {
                return Some(format!(
                    "kept: the target's `{}` is at {version}, newer than {}",
                    self.target.tag, self.source.tag
                ));
            }
            _ => {}
        }
        if self.travel.mode == Transfer::CopyNotMove {
            return Some(
                "copied, not moved: entries outside this run also read the source tag".to_string(),
            );
        }
        match &self.gate {
            Some(GateVerdict::Verified { by, .. }) if self.changes() => {
                Some(format!("signature verified ({by})"))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
impl PlanEntry {
    /// For unit tests: `create` a version tag `target` (registry,
    /// repository, tag) from `source` at `digest`, by rule `r`.
    pub fn creating(
        target: (&str, &str, &str),
        source: (&str, &str, &str),
        digest: &crate::digest::Digest,
    ) -> PlanEntry {
        PlanEntry {
            action: Action::Create,
            role: Role::Version,
            source: SourceImage {
                registry: source.0.into(),
                repository: source.1.into(),
                tag: source.2.into(),
                digest: digest.clone(),
                media_type: crate::manifest::OCI_MANIFEST.into(),
            },
            target: TargetTag {
                registry: target.0.into(),
                repository: target.1.into(),
                tag: target.2.into(),
                current_digest: None,
                digest: None,
            },
            rules: vec!["r".into()],
            travel: Travel::default(),
            gate: None,
        }
    }
}

#[cfg(test)]
#[path = "entry_tests.rs"]
mod tests;
