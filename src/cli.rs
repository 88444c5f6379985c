//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::execute::ProgressMode;
use crate::plan::Shard;

/// Promote container images between OCI registries.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, propagate_version = true)]
pub struct Cli {
    /// The promotions file [default: ./promotions.toml, used when present].
    #[arg(short = 'c', long = "config", global = true, env = "HOIST_CONFIG")]
    pub config: Option<PathBuf>,

    /// Parallel transfers [default: HOIST_JOBS, else `jobs` in [settings], else 48].
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

    /// Where `apply` or `verify` writes its metrics (`--metrics FILE`), and
    /// the command's name in them.
    pub fn metrics(&self) -> Option<(&std::path::Path, &'static str)> {
        match &self.command {
            Command::Apply(args) => args.metrics.as_deref().map(|p| (p, "apply")),
            Command::Verify(args) => args.metrics.as_deref().map(|p| (p, "verify")),
            _ => None,
        }
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
    /// Check that every target tag in scope points at a complete image: the
    /// manifest, its children and every blob exist, at the source's digest.
    Verify(VerifyArgs),
    /// Validate the configuration offline: no registry is contacted.
    Check,
    /// Show how an image got where it is: each promotion record attached to
    /// it (`[settings] record`), when, from where, by which rule and run,
    /// and whether it verifies against `--key`. Exits 1 when a key is given
    /// and a record does not verify against any.
    History(HistoryArgs),
    /// Print a JSON Schema (the same as the files in schemas/).
    Schema {
        /// Which document.
        #[arg(value_enum, default_value = "config")]
        document: SchemaDocument,
    },
    /// Promote one image, with Stevedore's flags: `hoist promote SOURCE [TARGET]`.
    #[command(visible_aliases = ["publish", "copy"])]
    Promote(Box<PromoteArgs>),
    /// Promote a repository, or one tag, from one registry to another with
    /// JFrog's `jf rt docker-promote` semantics: a move unless --copy.
    #[command(
        long_about = "Promote a repository, or one tag, from one registry to another, as JFrog Artifactory's `jf rt docker-promote IMAGE SOURCE TARGET` and `POST /api/docker/{repoKey}/v2/promote` do.\n\n\
Without --source-tag every tag of IMAGE is promoted. The default is a move: each source tag is deleted \
once the target holds its image, never before, and never while another source tag still needs the \
image (as `mode = \"move\"`); --copy keeps the source. Signatures, attestations and SBOMs go with \
their images. Blobs are mounted, not copied, when SOURCE and TARGET are one registry.",
        after_help = "Examples:\n  \
hoist docker-promote jfrog/ubuntu docker-local docker-prod --source-tag 22.04 --copy\n  \
hoist docker-promote app https://host/artifactory/api/docker/docker-local \\\n      \
https://host/artifactory/api/docker/docker-prod --target-docker-image app-stable"
    )]
    DockerPromote(DockerPromoteArgs),
}

/// `hoist docker-promote IMAGE SOURCE TARGET`: `jf rt docker-promote`'s
/// arguments and flags, with its defaults (a move; the whole repository).
#[derive(Debug, clap::Args)]
pub struct DockerPromoteArgs {
    /// The repository to promote, e.g. `jfrog/ubuntu` (REST `dockerRepository`).
    pub image: String,
    /// The source registry (REST `repoKey`): a name from the configuration's
    /// [registries], `host[:port]`, or a URL, which may have a path
    /// (`https://host/artifactory/api/docker/docker-local`).
    pub source: String,
    /// The target registry (REST `targetRepo`), written as SOURCE is.
    pub target: String,
    /// Promote only this tag (REST `tag`) [default: every tag of IMAGE].
    #[arg(long, value_name = "TAG")]
    pub source_tag: Option<String>,
    /// The repository in the target (REST `targetDockerRepository`) [default: IMAGE].
    #[arg(long, value_name = "NAME")]
    pub target_docker_image: Option<String>,
    /// The tag in the target (REST `targetTag`); needs --source-tag [default: the source tag].
    #[arg(long, value_name = "TAG")]
    pub target_tag: Option<String>,
    /// Copy: keep the source tags (REST `copy: true`) [default: move];
    /// `--copy=true` and `--copy=false` are accepted, as `jf` writes them.
    #[arg(
        long,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true",
        hide_default_value = true,
        value_name = "BOOL"
    )]
    pub copy: bool,
    /// Leave the images' signatures, attestations and SBOMs behind.
    #[arg(long)]
    pub no_referrers: bool,
    /// Show what would be written (and deleted), read from the registries; write nothing.
    #[arg(short = 'D', long)]
    pub dry_run: bool,
    /// Accepted for `jf`: hoist finds SOURCE and TARGET (and their
    /// credentials) in the configuration, or takes them as addresses.
    #[arg(long, value_name = "ID")]
    pub server_id: Option<String>,
    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
}

