//! `plan` and `verify`: the rules in scope discovered and planned through
//! read-only handles.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::cli::{PlanArgs, PlanFormat, ScopeArgs, VerifyArgs};
use crate::config::LoadedConfig;
use crate::discover::{Handles, discover};
use crate::plan::{self, Plan, Scope};
use crate::reference::Location;
use crate::registry::ReadOnly;
use crate::registry::stores::Stores;
use crate::render;
use crate::report;
use crate::rules::RuleSet;
use crate::settings;

use super::error::CommandError;
use super::files::{open_plan_stores, read_plan, to_json, write_json};
use super::status::{ExitStatus, Observed};

/// The scope a command's flags ask for: `--rule` names, and the shard from
/// `--shard` or, with `--shard-from-env`, from an Indexed Job's environment.
pub(super) fn scope_of(args: &ScopeArgs) -> Result<Scope, CommandError> {
    let shard = match args.shard_from_env {
        true => Some(settings::shard_from_env()?),
        false => args.shard,
    };
    Ok(Scope {
        rules: args.rules.clone(),
        shard,
    })
}

/// Discovers and plans the rules in scope, through read-only handles only.
pub(super) fn make_plan(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    scope: &Scope,
) -> Result<Plan, CommandError> {
    let all_rules = rules.clone();
    let rules = rules.only(&scope.rules)?;
    let (handles, registries) = read_handles(stores, loaded, &rules)?;
    let started = Instant::now();
    let inventory = discover(&rules, &handles)?;
    let mut plan = plan::build(&rules, &inventory, registries, scope.shard)
        .map_err(|conflicts| conflict_error(loaded, &conflicts))?;
    if !scope.rules.is_empty() {
        // Rules left out may read the same source tags: never move under --rule
        // what another rule still has to copy from that registry.
        let others: BTreeSet<&str> = all_rules
            .rules
            .iter()
            .filter(|r| !scope.rules.contains(&r.name))
            .map(|r| r.from.as_str())
            .collect();
        plan::keep_moves_within(&mut plan.entries, |e| {
            !others.contains(e.source.registry.as_str())
        });
    }
    log_rule_problems(&plan);
    let requests: u64 = handles.values().map(|h| h.counters().requests()).sum();
    report::log(&format!(
        "planned {} target tags from {} rules in {:.2}s ({} requests)",
        plan.entries.len(),
        rules.rules.len(),
        started.elapsed().as_secs_f64(),
        requests
    ));
    Ok(plan)
}

/// Says on stderr each rule that matched nothing, as `error:` (the run
/// will exit 1) or `warning:` lines.
pub(super) fn log_rule_problems(plan: &Plan) {
    for problem in &plan.rule_problems {
        report::log(&problem.to_string());
    }
}

/// Read-only handles on every registry the rules name, and their addresses
/// as configured (for the plan).
fn read_handles(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: &RuleSet,
) -> Result<(Handles, BTreeMap<String, String>), CommandError> {
    let names: BTreeSet<&String> = rules
        .rules
        .iter()
        .flat_map(|r| std::iter::once(&r.from).chain(&r.to))
        .collect();
    let mut handles = Handles::new();
    let mut registries = BTreeMap::new();
    for name in names {
        let store = stores.open(&Location::Named(name.clone()))?;
        handles.insert(name.clone(), ReadOnly::new(store));
        if let Some(registry) = loaded.config.registries.get(name) {
            registries.insert(name.clone(), registry.url.clone());
        }
    }
    Ok((handles, registries))
}

/// Conflicting rules, as diagnostics pointing at both rules in the file.
fn conflict_error(loaded: &LoadedConfig, conflicts: &[plan::Conflict]) -> CommandError {
    // The first conflicts show the pattern; hundreds more would bury it.
    const SHOWN: usize = 10;
    let mut problems: Vec<_> = conflicts.iter().take(SHOWN).map(|c| c.problem()).collect();
    if conflicts.len() > SHOWN
        && let Some(last) = problems.last_mut()
    {
        last.message = format!(
            "{} (and {} more conflicts like these)",
            last.message,
            conflicts.len() - SHOWN
        );
    }
    match loaded.validate(problems) {
        Err(error) => CommandError::Config(error),
        Ok(()) => CommandError::Conflicts,
    }
}

