//! What each subcommand does, from resolved arguments to an exit status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::{
    ApplyArgs, Cli, Command, PlanArgs, PlanFormat, PromoteArgs, SchemaDocument, Scope,
};
use crate::config::{ConfigError, LoadedConfig};
use crate::discover::{DiscoveryError, Handles, discover};
use crate::execute::{CopyStats, CopyStatsSnapshot, ImageCopy};
use crate::plan::{self, Plan};
use crate::reference::Location;
use crate::reference::{self, Reference, ReferenceError};
use crate::registry::ReadOnly;
use crate::registry::RegistryError;
use crate::registry::stores::{OpenError, Stores};
use crate::report;
use crate::rules::RuleSet;
use crate::settings;

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
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status as u8)
    }
}

impl ExitStatus {
    /// The status an error maps to: configuration and usage errors are 2, the rest 1.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> ExitStatus {
        match error.downcast_ref::<CommandError>() {
            Some(
                CommandError::Config(_)
                | CommandError::Usage(_)
                | CommandError::Reference(_)
                | CommandError::Open(_),
            ) => ExitStatus::Usage,
            _ => ExitStatus::Failure,
        }
    }
}

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CommandError {
    /// The configuration file is unusable.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// The command line makes no sense.
    #[error("{0}")]
    Usage(String),
    /// A reference on the command line is malformed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A store cannot be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Registries could not be read while planning.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// A promotion failed; the cause is attached.
    #[error("promoting {source_ref} to {target_ref} failed: {cause}")]
    Promote {
        /// What was being copied.
        source_ref: String,
        /// Where to.
        target_ref: String,
        /// Why it failed.
        cause: Box<RegistryError>,
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

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitStatus, Box<dyn std::error::Error + Send + Sync>> {
    if let Command::Schema { document } = &cli.command {
        report::print_raw(&match document {
            SchemaDocument::Config => crate::config::json_schema(),
            SchemaDocument::Plan => crate::plan::json_schema(),
        });
        return Ok(ExitStatus::Success);
    }
    let needs_file = matches!(
        cli.command,
        Command::Plan(_) | Command::Apply(_) | Command::Check
    );
    let mut loaded = load_config(cli.config.as_deref(), needs_file)?;
    let (rules, problems) = RuleSet::compile(&loaded.config);
    loaded.validate(problems).map_err(CommandError::Config)?;
    loaded.config.settings =
        settings::resolve(&loaded.config.settings, &settings::Flags { jobs: cli.jobs })
            .map_err(|e| CommandError::Usage(format!("settings: {e}")))?;
    if let Command::Check = cli.command {
        report::log(&format!(
            "{}: ok ({}, {})",
            loaded.source.name(),
            report::count(loaded.config.registries.len(), "registry", "registries"),
            report::count(rules.rules.len(), "rule", "rules"),
        ));
        return Ok(ExitStatus::Success);
    }
    let jobs = loaded.config.settings.jobs;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("hoist-{i}"))
        .build()
        .map_err(|e| CommandError::Usage(format!("cannot start {jobs} worker threads: {e}")))?;
    let stores = Stores::new(loaded.clone(), jobs);
    let status = pool.install(|| match &cli.command {
        Command::Ls { target } => ls(&stores, target),
        Command::Promote(args) => promote(&stores, args),
        Command::Plan(args) => plan_command(&stores, &loaded, rules, args),
        Command::Apply(args) => apply(&stores, &loaded, rules, args),
        Command::Schema { .. } | Command::Check => Ok(ExitStatus::Success),
    })?;
    Ok(status)
}

fn load_config(path: Option<&Path>, required: bool) -> Result<LoadedConfig, CommandError> {
    match path {
        Some(path) => Ok(LoadedConfig::load(path)?),
        None if Path::new(DEFAULT_CONFIG).is_file() => {
            Ok(LoadedConfig::load(Path::new(DEFAULT_CONFIG))?)
        }
        None if required => Err(CommandError::Usage(format!(
            "no {DEFAULT_CONFIG} in this directory: pass -c FILE or set HOIST_CONFIG"
        ))),
        None => Ok(LoadedConfig {
            base_dir: PathBuf::from("."),
            ..LoadedConfig::default()
        }),
    }
}

/// Discovers and plans the rules in scope, through read-only handles only.
fn make_plan(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    scope: &Scope,
) -> Result<Plan, CommandError> {
    let rules = rules.only(&scope.rules).map_err(CommandError::Usage)?;
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
    let started = Instant::now();
    let inventory = discover(&rules, &handles)?;
    let plan = plan::build(&rules, &inventory, registries, scope.shard).map_err(|conflicts| {
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
            Ok(()) => CommandError::Usage("conflicting rules".to_string()),
        }
    })?;
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

fn plan_command(
    stores: &Stores,
    loaded: &LoadedConfig,
    rules: RuleSet,
    args: &PlanArgs,
) -> Result<ExitStatus, CommandError> {
    let plan = make_plan(stores, loaded, rules, &args.scope)?;
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
    let plan = make_plan(stores, loaded, rules, &args.scope)?;
    report::print_raw(&plan::render_table(&plan));
    if args.dry_run {
        return Ok(ExitStatus::Success);
    }
    Err(CommandError::Usage(
        "this build of hoist can only plan: run `hoist apply --dry-run` or `hoist plan`"
            .to_string(),
    ))
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

/// The JSON report of one `hoist promote`.
#[derive(Debug, Serialize)]
struct PromoteReport {
    source: String,
    target: String,
    digest: String,
    media_type: String,
    tags: Vec<String>,
    stats: CopyStatsSnapshot,
    source_requests: u64,
    target_requests: u64,
    bytes_uploaded: u64,
    duration_secs: f64,
}

fn promote(stores: &Stores, args: &PromoteArgs) -> Result<ExitStatus, CommandError> {
    let is_name = |name: &str| stores.is_registry_name(name);
    let source = Reference::parse(&args.source, &is_name)?;
    let target = Reference::parse(&args.target, &is_name)?;
    if target.digest.is_some() {
        return Err(CommandError::Usage(format!(
            "the target `{}` names a digest; name a repository and optionally a tag",
            args.target
        )));
    }
    let tags: Vec<String> = target
        .tag
        .clone()
        .or_else(|| source.tag.clone())
        .into_iter()
        .collect();
    let source_store = stores.open(&source.location)?;
    let target_store = stores.open(&target.location)?;
    let started = Instant::now();
    let stats = CopyStats::default();
    let copy = ImageCopy {
        source: source_store.as_ref(),
        source_repository: &source.repository,
        target: target_store.as_ref(),
        target_repository: &target.repository,
        stats: &stats,
    };
    let manifest = copy
        .run(&source.manifest_reference(), &tags)
        .map_err(|cause| CommandError::Promote {
            source_ref: source.to_string(),
            target_ref: target.to_string(),
            cause: Box::new(cause),
        })?;
    let snapshot = stats.snapshot();
    let report = PromoteReport {
        source: source.to_string(),
        target: target.to_string(),
        digest: manifest.digest.to_string(),
        media_type: manifest.media_type.clone(),
        tags,
        stats: snapshot,
        source_requests: source_store.counters().requests(),
        target_requests: target_store.counters().requests(),
        bytes_uploaded: target_store.counters().bytes_uploaded(),
        duration_secs: started.elapsed().as_secs_f64(),
    };
    report::log(&format!(
        "promoted {} -> {} ({}): {} blobs copied ({}), {} mounted, {} already present; {} manifests written; {} tags written, {} unchanged",
        report.source,
        report.target,
        manifest.digest,
        snapshot.blobs_copied,
        report::human_bytes(snapshot.bytes_copied),
        snapshot.blobs_mounted,
        snapshot.blobs_present,
        snapshot.manifests_written,
        snapshot.tags_written,
        snapshot.tags_unchanged,
    ));
    report::print_lines(&[format!(
        "{}@{}",
        target_without_tag(&target),
        manifest.digest
    )]);
    if let Some(path) = &args.report {
        write_json(path, &report)?;
    }
    Ok(ExitStatus::Success)
}

fn target_without_tag(target: &Reference) -> String {
    let mut bare = target.clone();
    bare.tag = None;
    bare.digest = None;
    bare.to_string()
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
