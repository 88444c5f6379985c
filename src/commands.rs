//! What each subcommand does, from resolved arguments to an exit status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::{
    ApplyArgs, Cli, Command, PlanArgs, PlanFormat, PromoteArgs, SchemaDocument, ScopeArgs,
    VerifyArgs,
};
use crate::config::{ConfigError, LoadedConfig};
use crate::discover::{DiscoveryError, Handles, discover};
use crate::execute::{self, ApplyReport, CopyStats, Progress, ProgressMode, StoreMap};
use crate::plan::{self, Plan, Scope, Shard};
use crate::promote::PromoteError;
use crate::reference::Location;
use crate::reference::{self, Reference, ReferenceError};
use crate::registry::ReadOnly;
use crate::registry::RegistryError;
use crate::registry::retry::RetryPolicy;
use crate::registry::spec::RegistrySpec;
use crate::registry::stores::{OpenError, Stores};
use crate::report;
use crate::rules::{RuleSet, UnknownRule};
use crate::settings::{self, SettingsError};

/// The default configuration file, used when present.
const DEFAULT_CONFIG: &str = "promotions.toml";

/// How a run ended, as the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done, or nothing to do.
    Success = 0,
    /// Some promotion failed or was refused.
    Failure = 1,
    /// Bad usage or configuration.
    Usage = 2,
    /// `plan --detailed-exitcode`: changes are pending.
    Changes = 3,
    /// Stopped by SIGINT (128 + 2) after finishing what was in flight.
    Interrupted = 130,
    /// Stopped by SIGTERM (128 + 15) after finishing what was in flight.
    Terminated = 143,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status as u8)
    }
}

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The configuration file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No `-c FILE` and no `promotions.toml` here, for a command that needs one.
    #[error("no {DEFAULT_CONFIG} in this directory: pass -c FILE or set HOIST_CONFIG")]
    NoConfigFile,
    /// Settings, or the environment a flag reads, make no sense.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The worker threads could not be started.
    #[error("cannot start {jobs} worker threads: {reason}")]
    ThreadPool {
        /// Threads asked for.
        jobs: usize,
        /// Why they could not start.
        reason: rayon::ThreadPoolBuildError,
    },
    /// `--rule` names no rule.
    #[error(transparent)]
    UnknownRule(#[from] UnknownRule),
    /// Rules write one target tag with different digests (each conflict was shown).
    #[error("conflicting rules")]
    Conflicts,
    /// A reviewed plan file (`apply --plan`) cannot be used.
    #[error(transparent)]
    PlanFile(#[from] PlanFileProblem),
    /// A reviewed plan names a registry the configuration puts elsewhere.
    #[error("the plan has registry `{name}` at {planned}, the configuration at {configured}")]
    PlanRegistry {
        /// Registry name.
        name: String,
        /// Its address in the plan.
        planned: String,
        /// Its address in the configuration.
        configured: String,
    },
    /// A reference on the command line is malformed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// `hoist promote` arguments that cannot be done.
    #[error(transparent)]
    Destination(Box<PromoteError>),
    /// A store cannot be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Registries could not be read while planning.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// A promotion could not be planned; the cause is attached.
    #[error("promoting {source_ref} to {target_ref} failed: {cause}")]
    Promote {
        /// What was being copied.
        source_ref: String,
        /// Where to.
        target_ref: String,
        /// Why it failed.
        cause: Box<PromoteError>,
    },
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a reviewed plan file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileProblem {
    /// It cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: std::io::Error,
    },
    /// It is not a plan.
    #[error("{path} is not a plan (plan --out): {reason}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        reason: serde_json::Error,
    },
    /// It is a plan of another format version.
    #[error(
        "{path} has plan format {found}; this hoist reads format {}",
        plan::PLAN_FORMAT
    )]
    Format {
        /// The file.
        path: String,
        /// The file's format version.
        found: u32,
    },
}

impl CommandError {
    /// The exit status: configuration and usage errors are 2, the rest 1.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CommandError::Registry(_)
            | CommandError::Discovery(_)
            | CommandError::Promote { .. }
            | CommandError::Write { .. } => ExitStatus::Failure,
            _ => ExitStatus::Usage,
        }
    }

    /// Prints the error on stderr: a configuration diagnostic in miette's
    /// graphical form, pointing into the file; anything else one line per cause.
    pub fn print(&self) {
        if let CommandError::Config(config) = self
            && let Some(rendered) = report::render_diagnostic(config)
        {
            report::log(rendered.trim_end());
            return;
        }
        report::print_error(self);
    }
}

