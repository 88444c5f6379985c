//! `apply` and `promote`: a plan (made now, or reviewed earlier) executed.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::{ApplyArgs, PromoteArgs};
use crate::config::LoadedConfig;
use crate::digest::Digest;
use crate::execute::{self, ApplyReport, CopyStats, Progress, ProgressMode, StoreMap};
use crate::plan::{self, Plan, Shard};
use crate::record::{CiRun, Recorder, SigningKey};
use crate::registry::ReadOnly;
use crate::registry::retry::RetryPolicy;
use crate::registry::stores::Stores;
use crate::render;
use crate::report;
use crate::rules::RuleSet;

use super::error::CommandError;
use super::files::{open_plan_stores, read_plan, write_json};
use super::planning::{log_rule_problems, make_plan, scope_of};
use super::status::{ExitStatus, Observed};

pub(super) fn apply(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    args: &ApplyArgs,
    observed: &mut Observed,
) -> Result<ExitStatus, CommandError> {
    let started = Instant::now();
    let scope = scope_of(&args.scope)?;
    let mut plan = match &args.plan {
        Some(path) => {
            let plan = read_plan(path, &scope)?;
            log_rule_problems(&plan);
            plan
        }
        None => make_plan(stores, loaded, rules.clone(), &scope)?,
    };
    let handles = open_plan_stores(stores, loaded, &plan)?;
    if args.plan.is_some() {
        crate::signed::recheck_reviewed(&mut plan, &rules, &handles);
    }
    report::print_raw(&render::render_table(&plan));
    let plan_summary = render::render_markdown(&plan, render::MarkdownOptions::default());
    if args.dry_run {
        report::append_step_summary(&plan_summary);
        return Ok(match plan.failed_rules() {
            0 => ExitStatus::Success,
            _ => ExitStatus::Failure,
        });
    }
    let run = Run {
        plan: &plan,
        stores: &handles,
        check_preconditions: args.plan.is_some(),
        progress: args.output.progress.into(),
        report: args.output.report.as_deref(),
        shard: scope.shard,
        started,
        retry: stores.settings().retry,
        record: recorder(loaded, args.plan.as_deref())?,
    };
    let (status, outcome) = run.execute()?;
    report::append_step_summary(&format!(
        "{plan_summary}{}",
        render::summary_markdown(&outcome)
    ));
    observed.report = Some(outcome);
    Ok(status)
}

/// A plan ready to execute, and how.
pub(super) struct Run<'a> {
    pub(super) plan: &'a Plan,
    pub(super) stores: &'a StoreMap,
    pub(super) check_preconditions: bool,
    pub(super) progress: ProgressMode,
    pub(super) report: Option<&'a Path>,
    pub(super) shard: Option<Shard>,
    pub(super) started: Instant,
    pub(super) retry: RetryPolicy,
    pub(super) record: Option<Arc<Recorder>>,
}

/// What signs this run's promotion records (`[settings] record`): the key,
/// the CI run the environment names, and the reviewed plan's digest.
fn recorder(
    loaded: &LoadedConfig,
    plan: Option<&Path>,
) -> Result<Option<Arc<Recorder>>, CommandError> {
    let Some(setting) = &loaded.config.settings.record else {
        return Ok(None);
    };
    let key = match (&setting.key, &setting.key_env) {
        (Some(path), _) => SigningKey::read(path)?,
        (None, Some(variable)) => SigningKey::from_env(variable)?,
        // The configuration's check refuses a `record` without a key.
        (None, None) => return Ok(None),
    };
    let plan_digest = match plan {
        Some(path) => Some(Digest::sha256_of(&std::fs::read(path).map_err(
            |reason| super::error::PlanFileProblem::Read {
                path: path.display().to_string(),
                reason,
            },
        )?)),
        None => None,
    };
    let run = CiRun::from_env(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    Ok(Some(Arc::new(Recorder::new(key, run, plan_digest))))
}

impl Run<'_> {
    /// Runs the plan: the exit status, and the report of what was done.
    pub(super) fn execute(&self) -> Result<(ExitStatus, ApplyReport), CommandError> {
        // The same images the executor writes and the estimate counts.
        let images = plan::images_to_write(&self.plan.entries, |_| true);
        let progress = Progress::new(
            self.progress,
            images.len() as u64,
            self.plan.estimate.bytes_to_copy,
        );
        let stats = CopyStats::default();
        let options = execute::Options {
            check_preconditions: self.check_preconditions,
            retry: self.retry,
            record: self.record.clone(),
        };
        execute::stop::install();
        let outcome = execute::run(self.plan, self.stores, &stats, &progress, options);
        progress.finish();
        let requests = self.stores.values().fold((0, 0), |(all, writes), store| {
            (
                all + store.counters().requests(),
                writes + store.counters().writes(),
            )
        });
        let report = ApplyReport::new(
            self.plan,
            &outcome,
            stats.snapshot(),
            requests,
            self.started.elapsed().as_secs_f64(),
            self.shard,
        );
        report::print_lines(&render::summary_lines(&report));
        if let Some(path) = self.report {
            write_json(path, &report)?;
        }
        let status = match execute::stop::requested() {
            Some(signal_hook::consts::SIGINT) => ExitStatus::Interrupted,
            Some(_) => ExitStatus::Terminated,
            None if report.succeeded() => ExitStatus::Success,
            None => ExitStatus::Failure,
        };
        Ok((status, report))
    }
}

