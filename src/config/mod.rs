//! `promotions.toml`: the file model and how it is loaded.

mod model;

use std::path::{Path, PathBuf};

pub use model::{Mode, OneOrMany, Overwrite, Promotion, RegistryConfig, Settings};

/// The whole configuration file.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run settings.
    #[serde(default)]
    pub settings: Settings,
    /// Registries by name.
    #[serde(default)]
    pub registries: std::collections::BTreeMap<String, RegistryConfig>,
    /// Promotion rules, in file order.
    #[serde(default, rename = "promotion")]
    pub promotions: Vec<Promotion>,
}

/// The JSON Schema of `promotions.toml`, as checked in under `schemas/`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Config);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// A configuration file that could not be loaded.
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
    /// The file is not valid TOML, or does not match the model.
    #[error("{message}")]
    #[diagnostic(code(hoist::config::invalid))]
    Invalid {
        /// What is wrong.
        message: String,
        /// The file, for the diagnostic.
        #[source_code]
        source_code: miette::NamedSource<String>,
        /// Where.
        #[label("here")]
        span: Option<miette::SourceSpan>,
    },
}

/// A loaded configuration and the directory its relative paths are relative to.
#[derive(Clone, Debug, Default)]
pub struct LoadedConfig {
    /// The parsed file.
    pub config: Config,
    /// Directory of the file: `oci-layout:` and `ca_file` paths are relative to it.
    pub base_dir: PathBuf,
}

impl LoadedConfig {
    /// Loads `path`.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config = Self::parse(&path.display().to_string(), &text)?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok(LoadedConfig { config, base_dir })
    }

    /// Parses configuration text; `name` labels diagnostics.
    pub fn parse(name: &str, text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            message: e.message().to_string(),
            source_code: miette::NamedSource::new(name, text.to_string()),
            span: e
                .span()
                .map(|s| (s.start, s.end.saturating_sub(s.start)).into()),
        })
    }

    /// A path from the file, made relative to the file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}
