//! The result of `apply`: the report written by `--report` (schema in
//! `schemas/report.schema.json`) and the summary printed at the end.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::stats::CopyStatsSnapshot;
use super::status::{Outcome, Status};
use crate::plan::{Plan, PlanEntry, RuleProblem, Shard};

/// The version of the report format.
pub const REPORT_FORMAT: u32 = 1;

/// What became of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// The target tag now points at the image.
    Promoted,
    /// It already did.
    Unchanged,
    /// The target tag was deleted (`prune`).
    Pruned,
    /// The plan refused it (`reason`).
    Blocked,
    /// A reviewed plan no longer matched the registries (`error`).
    Refused,
    /// Copying failed (`error`).
    Failed,
}

/// One plan entry and its outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EntryReport {
    /// Outcome.
    pub status: EntryStatus,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The plan entry.
    #[serde(flatten)]
    pub entry: PlanEntry,
}

/// Counts over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    /// Target tags written.
    pub promoted: usize,
    /// Target tags already in place.
    pub unchanged: usize,
    /// Target tags deleted by `prune`.
    #[serde(default)]
    pub pruned: usize,
    /// Entries the plan refused.
    pub blocked: usize,
    /// Entries refused because the registries changed since planning.
    pub refused: usize,
    /// Entries that failed.
    pub failed: usize,
    /// Rules that could not be planned (see `rule_problems`).
    #[serde(default)]
    pub failed_rules: usize,
    /// Blobs streamed from a source to a target.
    pub blobs_copied: u64,
    /// Blobs mounted inside a target registry (no bytes moved).
    pub blobs_mounted: u64,
    /// Blobs the target already had.
    pub blobs_present: u64,
    /// Blob bytes streamed.
    pub bytes_copied: u64,
    /// Manifests written by digest.
    pub manifests_written: u64,
    /// Tags written.
    pub tags_written: u64,
    /// Source tags deleted by `mode = "move"`.
    pub moved: usize,
    /// HTTP requests sent, over all registries, planning included.
    pub requests: u64,
    /// Of those, requests that change something (PUT, POST, PATCH, DELETE).
    pub write_requests: u64,
    /// Wall-clock time of the run, planning included.
    pub duration_secs: f64,
}

/// `apply --report FILE`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApplyReport {
    /// Report format version.
    pub format: u32,
    /// The hoist version that ran.
    pub hoist_version: String,
    /// `K/N` when the run was one shard of a promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Totals.
    pub summary: RunSummary,
    /// Every entry of the plan with its outcome.
    pub entries: Vec<EntryReport>,
    /// The entries that failed or were refused, again, for quick reading.
    pub failures: Vec<EntryReport>,
    /// Source tags deleted by `mode = "move"`.
    pub moved: Vec<String>,
    /// Remarks that are not failures (a source tag kept, …).
    pub notes: Vec<String>,
    /// Source tags selected but not promoted, and why (the plan's `skipped`).
    #[serde(default)]
    pub skipped: Vec<crate::plan::SkippedTag>,
    /// Rules matching by glob that matched nothing, from the plan: an
    /// `error` one (a registry without a catalog, an empty catalog) was not
    /// done and fails the run; a `warning` does not.
    #[serde(default)]
    pub rule_problems: Vec<RuleProblem>,
    /// The promotion records attached to the images written
    /// (`[settings] record`), one per image per target repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<super::RecordWritten>,
}

impl ApplyReport {
    /// Builds the report of a finished run.
    pub fn new(
        plan: &Plan,
        outcome: &Outcome,
        stats: CopyStatsSnapshot,
        requests: (u64, u64),
        duration_secs: f64,
        shard: Option<Shard>,
    ) -> ApplyReport {
        let mut summary = RunSummary {
            blobs_copied: stats.blobs_copied,
            blobs_mounted: stats.blobs_mounted,
            blobs_present: stats.blobs_present,
            bytes_copied: stats.bytes_copied,
            manifests_written: stats.manifests_written,
            tags_written: stats.tags_written,
            moved: outcome.moved.len(),
            failed_rules: plan.failed_rules(),
            requests: requests.0,
            write_requests: requests.1,
            duration_secs,
            ..RunSummary::default()
        };
        let entries: Vec<EntryReport> = plan
            .entries
            .iter()
            .zip(&outcome.statuses)
            .map(|(entry, status)| {
                let (status, error) = match status {
                    Status::Promoted => (EntryStatus::Promoted, None),
                    Status::Unchanged => (EntryStatus::Unchanged, None),
                    Status::Pruned => (EntryStatus::Pruned, None),
                    Status::Blocked => (EntryStatus::Blocked, None),
                    Status::Refused(why) => (EntryStatus::Refused, Some(why.to_string())),
                    Status::Failed(why) => (EntryStatus::Failed, Some(why.to_string())),
                };
                match status {
                    EntryStatus::Promoted => summary.promoted += 1,
                    EntryStatus::Unchanged => summary.unchanged += 1,
                    EntryStatus::Pruned => summary.pruned += 1,
                    EntryStatus::Blocked => summary.blocked += 1,
                    EntryStatus::Refused => summary.refused += 1,
                    EntryStatus::Failed => summary.failed += 1,
                }
                EntryReport {
                    status,
                    error,
                    entry: entry.clone(),
                }
            })
            .collect();
        let failures = entries
            .iter()
            .filter(|e| matches!(e.status, EntryStatus::Failed | EntryStatus::Refused))
            .cloned()
            .collect();
        ApplyReport {
            format: REPORT_FORMAT,
            hoist_version: env!("CARGO_PKG_VERSION").to_string(),
            shard: shard.map(|shard| shard.to_string()),
            summary,
            entries,
            failures,
            moved: outcome.moved.clone(),
            notes: outcome.notes.clone(),
            skipped: plan.skipped.clone(),
            rule_problems: plan.rule_problems.clone(),
            records: outcome.records.clone(),
        }
    }

    /// Whether everything asked for was done.
    pub fn succeeded(&self) -> bool {
        self.summary.failed
            + self.summary.refused
            + self.summary.blocked
            + self.summary.failed_rules
            == 0
    }
}

/// The JSON Schema of the report, as checked in under `schemas/`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ApplyReport);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