impl DockerPromoteArgs {
    /// What the flags ask for.
    pub fn request(&self) -> crate::promote::DockerRequest {
        crate::promote::DockerRequest {
            image: self.image.clone(),
            source: self.source.clone(),
            target: self.target.clone(),
            source_tag: self.source_tag.clone(),
            target_image: self.target_docker_image.clone(),
            target_tag: self.target_tag.clone(),
            copy: self.copy,
        }
    }
}

/// `hoist promote SOURCE [TARGET]`: Stevedore's command line is accepted
/// verbatim (its long names as aliases, its short forms, comma lists, its
/// no-op and deprecated flags).
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The image to promote: `host[:port]/path[:tag][@digest]`, `NAME/path:tag`
    /// for a configured registry, or `oci-layout:DIR//path:tag`. Without a
    /// tag or digest it is `:latest`.
    pub source: String,
    /// Where to: a repository, optionally with a tag. Without it the source's
    /// repository is used, changed by --registry, --namespace and --name.
    pub target: Option<String>,
    /// Target tags (repeatable, comma-separated): the first replaces the
    /// source tag, the rest are extra tags.
    #[arg(
        short = 't',
        long = "tag",
        visible_alias = "promote-image-tag",
        value_name = "TAG",
        value_delimiter = ','
    )]
    pub tags: Vec<String>,
    /// Also write the source tag when --tag replaces it.
    #[arg(short = 's', long, visible_alias = "force-promote-source-image")]
    pub keep_source_tag: bool,
    /// Derive semantic-version tags from every written tag that is a version
    /// (`1.2` reads as 1.2.0); other tags are skipped with a note on stderr.
    #[arg(short = 'S', long, visible_alias = "enable-semver-tags")]
    pub semver_tags: bool,
    /// Semantic-version tag templates (repeatable, comma-separated) [default:
    /// {major}.{minor}.{patch} and {major}.{minor}, the setting of Stevedore's
    /// promote example; `-T '{major}.{minor}.{patch}'` is Stevedore's built-in
    /// default]. Go-template spellings such as {{ .Major }}, {{ .PreRelease }}
    /// and {{ .Build }} work too.
    #[arg(
        short = 'T',
        long = "semver-template",
        visible_alias = "semver-tags-template",
        value_name = "T",
        value_delimiter = ','
    )]
    pub semver_templates: Vec<String>,
    /// Target registry host (or configured registry name) in place of the source's.
    #[arg(
        short = 'r',
        long,
        visible_alias = "promote-image-registry-host",
        value_name = "HOST"
    )]
    pub registry: Option<String>,
    /// Target namespace: replaces everything before the image name (an
    /// empty value removes it).
    #[arg(
        short = 'n',
        long,
        visible_alias = "promote-image-registry-namespace",
        value_name = "NS"
    )]
    pub namespace: Option<String>,
    /// Target image name: replaces the last path segment.
    #[arg(
        short = 'i',
        long,
        visible_alias = "promote-image-name",
        value_name = "NAME"
    )]
    pub name: Option<String>,
    /// Keep only these platforms of a multi-platform index (repeatable).
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<crate::platform::Platform>,
    /// Leave the image's signatures, attestations and SBOMs behind (they
    /// are carried by default, as `referrers = true` does for rules).
    #[arg(long)]
    pub no_referrers: bool,
    /// Move: delete the source tag once the target holds the image (as
    /// `mode = "move"`: never while another tag still needs the manifest).
    #[arg(long = "move")]
    pub move_source: bool,
    /// Promote only an image a cosign signature beside it verifies for, by
    /// this public key (repeatable: any of them), as a rule's
    /// `require_signature` does; otherwise nothing is written.
    #[arg(long = "require-signature", value_name = "KEY")]
    pub signature_keys: Vec<String>,
    /// With --require-signature: the signed payload must carry this
    /// annotation (repeatable), as `cosign verify -a` does.
    #[arg(
        long = "signature-annotation",
        value_name = "KEY=VALUE",
        value_parser = key_value,
        requires = "signature_keys"
    )]
    pub signature_annotations: Vec<(String, String)>,
    /// Promote only an image with an in-toto attestation of this predicate
    /// type (repeatable: each required), signed by an --attestation-key and
    /// meeting every --attestation-condition, as a rule's
    /// `require_attestation` does.
    #[arg(
        long = "require-attestation",
        value_name = "PREDICATE_TYPE",
        requires = "attestation_keys"
    )]
    pub attestation_types: Vec<String>,
    /// With --require-attestation: a public key (PEM) the attestations may
    /// be signed by (repeatable: any of them).
    #[arg(
        long = "attestation-key",
        value_name = "KEY",
        requires = "attestation_types"
    )]
    pub attestation_keys: Vec<String>,
    /// With --require-attestation: what each required attestation's
    /// predicate must say (repeatable: all): `PATH=VALUE` (equals),
    /// `PATH~REGEX` (matches it whole) or `PATH<SEVERITY` (every finding
    /// below it). For per-type conditions, use the file's `require_attestation`.
    #[arg(
        long = "attestation-condition",
        value_name = "CONDITION",
        requires = "attestation_types"
    )]
    pub attestation_conditions: Vec<String>,
    /// Show what would be written, read from the registries; write nothing.
    #[arg(short = 'D', long)]
    pub dry_run: bool,
    /// Stevedore's flags that hoist accepts but needs no work for.
    #[command(flatten)]
    pub stevedore: StevedoreOnly,
    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
}

