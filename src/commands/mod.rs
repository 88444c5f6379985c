//! What each subcommand does, from resolved arguments to an exit status.

mod apply;
mod docker_promote;
mod error;
mod planning;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{Cli, Command, SchemaDocument};
use crate::config::LoadedConfig;
use crate::execute::StoreMap;
use crate::plan::Plan;
use crate::reference::{self, Location};
use crate::registry::spec::RegistrySpec;
use crate::registry::stores::Stores;
use crate::report;
use crate::rules::RuleSet;
use crate::settings;

use self::apply::{apply, promote};
use self::planning::{plan_command, verify_command};

pub use error::{CommandError, PlanFileProblem};

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

/// Runs a parsed command line; an error is printed and becomes the exit status
/// (1 under `plan --detailed-exitcode`, as it promises).
pub fn run(cli: Cli) -> ExitStatus {
    let started = std::time::Instant::now();
    let detailed = cli.detailed_exitcode();
    let mut observed = Observed::default();
    let status = match dispatch(&cli, &mut observed) {
        Ok(status) => status,
        Err(error) => {
            error.print();
            if detailed {
                ExitStatus::Failure
            } else {
                error.exit_status()
            }
        }
    };
    match cli.metrics() {
        Some((path, command)) => {
            let run = crate::metrics::RunMetrics {
                command,
                exit_status: status as u8,
                duration_secs: started.elapsed().as_secs_f64(),
                report: observed.report.as_ref(),
                verified: observed.verified,
            };
            match crate::metrics::write(path, &run) {
                Ok(()) => status,
                Err(error) => {
                    report::log(&format!("error: {error}"));
                    status.max_failure()
                }
            }
        }
        None => status,
    }
}

/// What `apply` and `verify` found, as far as they got: their metrics.
#[derive(Default)]
pub struct Observed {
    /// `apply`'s report, once it ran.
    pub report: Option<crate::execute::ApplyReport>,
    /// `verify`'s findings, once it checked.
    pub verified: Option<crate::metrics::Verified>,
}

impl ExitStatus {
    /// This status, or a failure when it said success.
    fn max_failure(self) -> ExitStatus {
        match self {
            ExitStatus::Success | ExitStatus::Changes => ExitStatus::Failure,
            other => other,
        }
    }
}

fn dispatch(cli: &Cli, observed: &mut Observed) -> Result<ExitStatus, CommandError> {
    if let Command::Schema { document } = &cli.command {
        report::print_raw(&match document {
            SchemaDocument::Config => crate::config::json_schema(),
            SchemaDocument::Plan => crate::plan::json_schema(),
            SchemaDocument::Report => crate::execute::summary::json_schema(),
        });
        return Ok(ExitStatus::Success);
    }
    // `apply` plans from the file too: without one (a CronJob whose
    // config volume did not mount) it would plan nothing and succeed.
    let needs_file = match &cli.command {
        Command::Plan(_) | Command::Verify(_) | Command::Check => true,
        Command::Apply(args) => args.plan.is_none(),
        _ => false,
    };
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
        Command::DockerPromote(args) => docker_promote::docker_promote(&stores, args),
        Command::Plan(args) => plan_command(&stores, &loaded, rules, args),
        Command::Apply(args) => apply(&stores, &loaded, rules, args, observed),
        Command::Verify(args) => verify_command(&stores, &loaded, rules, args, observed),
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