/// Executes the plan of `promote` or `docker-promote` (from one source to
/// one target, both in `handles`): its exit status.
pub(super) fn run_promotion(
    plan: &Plan,
    handles: &StoreMap,
    (stores, loaded): (&Stores, &LoadedConfig),
    output: &crate::cli::Output,
    started: Instant,
) -> Result<ExitStatus, CommandError> {
    let (status, _) = Run {
        plan,
        stores: handles,
        check_preconditions: false,
        progress: output.progress.into(),
        report: output.report.as_deref(),
        shard: None,
        started,
        retry: stores.settings().retry,
        record: recorder(loaded, None)?,
    }
    .execute()?;
    Ok(status)
}

/// Read-only handles on the stores of a command line, by the names its
/// plan gives them (one handle where source and target share a name).
pub(super) fn read_only<'a>(
    stores: impl IntoIterator<Item = (String, &'a std::sync::Arc<dyn crate::registry::Registry>)>,
) -> crate::discover::Handles {
    stores
        .into_iter()
        .map(|(name, store)| (name, ReadOnly::new(store.clone())))
        .collect()
}

/// The gate `promote`'s signature and attestation flags ask for.
fn promote_gate(args: &PromoteArgs) -> Result<Option<Arc<crate::gate::Gate>>, CommandError> {
    let gate = crate::promote::attestations_of(
        &args.attestation_types,
        &args.attestation_keys,
        &args.attestation_conditions,
    )
    .and_then(|attestations| {
        crate::promote::gate_of(
            &args.signature_keys,
            &args.signature_annotations,
            attestations,
        )
    });
    gate.map_err(|e| CommandError::Destination(Box::new(e)))
}

pub(super) fn promote(
    stores: &Stores,
    loaded: &LoadedConfig,
    args: &PromoteArgs,
) -> Result<ExitStatus, CommandError> {
    let started = Instant::now();
    let is_name = |name: &str| stores.is_registry_name(name);
    for message in args.stevedore.deprecations() {
        report::log(&message);
    }
    let source = crate::promote::source_reference(&args.source, &is_name)?;
    let destination = crate::promote::destination(&args.request(), &source, &is_name)
        .map_err(|e| CommandError::Destination(Box::new(e)))?;
    for note in &destination.notes {
        report::log(note);
    }
    let gate = promote_gate(args)?;
    let source_store = stores.open(&source.location)?;
    let target_store = stores.open(&destination.target.location)?;
    // Planning (all of `--dry-run`) sees read-only handles: it cannot write.
    let handles = read_only([
        (source.location.to_string(), &source_store),
        (destination.target.location.to_string(), &target_store),
    ]);
    let plan = crate::promote::plan(
        &source,
        &destination,
        &crate::promote::Carry {
            travel: crate::plan::Travel {
                platforms: args.platforms.clone(),
                referrers: !args.no_referrers,
                mode: if args.move_source {
                    crate::plan::Transfer::Move
                } else {
                    crate::plan::Transfer::Copy
                },
            },
            gate,
        },
        &handles,
    )
    .map_err(|cause| CommandError::Promote {
        source_ref: source.to_string(),
        target_ref: destination.target.to_string(),
        cause: Box::new(cause),
    })?;
    report::print_raw(&render::render_table(&plan));
    if args.dry_run {
        // A refusal by --require-signature fails the dry run as it would the run.
        return Ok(
            match plan
                .entries
                .iter()
                .any(|e| e.gate.as_ref().is_some_and(|g| g.refusal().is_some()))
            {
                true => ExitStatus::Failure,
                false => ExitStatus::Success,
            },
        );
    }
    let handles = StoreMap::from([
        (source.location.to_string(), source_store),
        (destination.target.location.to_string(), target_store),
    ]);
    let status = run_promotion(&plan, &handles, (stores, loaded), &args.output, started)?;
    if status == ExitStatus::Success {
        // The result scripts want: where the image now is, by digest.
        let main = destination.tags.first().map(|(tag, _)| tag);
        let digest = plan
            .entries
            .iter()
            .find(|e| Some(&e.target.tag) == main)
            .map(|e| e.target_digest().to_string())
            .unwrap_or_default();
        report::print_lines(&[format!("{}@{digest}", destination.target)]);
    }
    Ok(status)
}
