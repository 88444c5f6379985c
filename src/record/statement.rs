//! The in-toto Statement v1 a record is, with its promotion-record
//! predicate: kpromo's fields (`srcRef`, `dstRef`, `digest`, `timestamp`,
//! `builderId`) and what a reviewer of hoist's promotions wants besides.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// An in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a promotion record: the one proposed to in-toto
/// (kpromo's `https://k8s.io/promo-tools/promotion/v1`, its fields kept).
pub const PROMOTION_PREDICATE: &str = "https://in-toto.io/attestation/promotion-record/v1";

/// A statement about the subjects, of a predicate type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement<P> {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// What it is about.
    pub subject: Vec<Subject>,
    /// What the predicate is.
    pub predicate_type: String,
    /// The predicate.
    pub predicate: P,
}

/// An artifact a statement is about: a name and its digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The repository, as `host/repository`.
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: std::collections::BTreeMap<String, String>,
}

impl Subject {
    /// `name` at `digest`.
    pub fn new(name: &str, digest: &Digest) -> Subject {
        Subject {
            name: name.to_string(),
            digest: [(digest.algorithm().to_string(), digest.hex().to_string())].into(),
        }
    }

    /// Whether it names `digest`.
    pub fn is(&self, digest: &Digest) -> bool {
        self.digest.get(digest.algorithm()).map(String::as_str) == Some(digest.hex())
    }
}

/// What a promotion record says: one image written to one target
/// repository by one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    /// Where it was promoted from: `host/repository@digest`.
    pub src_ref: String,
    /// Where it was promoted to: `host/repository@digest`.
    pub dst_ref: String,
    /// The digest written.
    pub digest: String,
    /// When (RFC 3339, UTC).
    pub timestamp: String,
    /// The promoter: `hoist/<version>`.
    pub builder_id: String,
    /// The rules that promoted it, as the configuration names them.
    pub rules: Vec<String>,
    /// The source registry, by its name in the configuration and its address.
    pub source: Endpoint,
    /// The target registry, likewise.
    pub target: Endpoint,
    /// The source tags it was promoted from.
    pub source_tags: Vec<String>,
    /// Every target tag this run wrote for it.
    pub tags: Vec<String>,
    /// The digest of the reviewed plan applied (`apply --plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    /// The gate that admitted it, when a rule has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Admission>,
    /// The CI run that promoted it, where the environment says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<CiRun>,
}

/// A registry as the configuration names it (never with credentials).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Its name in `[registries]`.
    pub registry: String,
    /// Where it is (`host:port`, or `oci-layout:dir`).
    pub location: String,
}

/// A gate's verdict on the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    /// The rule whose gate admitted it.
    pub rule: String,
    /// What verified: the key or identity, as the rule names it.
    pub verified_by: String,
}

/// A CI run, as its environment describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiRun {
    /// The CI system.
    pub system: String,
    /// The run's page.
    pub url: String,
}

impl CiRun {
    /// The run `vars` describe (GitHub Actions, GitLab CI, Jenkins, or
    /// `HOIST_RUN_URL`), if any.
    pub fn from_env(vars: &dyn Fn(&str) -> Option<String>) -> Option<CiRun> {
        let run = |system: &str, url: String| {
            Some(CiRun {
                system: system.to_string(),
                url,
            })
        };
        if let (Some(server), Some(repository), Some(id)) = (
            vars("GITHUB_SERVER_URL"),
            vars("GITHUB_REPOSITORY"),
            vars("GITHUB_RUN_ID"),
        ) {
            let attempt = vars("GITHUB_RUN_ATTEMPT")
                .map(|a| format!("/attempts/{a}"))
                .unwrap_or_default();
            return run(
                "github-actions",
                format!("{server}/{repository}/actions/runs/{id}{attempt}"),
            );
        }
        if let Some(url) = vars("CI_JOB_URL") {
            return run("gitlab-ci", url);
        }
        if let Some(url) = vars("BUILD_URL") {
            return run("jenkins", url);
        }
        vars("HOIST_RUN_URL").and_then(|url| run("other", url))
    }
}

/// `seconds` since the Unix epoch as RFC 3339 UTC (`2026-12-07T16:40:00Z`).
pub fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}
