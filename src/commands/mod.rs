//! What each subcommand does, from resolved arguments to an exit status.

mod apply;
mod docker_promote;
mod error;
mod files;
mod history;
mod planning;
mod status;

use crate::cli::{Cli, Command, SchemaDocument};
use crate::config::LoadedConfig;
use crate::reference;
use crate::registry::stores::Stores;
use crate::report;
use crate::rules::RuleSet;
use crate::settings;
use std::path::{Path, PathBuf};

use self::apply::{apply, promote};
use self::planning::{plan_command, verify_command};

pub use error::{CommandError, PlanFileProblem};
pub use status::{ExitStatus, Observed};

use crate::config::DEFAULT_CONFIG;

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
        Command::History(args) => history::history(&stores, args),
        Command::Promote(args) => promote(&stores, &loaded, args),
        Command::DockerPromote(args) => docker_promote::docker_promote(&stores, &loaded, args),
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
