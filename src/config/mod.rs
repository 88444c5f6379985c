//! `promotions.toml`: the file model and how it is loaded.

mod load;
mod model;
mod problem;
mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::registry::spec::RegistrySpec;

pub use load::is_broken;
pub use model::{
    AttestationCondition, Config, MaxPrune, Mode, OneOrMany, Overwrite, Promotion, Prune,
    RecordSettings, RegistryConfig, RequireAttestation, RequireRecord, RequireSignature, Settings,
    json_schema,
};
pub use problem::{FieldPath, Label, Located, Part, Problem, did_you_mean, nearest};
pub use source::{ConfigSource, Diagnostics};

/// The configuration file read when none is named, if present.
pub const DEFAULT_CONFIG: &str = "promotions.toml";

/// A configuration file that could not be loaded, or that has problems.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(hoist::config::read))]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file has problems: every one found, each pointing into the file.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] Diagnostics),
}

/// A loaded configuration, the directory its relative paths are relative to,
/// and what is wrong with it so far.
#[derive(Clone, Debug, Default)]
pub struct LoadedConfig {
    /// The model; parts that could not be read are left out.
    pub config: Config,
    /// Directory of the file: `oci-layout:` and `ca_file` paths are relative to it.
    pub base_dir: PathBuf,
    /// The text and field spans, for diagnostics at any later stage.
    pub source: ConfigSource,
    /// Problems found while reading; later stages add theirs before
    /// [`LoadedConfig::validate`].
    pub problems: Vec<Problem>,
    /// The registries, parsed once: what stores are opened from. Relative
    /// paths in them are relative to [`LoadedConfig::base_dir`].
    pub registries: BTreeMap<String, RegistrySpec>,
}

impl LoadedConfig {
    /// Loads `path`. Syntax errors fail at once; other problems are collected
    /// in [`LoadedConfig::problems`].
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut loaded = Self::parse(&path.display().to_string(), &text)?;
        loaded.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let base = &loaded.base_dir;
        loaded.registries = std::mem::take(&mut loaded.registries)
            .into_iter()
            .map(|(name, spec)| (name, spec.relative_to(base)))
            .collect();
        // Key files too: rules read them, wherever hoist runs from.
        if let Some(record) = &mut loaded.config.settings.record {
            record.key = record.key.as_ref().map(|key| base.join(key));
        }
        for promotion in &mut loaded.config.promotions {
            for required in &mut promotion.require_attestation {
                for key in &mut required.keys {
                    *key = base.join(&*key).display().to_string();
                }
            }
            if let Some(required) = &mut promotion.require_record {
                for key in &mut required.keys {
                    *key = base.join(&*key).display().to_string();
                }
            }
            if let Some(gate) = &mut promotion.require_signature {
                gate.keys = gate
                    .keys
                    .iter()
                    .map(|key| base.join(key).display().to_string())
                    .collect();
                gate.trusted_root = gate
                    .trusted_root
                    .as_ref()
                    .map(|root| base.join(root).display().to_string());
            }
        }
        Ok(loaded)
    }

    /// Parses configuration text; `name` labels diagnostics.
    pub fn parse(name: &str, text: &str) -> Result<LoadedConfig, ConfigError> {
        let (root, errors) = toml::de::DeTable::parse_recoverable(text);
        let source = ConfigSource::new(name, text, &root);
        if !errors.is_empty() {
            let problems = errors
                .iter()
                .map(|e| {
                    let message = e.message().trim_end().to_string();
                    match e.span() {
                        Some(span) => Problem::spanned(span, message),
                        None => Problem::spanned(0..0, message),
                    }
                })
                .collect();
            return Err(source.diagnose(problems).into());
        }
        let load::Model {
            config,
            registries,
            problems,
        } = load::model(root.get_ref());
        Ok(LoadedConfig {
            config,
            base_dir: PathBuf::from("."),
            source,
            problems,
            registries,
        })
    }

    /// Fails with every problem found so far plus `more`, pointing into the file.
    pub fn validate(&self, more: Vec<Problem>) -> Result<(), ConfigError> {
        let mut problems = self.problems.clone();
        problems.extend(more);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(self.source.diagnose(problems).into())
        }
    }
}

#[cfg(test)]
mod tests;
