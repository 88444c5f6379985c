//! Why a command could not do its job, and the exit status each reason means.

use crate::config::ConfigError;
use crate::discover::DiscoveryError;
use crate::plan;
use crate::promote::PromoteError;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;
use crate::registry::stores::OpenError;
use crate::report;
use crate::rules::UnknownRule;
use crate::settings::SettingsError;

use crate::config::DEFAULT_CONFIG;

use super::status::ExitStatus;

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
    /// A `--key` file is no public key hoist verifies with.
    #[error("--key {path}: {cause}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        cause: crate::gate::KeyError,
    },
    /// `[settings] record` names a key hoist cannot sign with.
    #[error("[settings] record: {0}")]
    RecordKey(#[from] crate::record::SigningKeyError),
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
            // What the command line asks cannot be done, found once the
            // registries were read (one registry under two names).
            CommandError::Promote { cause, .. }
                if matches!(**cause, PromoteError::Arguments(_)) =>
            {
                ExitStatus::Usage
            }
            CommandError::Registry(_)
            | CommandError::Discovery(_)
            | CommandError::Promote { .. }
            | CommandError::Write { .. } => ExitStatus::Failure,
            CommandError::Config(_)
            | CommandError::NoConfigFile
            | CommandError::Settings(_)
            | CommandError::RecordKey(_)
            | CommandError::Key { .. }
            | CommandError::ThreadPool { .. }
            | CommandError::UnknownRule(_)
            | CommandError::Conflicts
            | CommandError::PlanFile(_)
            | CommandError::PlanRegistry { .. }
            | CommandError::Reference(_)
            | CommandError::Destination(_)
            | CommandError::Open(_) => ExitStatus::Usage,
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
