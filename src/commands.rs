//! What each subcommand does, from resolved arguments to an exit status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;

use crate::cli::{Cli, Command, PromoteArgs, SchemaDocument};
use crate::config::{ConfigError, LoadedConfig};
use crate::execute::{CopyStats, CopyStatsSnapshot, ImageCopy};
use crate::reference::{self, Reference, ReferenceError};
use crate::registry::RegistryError;
use crate::registry::stores::{OpenError, Stores};
use crate::report;

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
    let config = load_config(cli.config.as_deref())?;
    let jobs = cli.jobs.unwrap_or(config.config.settings.jobs).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("hoist-{i}"))
        .build()
        .map_err(|e| CommandError::Usage(format!("cannot start {jobs} worker threads: {e}")))?;
    let stores = Stores::new(config, jobs);
    let status = pool.install(|| match cli.command {
        Command::Ls { target } => ls(&stores, &target),
        Command::Promote(args) => promote(&stores, &args),
        Command::Schema { document } => {
            match document {
                SchemaDocument::Config => report::print_raw(&crate::config::json_schema()),
            }
            Ok(ExitStatus::Success)
        }
    })?;
    Ok(status)
}

fn load_config(path: Option<&Path>) -> Result<LoadedConfig, CommandError> {
    match path {
        Some(path) => Ok(LoadedConfig::load(path)?),
        None if Path::new(DEFAULT_CONFIG).is_file() => {
            Ok(LoadedConfig::load(Path::new(DEFAULT_CONFIG))?)
        }
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

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CommandError> {
    let write_error = |source| CommandError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| write_error(std::io::Error::other(e)))?;
    text.push('\n');
    std::fs::write(path, text).map_err(write_error)
}