/// A flag's value that is not `KEY=VALUE`.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not KEY=VALUE")]
pub struct NotKeyValue(String);

/// `KEY=VALUE`, split at the first `=`.
fn key_value(text: &str) -> Result<(String, String), NotKeyValue> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(NotKeyValue(text.to_string())),
    }
}

/// Stevedore `promote` flags that mean nothing more to hoist, accepted so
/// its command lines paste verbatim; the deprecated ones say what replaces them.
#[derive(Debug, Default, clap::Args)]
pub struct StevedoreOnly {
    /// Accepted for Stevedore: hoist always reads the source from its registry.
    #[arg(short = 'R', long)]
    pub use_source_image_from_remote: bool,
    /// Accepted for Stevedore: hoist keeps no local images to remove.
    #[arg(long)]
    pub remove_local_images_after_push: bool,
    /// Accepted for Stevedore: hoist always writes normalized names
    /// (`docker.io/library/busybox`).
    #[arg(long)]
    pub use_docker_normalized_name: bool,
    /// Stevedore's deprecated name of --remove-local-images-after-push.
    #[arg(long, hide = true)]
    pub remove_promote_tags: bool,
    /// Stevedore's deprecated name of --promote-image-registry-host.
    #[arg(long, hide = true, value_name = "HOST")]
    pub promote_image_host: Option<String>,
    /// Stevedore's deprecated name of --promote-image-registry-namespace.
    #[arg(long, hide = true, value_name = "NS")]
    pub promote_image_namespace: Option<String>,
}

impl StevedoreOnly {
    /// Stevedore's deprecation message for each deprecated flag given.
    pub fn deprecations(&self) -> Vec<String> {
        let deprecated =
            |old: &str, new: &str| format!("[DEPRECATED FLAG] use `{new}` instead of `{old}`");
        let mut messages = Vec::new();
        if self.remove_promote_tags {
            messages.push(deprecated(
                "remove-promote-tags",
                "remove-local-images-after-push",
            ));
        }
        if self.promote_image_host.is_some() {
            messages.push(deprecated(
                "promote-image-host",
                "promote-image-registry-host",
            ));
        }
        if self.promote_image_namespace.is_some() {
            messages.push(deprecated(
                "promote-image-namespace",
                "promote-image-registry-namespace",
            ));
        }
        messages
    }
}

/// Narrowing a run to some rules and one shard.
#[derive(Debug, Default, clap::Args)]
pub struct ScopeArgs {
    /// Only this rule (repeatable).
    #[arg(long = "rule", value_name = "NAME")]
    pub rules: Vec<String>,
    /// Only the entries whose target repository hashes to shard K of N (K from 0).
    #[arg(long, value_name = "K/N", env = "HOIST_SHARD")]
    pub shard: Option<Shard>,
    /// Take the shard from the environment of a Kubernetes Indexed Job:
    /// K from JOB_COMPLETION_INDEX, N from HOIST_SHARD_COUNT.
    #[arg(long, conflicts_with = "shard")]
    pub shard_from_env: bool,
}