pub(super) fn plan_command(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    args: &PlanArgs,
) -> Result<ExitStatus, CommandError> {
    let scope = scope_of(&args.scope)?;
    // A reviewed plan that cannot be read fails before any registry is asked.
    let reviewed = match &args.diff {
        Some(path) => Some((path.display().to_string(), read_plan(path, &scope)?)),
        None => None,
    };
    let plan = make_plan(stores, loaded, rules, &scope)?;
    let options = render::MarkdownOptions {
        verbose: args.verbose,
        max_chars: args.max_chars,
    };
    let mut markdown = render::render_markdown(&plan, options);
    match &reviewed {
        None => print_plan(&plan, args.format, &markdown)?,
        Some((name, reviewed)) => {
            let diff = plan::diff(reviewed, &plan);
            let diff_markdown = render::render_diff_markdown(&diff, name);
            print_diff(&diff, name, args.format, &diff_markdown)?;
            markdown.push_str(&diff_markdown);
        }
    }
    report::append_step_summary(&markdown);
    if let Some(path) = &args.out {
        write_json(path, &plan)?;
    }
    // A rule that could not be planned is an error, also for
    // --detailed-exitcode (where 1 means error): the others are planned.
    Ok(
        match (
            plan.failed_rules() > 0,
            args.detailed_exitcode,
            plan.has_changes(),
        ) {
            (true, _, _) => ExitStatus::Failure,
            (false, true, true) => ExitStatus::Changes,
            _ => ExitStatus::Success,
        },
    )
}

/// The plan on stdout, in the format asked for.
fn print_plan(plan: &Plan, format: PlanFormat, markdown: &str) -> Result<(), CommandError> {
    match format {
        PlanFormat::Table => report::print_raw(&render::render_table(plan)),
        PlanFormat::Json => report::print_raw(&to_json(plan)?),
        PlanFormat::Markdown => report::print_raw(markdown),
    }
    Ok(())
}

/// `plan --diff`: only the difference on stdout, in the format asked for.
fn print_diff(
    diff: &plan::PlanDiff,
    reviewed: &str,
    format: PlanFormat,
    markdown: &str,
) -> Result<(), CommandError> {
    match format {
        PlanFormat::Table => report::print_raw(&render::render_diff_table(diff, reviewed)),
        PlanFormat::Json => report::print_raw(&to_json(diff)?),
        PlanFormat::Markdown => report::print_raw(markdown),
    }
    Ok(())
}

/// `verify --repair`: the incomplete images written again from their
/// sources, as `apply` writes a new one (each blob asked for, copied when
/// missing; child manifests, the manifest and its tags put again).
fn repair(
    plan: &crate::plan::Plan,
    checked: &crate::verify::Checked,
    handles: &crate::registry::StoreMap,
) {
    report::print_lines(&checked.lines);
    let repairing = crate::verify::repair_plan(plan, &checked.incomplete);
    report::log(&format!(
        "repairing {} ({}) from their sources",
        report::count(
            checked.incomplete.len(),
            "incomplete image",
            "incomplete images"
        ),
        report::count(repairing.entries.len(), "tag", "tags"),
    ));
    let stats = crate::execute::CopyStats::default();
    let progress = crate::execute::Progress::new(crate::execute::ProgressMode::Never, 0, 0);
    let outcome = crate::execute::run(
        &repairing,
        handles,
        &stats,
        &progress,
        crate::execute::Options::default(),
    );
    for (entry, status) in repairing.entries.iter().zip(&outcome.statuses) {
        let name = format!(
            "{}/{}:{}",
            entry.target.registry, entry.target.repository, entry.target.tag
        );
        match status {
            crate::execute::Status::Failed(e) | crate::execute::Status::Refused(e) => {
                report::log(&format!("repair of {name} failed: {e}"));
            }
            _ => report::log(&format!("repaired {name}")),
        }
    }
    report::log("verifying again");
}

pub(super) fn verify_command(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    args: &VerifyArgs,
    observed: &mut Observed,
) -> Result<ExitStatus, CommandError> {
    let scope = scope_of(&args.scope)?;
    let plan = make_plan(stores, loaded, rules.clone(), &scope)?;
    let handles = open_plan_stores(stores, loaded, &plan)?;
    let mut checked = crate::verify::check(&plan, &handles);
    if args.repair && !checked.incomplete.is_empty() {
        repair(&plan, &checked, &handles);
        checked = crate::verify::check(&plan, &handles);
    }
    let mut problems = checked.lines;
    problems.extend(crate::signed::verify_targets(&plan, &rules, &handles));
    problems.extend(crate::verify::records(&plan, &rules, &handles));
    observed.verified = Some(crate::metrics::Verified {
        tags: plan.entries.len(),
        problems: problems.len(),
    });
    let failed_rules = plan.failed_rules();
    if problems.is_empty() {
        report::print_lines(&[format!(
            "verified {}: every one points at a complete image{}",
            report::count(plan.entries.len(), "target tag", "target tags"),
            match failed_rules {
                0 => String::new(),
                n => format!(" ({} not planned)", report::count(n, "rule", "rules")),
            }
        )]);
        return Ok(match failed_rules {
            0 => ExitStatus::Success,
            _ => ExitStatus::Failure,
        });
    }
    report::print_lines(&problems);
    report::log(&format!(
        "verify: {} in {}",
        report::count(problems.len(), "problem", "problems"),
        report::count(plan.entries.len(), "target tag", "target tags")
    ));
    Ok(ExitStatus::Failure)
}
