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

    /// Parallel transfers [default: `jobs` in [settings], else HOIST_JOBS, else 16].
    #[arg(long, global = true)]
    pub jobs: Option<usize>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether errors must exit 1, as `plan --detailed-exitcode` promises.
    pub fn detailed_exitcode(&self) -> bool {
        matches!(&self.command, Command::Plan(args) if args.detailed_exitcode)
    }
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
    /// Show what the rules would promote: every target tag, compared with what
    /// the targets hold. Reads registries, writes nothing.
    Plan(PlanArgs),
    /// Promote what the rules select (`--dry-run`: print the plan and stop).
    Apply(ApplyArgs),
    /// Validate the configuration offline: no registry is contacted.
    Check,
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

/// Narrowing a run to some rules and one shard.
#[derive(Debug, Default, clap::Args)]
pub struct Scope {
    /// Only this rule (repeatable).
    #[arg(long = "rule", value_name = "NAME")]
    pub rules: Vec<String>,
    /// Only the entries whose target repository hashes to shard K of N (K from 0).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
}

/// `hoist plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Which rules and shard.
    #[command(flatten)]
    pub scope: Scope,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
    /// Also write the plan as JSON (schemas/plan.schema.json) to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when nothing would change, 3 when changes are pending, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// `hoist apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Which rules and shard.
    #[command(flatten)]
    pub scope: Scope,
    /// Print the plan and stop; no registry is written.
    #[arg(long)]
    pub dry_run: bool,
}

/// How `hoist plan` prints the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// A table for people.
    Table,
    /// JSON, as schemas/plan.schema.json describes.
    Json,
}

fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not K/N (e.g. 0/4)"))?;
    let k: u32 = k
        .trim()
        .parse()
        .map_err(|_| format!("`{k}` is not a shard number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a shard count"))?;
    if n == 0 || k >= n {
        return Err(format!(
            "shard {k}/{n}: K counts from 0 and must be below N"
        ));
    }
    Ok((k, n))
}

/// Documents with a JSON Schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaDocument {
    /// `promotions.toml` (schemas/promotions.schema.json).
    Config,
    /// `plan.json` (schemas/plan.schema.json).
    Plan,
}