/// Runs a parsed command line; an error is printed and becomes the exit status
/// (1 under `plan --detailed-exitcode`, as it promises).
pub fn run(cli: Cli) -> ExitStatus {
    let detailed = cli.detailed_exitcode();
    match dispatch(cli) {
        Ok(status) => status,
        Err(error) => {
            error.print();
            if detailed {
                ExitStatus::Failure
            } else {
                error.exit_status()
            }
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitStatus, CommandError> {
    if let Command::Schema { document } = &cli.command {
        report::print_raw(&match document {
            SchemaDocument::Config => crate::config::json_schema(),
            SchemaDocument::Plan => crate::plan::json_schema(),
            SchemaDocument::Report => crate::execute::summary::json_schema(),
        });
        return Ok(ExitStatus::Success);
    }
    let needs_file = matches!(
        cli.command,
        Command::Plan(_) | Command::Verify(_) | Command::Check
    );
    let mut loaded = load_config(cli.config.as_deref(), needs_file)?;
    let (rules, problems) = RuleSet::compile(&loaded.config);
    loaded.validate(problems)?;
    loaded.config.settings =
        settings::resolve(&loaded.config.settings, &settings::Flags { jobs: cli.jobs })?;
    if let Command::Check = cli.command {
        let settings = &loaded.config.settings;
        report::log(&format!(
            "{}: ok ({}, {}; jobs {}, retries {}, timeout {}s)",
            loaded.source.name(),
            report::count(loaded.config.registries.len(), "registry", "registries"),
            report::count(rules.rules.len(), "rule", "rules"),
            settings.jobs,
            settings.retries,
            settings.timeout_secs,
        ));
        return Ok(ExitStatus::Success);
    }
    let jobs = loaded.config.settings.jobs;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("hoist-{i}"))
        .build()
        .map_err(|reason| CommandError::ThreadPool { jobs, reason })?;
    let store_settings = settings::store_settings(&loaded.config.settings);
    let stores = Stores::new(loaded.registries.clone(), store_settings);
    pool.install(|| match &cli.command {
        Command::Ls { target } => ls(&stores, target),
        Command::Promote(args) => promote(&stores, args),
        Command::Plan(args) => plan_command(&stores, &loaded, rules, args),
        Command::Apply(args) => apply(&stores, &loaded, rules, args),
        Command::Verify(args) => verify_command(&stores, &loaded, rules, args),
        Command::Schema { .. } | Command::Check => Ok(ExitStatus::Success),
    })
}

fn load_config(path: Option<&Path>, required: bool) -> Result<LoadedConfig, CommandError> {
    match path {
        Some(path) => Ok(LoadedConfig::load(path)?),
        None if Path::new(DEFAULT_CONFIG).is_file() => {
            Ok(LoadedConfig::load(Path::new(DEFAULT_CONFIG))?)
        }
        None if required => Err(CommandError::NoConfigFile),
        None => Ok(LoadedConfig {
            base_dir: PathBuf::from("."),
            ..LoadedConfig::default()
        }),
    }
}

/// The scope a command's flags ask for: `--rule` names, and the shard from
/// `--shard` or, with `--shard-from-env`, from an Indexed Job's environment.
fn scope_of(args: &ScopeArgs) -> Result<Scope, CommandError> {
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
fn make_plan(
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

fn plan_command(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    args: &PlanArgs,
) -> Result<ExitStatus, CommandError> {
    let scope = scope_of(&args.scope)?;
    let plan = make_plan(stores, loaded, rules, &scope)?;
    match args.format {
        PlanFormat::Table => report::print_raw(&plan::render_table(&plan)),
        PlanFormat::Json => report::print_raw(&to_json(&plan)?),
    }
    if let Some(path) = &args.out {
        write_json(path, &plan)?;
    }
    Ok(match (args.detailed_exitcode, plan.has_changes()) {
        (true, true) => ExitStatus::Changes,
        _ => ExitStatus::Success,
    })
}

fn apply(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    args: &ApplyArgs,
) -> Result<ExitStatus, CommandError> {
    let started = Instant::now();
    let scope = scope_of(&args.scope)?;
    let plan = match &args.plan {
        Some(path) => read_plan(path, &scope)?,
        None => make_plan(stores, loaded, rules, &scope)?,
    };
    report::print_raw(&plan::render_table(&plan));
    if args.dry_run {
        return Ok(ExitStatus::Success);
    }
    let handles = open_plan_stores(stores, loaded, &plan)?;
    let run = Run {
        plan: &plan,
        stores: &handles,
        check_preconditions: args.plan.is_some(),
        progress: args.output.progress.into(),
        report: args.output.report.as_deref(),
        shard: scope.shard,
        started,
        retry: stores.settings().retry,
    };
    run.execute()
}

/// A plan ready to execute, and how.
struct Run<'a> {
    plan: &'a Plan,
    stores: &'a StoreMap,
    check_preconditions: bool,
    progress: ProgressMode,
    report: Option<&'a Path>,
    shard: Option<Shard>,
    started: Instant,
    retry: RetryPolicy,
}

impl Run<'_> {
    fn execute(&self) -> Result<ExitStatus, CommandError> {
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
        report::print_lines(&report.render());
        if let Some(path) = self.report {
            write_json(path, &report)?;
        }
        Ok(match execute::stop::requested() {
            Some(signal_hook::consts::SIGINT) => ExitStatus::Interrupted,
            Some(_) => ExitStatus::Terminated,
            None if report.succeeded() => ExitStatus::Success,
            None => ExitStatus::Failure,
        })
    }
}

/// Reads a reviewed plan, narrowed to the scope.
fn read_plan(path: &Path, scope: &Scope) -> Result<Plan, CommandError> {
    let shown = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|reason| PlanFileProblem::Read {
        path: shown(),
        reason,
    })?;
    let mut plan: Plan = serde_json::from_str(&text).map_err(|reason| PlanFileProblem::Parse {
        path: shown(),
        reason,
    })?;
    if plan.format != plan::PLAN_FORMAT {
        return Err(PlanFileProblem::Format {
            path: shown(),
            found: plan.format,
        }
        .into());
    }
    scope.narrow(&mut plan.entries);
    Ok(plan)
}

/// Opens every registry a plan names: through the configuration when it
/// has that name (credentials, limits), else by the address in the plan.
fn open_plan_stores(
    stores: &Stores,
    loaded: &LoadedConfig,
    plan: &Plan,
) -> Result<StoreMap, CommandError> {
    let mut handles = StoreMap::new();
    for (name, url) in &plan.registries {
        let location = match loaded.config.registries.get(name) {
            Some(configured) if configured.url == *url => Location::Named(name.clone()),
            Some(configured) => {
                return Err(CommandError::PlanRegistry {
                    name: name.clone(),
                    planned: url.clone(),
                    configured: configured.url.clone(),
                });
            }
            None => match RegistrySpec::parse(url) {
                Ok(RegistrySpec::OciLayout(dir)) => Location::OciLayout(dir),
                _ => Location::Host(url.clone()),
            },
        };
        handles.insert(name.clone(), stores.open(&location)?);
    }
    Ok(handles)
}

fn verify_command(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    args: &VerifyArgs,
) -> Result<ExitStatus, CommandError> {
    let scope = scope_of(&args.scope)?;
    let plan = make_plan(stores, loaded, rules, &scope)?;
    let handles = open_plan_stores(stores, loaded, &plan)?;
    let problems = crate::verify::verify(&plan, &handles);
    if problems.is_empty() {
        report::print_lines(&[format!(
            "verified {}: every one points at a complete image",
            report::count(plan.entries.len(), "target tag", "target tags")
        )]);
        return Ok(ExitStatus::Success);
    }
    report::print_lines(&problems);
    report::log(&format!(
        "verify: {} in {}",
        report::count(problems.len(), "problem", "problems"),
        report::count(plan.entries.len(), "target tag", "target tags")
    ));
    Ok(ExitStatus::Failure)
}

fn promote(stores: &Stores, args: &PromoteArgs) -> Result<ExitStatus, CommandError> {
    let started = Instant::now();
    let is_name = |name: &str| stores.is_registry_name(name);
    let source = Reference::parse(&args.source, &is_name)?;
    let destination = crate::promote::destination(args, &source, &is_name)
        .map_err(|e| CommandError::Destination(Box::new(e)))?;
    let source_store = stores.open(&source.location)?;
    let target_store = stores.open(&destination.target.location)?;
    // Planning (all of `--dry-run`) sees read-only handles: it cannot write.
    let plan = crate::promote::plan(
        &source,
        &ReadOnly::new(source_store.clone()),
        &destination,
        &ReadOnly::new(target_store.clone()),
        &args.platforms,
    )
    .map_err(|cause| CommandError::Promote {
        source_ref: source.to_string(),
        target_ref: destination.target.to_string(),
        cause: Box::new(cause),
    })?;
    report::print_raw(&plan::render_table(&plan));
    if args.dry_run {
        return Ok(ExitStatus::Success);
    }
    let handles = StoreMap::from([
        (source.location.to_string(), source_store),
        (destination.target.location.to_string(), target_store),
    ]);
    let status = Run {
        plan: &plan,
        stores: &handles,
        check_preconditions: false,
        progress: args.output.progress.into(),
        report: args.output.report.as_deref(),
        shard: None,
        started,
        retry: stores.settings().retry,
    }
    .execute()?;
    if status == ExitStatus::Success {
        // The result scripts want: where the image now is, by digest.
        let digest = plan
            .entries
            .first()
            .map(|e| e.target_digest().to_string())
            .unwrap_or_default();
        report::print_lines(&[format!("{}@{digest}", destination.target)]);
    }
    Ok(status)
}

fn ls(stores: &Stores, target: &str) -> Result<ExitStatus, CommandError> {
    let (location, repository) =
        reference::parse_listing(target, &|name| stores.is_registry_name(name))?;
    let store = stores.open(&location)?;
    let lines = match repository {
        Some(repository) => store.tags(&repository)?,
        None => store.catalog()?,
    };
    report::print_lines(&lines);
    Ok(ExitStatus::Success)
}

fn to_json(value: &impl Serialize) -> Result<String, CommandError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| CommandError::Write {
        path: "stdout".to_string(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    Ok(text)
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CommandError> {
    std::fs::write(path, to_json(value)?).map_err(|source| CommandError::Write {
        path: path.display().to_string(),
        source,
    })
}
