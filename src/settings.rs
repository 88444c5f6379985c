//! Run settings, layered: built-in defaults < `[settings]` in the file <
//! `HOIST_*` environment variables < command-line flags.

use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::Serialize;

use std::time::Duration;

use crate::config::Settings;
use crate::plan::{Shard, ShardError};
use crate::registry::retry::RetryPolicy;
use crate::registry::spec::StoreSettings;

/// Settings that make no sense, or an environment that lacks what a flag needs.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A layer holds a value of the wrong type; says which variable or file.
    #[error("settings: {0}")]
    Invalid(String),
    /// A count that must be positive is 0.
    #[error("settings: `{0}` must be at least 1")]
    Zero(&'static str),
    /// `--shard-from-env` without the Indexed Job's variables.
    #[error("--shard-from-env: {0} is not set")]
    MissingVariable(&'static str),
    /// `--shard-from-env` with variables that are not a shard.
    #[error("--shard-from-env: {0}")]
    Shard(ShardError),
}

/// Settings given as command-line flags; `None` leaves the lower layers' value.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Flags {
    /// `--jobs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
}

/// The environment variables that set settings: `HOIST_` and the key in capitals.
pub const ENV_KEYS: [&str; 3] = ["jobs", "retries", "timeout_secs"];

/// Resolves the layers into the settings of this run.
pub fn resolve(file: &Settings, flags: &Flags) -> Result<Settings, SettingsError> {
    let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Serialized::defaults(file))
        .merge(Env::prefixed("HOIST_").only(&ENV_KEYS))
        .merge(Serialized::defaults(flags))
        .extract()
        .map_err(|e| SettingsError::Invalid(describe(&e)))?;
    if settings.jobs == 0 {
        return Err(SettingsError::Zero("jobs"));
    }
    if settings.timeout_secs == 0 {
        return Err(SettingsError::Zero("timeout_secs"));
    }
    Ok(settings)
}

/// What every store of the run gets. Two variables tune what the file does
/// not: `HOIST_PAGE_SIZE` (entries asked per catalog or tag-list page) and
/// `HOIST_RETRY_BASE_MS` (the first backoff; tests that inject faults do not
/// want half a second a retry).
pub fn store_settings(settings: &Settings) -> StoreSettings {
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let defaults = StoreSettings::default();
    StoreSettings {
        jobs: settings.jobs,
        timeout: Duration::from_secs(settings.timeout_secs.max(1)),
        retry: RetryPolicy {
            retries: settings.retries,
            base: number("HOIST_RETRY_BASE_MS").map_or(defaults.retry.base, Duration::from_millis),
        },
        page_size: number("HOIST_PAGE_SIZE")
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(defaults.page_size),
    }
}

/// The shard of a Kubernetes Indexed Job: K from `JOB_COMPLETION_INDEX`,
/// N from `HOIST_SHARD_COUNT` (`--shard-from-env`).
pub fn shard_from_env() -> Result<Shard, SettingsError> {
    let read =
        |name: &'static str| std::env::var(name).map_err(|_| SettingsError::MissingVariable(name));
    let k = read("JOB_COMPLETION_INDEX")?;
    let n = read("HOIST_SHARD_COUNT")?;
    format!("{k}/{n}").parse().map_err(SettingsError::Shard)
}

/// Names the environment variable a bad value came from (`HOIST_JOBS`),
/// rather than figment's provider description.
fn describe(error: &figment::Error) -> String {
    let from_env = error
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    if from_env {
        let variable = format!("HOIST_{}", error.path.join("_").to_uppercase());
        format!("{variable}: {}", error.kind)
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error
    fn layers_in_order() {
        figment::Jail::expect_with(|jail| {
            let file = Settings {
                jobs: 8,
                retries: 2,
                ..Settings::default()
            };
            let resolved = resolve(&file, &Flags::default()).unwrap();
            assert_eq!(
                (resolved.jobs, resolved.retries, resolved.timeout_secs),
                (8, 2, 60)
            );
            jail.set_env("HOIST_JOBS", "4");
            jail.set_env("HOIST_TIMEOUT_SECS", "5");
            jail.set_env("HOIST_CONFIG", "elsewhere.toml");
            let resolved = resolve(&file, &Flags::default()).unwrap();
            assert_eq!((resolved.jobs, resolved.timeout_secs), (4, 5));
            let resolved = resolve(&file, &Flags { jobs: Some(2) }).unwrap();
            assert_eq!(resolved.jobs, 2);
            jail.set_env("HOIST_JOBS", "many");
            let error = resolve(&file, &Flags::default()).unwrap_err().to_string();
            assert!(error.contains("HOIST_JOBS"), "{error}");
            Ok(())
        });
    }
}