impl PromoteArgs {
    /// What the flags ask for, whichever spelling was used.
    pub fn request(&self) -> crate::promote::Request {
        crate::promote::Request {
            source: self.source.clone(),
            target: self.target.clone(),
            tags: self.tags.clone(),
            keep_source_tag: self.keep_source_tag,
            semver_tags: self.semver_tags,
            semver_templates: self.semver_templates.clone(),
            // As Stevedore: a deprecated name counts when the new one is absent.
            registry: self
                .registry
                .clone()
                .or_else(|| self.stevedore.promote_image_host.clone()),
            namespace: self
                .namespace
                .clone()
                .or_else(|| self.stevedore.promote_image_namespace.clone()),
            name: self.name.clone(),
            move_source: self.move_source,
        }
    }
}

/// `hoist plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Which rules and shard.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
    /// Also write the plan as JSON (schemas/plan.schema.json) to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when nothing would change, 3 when changes are pending, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Show only what changed since this reviewed plan (from `--out`):
    /// target tags added, removed, and whose source or target digest moved.
    #[arg(long, value_name = "FILE")]
    pub diff: Option<PathBuf>,
    /// Markdown: list unchanged tags too, not only their count.
    #[arg(short, long)]
    pub verbose: bool,
    /// Markdown: keep the page under this many characters (a GitHub comment
    /// takes 65,536, a GitLab note 1,000,000); repositories that do not fit
    /// are counted, not listed.
    #[arg(long, value_name = "N", default_value_t = crate::render::COMMENT_LIMIT)]
    pub max_chars: usize,
}

/// `hoist apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Which rules and shard.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Execute this reviewed plan (from `plan --out`) instead of planning
    /// afresh; entries whose source or target changed since are refused.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Print the plan and stop; no registry is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Report and progress.
    #[command(flatten)]
    pub output: Output,
    /// Also write the run's metrics (Prometheus text format) to this file.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

/// What `apply` and `promote` show while and after they copy.
#[derive(Debug, clap::Args)]
pub struct Output {
    /// Write a JSON report (schemas/report.schema.json) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Progress bars on stderr: when it is a terminal (auto), always, or never.
    #[arg(long, value_enum, default_value = "auto", env = "HOIST_PROGRESS")]
    pub progress: ProgressChoice,
}

/// `hoist verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Which rules and shard.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Also write the run's metrics (Prometheus text format) to this file.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Repair what verifying finds incomplete: copy the missing blobs and
    /// child manifests of each target image from its source again, put its
    /// manifests and tags again, then verify again. Missing or misplaced
    /// tags are left to `apply`.
    #[arg(long)]
    pub repair: bool,
}

/// `hoist history REF`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// An image by tag or digest (`prod/app:1.2.0`, `prod/app@sha256:…`), or
    /// a repository (`prod/app`: every tagged image in it); the registry a
    /// name from the configuration, `host[:port]` or `oci-layout:DIR`.
    pub reference: String,
    /// A public key (PEM) the records must verify against; repeatable.
    #[arg(long = "key", value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// `table` for people, `json` for scripts.
    #[arg(long, value_enum, default_value = "table")]
    pub format: HistoryFormat,
}

/// How `hoist history` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    /// Lines for people.
    Table,
    /// JSON: one object per image with its records.
    Json,
}

/// How `hoist plan` prints the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// A table for people.
    Table,
    /// JSON, as schemas/plan.schema.json describes.
    Json,
    /// Markdown for a pull-request comment or a CI job summary: blocked
    /// entries first, one collapsed section per target repository.
    Markdown,
}

/// Documents with a JSON Schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaDocument {
    /// `promotions.toml` (schemas/promotions.schema.json).
    Config,
    /// `plan.json` (schemas/plan.schema.json).
    Plan,
    /// `apply --report` (schemas/report.schema.json).
    Report,
}

/// `--progress`: when to draw progress bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressChoice {
    /// Bars when stderr is a terminal.
    #[default]
    Auto,
    /// Bars always.
    Always,
    /// Plain lines only (CI).
    Never,
}

impl From<ProgressChoice> for ProgressMode {
    fn from(choice: ProgressChoice) -> ProgressMode {
        match choice {
            ProgressChoice::Auto => ProgressMode::Auto,
            ProgressChoice::Always => ProgressMode::Always,
            ProgressChoice::Never => ProgressMode::Never,
        }
    }
}
