//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Promote container images between OCI registries.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, propagate_version = true)]
pub struct Cli {
    /// The promotions file [default: ./promotions.toml, used when present].
    #[arg(short = 'c', long = "config", global = true, env = "HOIST_CONFIG")]
    pub config: Option<PathBuf>,

    /// Parallel transfers (default: `jobs` in [settings], else 16).
    #[arg(long, global = true, env = "HOIST_JOBS")]
    pub jobs: Option<usize>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a registry's repositories, or one repository's tags.
    Ls {
        /// `host[:port]`, a registry name from the config, or `oci-layout:DIR`,
        /// optionally followed by `/REPOSITORY`.
        target: String,
    },
    /// Print a JSON Schema (the same as the files in schemas/).
    Schema {
        /// Which document.
        #[arg(value_enum, default_value = "config")]
        document: SchemaDocument,
    },
    /// Copy one image (a manifest or a whole multi-platform index) to another repository.
    Promote(PromoteArgs),
}

/// `hoist promote SOURCE TARGET`.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The image to copy: `host[:port]/path[:tag][@digest]`, `NAME/path:tag` for a
    /// configured registry, or `oci-layout:DIR//path:tag`.
    pub source: String,
    /// Where to: same forms; without a tag the source tag is kept.
    pub target: String,
    /// Write a JSON report of what was copied to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Documents with a JSON Schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaDocument {
    /// `promotions.toml` (schemas/promotions.schema.json).
    Config,
}
