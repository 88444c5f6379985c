//! The files and registries a command reads a plan from or writes it to:
//! a reviewed plan, JSON documents, the registries a plan names.

use std::path::Path;

use serde::Serialize;

use crate::config::LoadedConfig;
use crate::execute::StoreMap;
use crate::plan::{self, Plan, Scope};
use crate::reference::Location;
use crate::registry::spec::RegistrySpec;
use crate::registry::stores::Stores;

use super::error::{CommandError, PlanFileProblem};

/// Reads a reviewed plan, narrowed to the scope.
pub(super) fn read_plan(path: &Path, scope: &Scope) -> Result<Plan, CommandError> {
    let shown = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|reason| PlanFileProblem::Read {
        path: shown(),
        reason,
    })?;
    let parse = |reason| PlanFileProblem::Parse {
        path: shown(),
        reason,
    };
    // The format first: a plan of another version is named as such, not
    // as a plan with fields missing.
    #[derive(serde::Deserialize)]
    struct Versioned {
        format: u32,
    }
    let Versioned { format } = serde_json::from_str(&text).map_err(parse)?;
    if format != plan::PLAN_FORMAT {
        return Err(PlanFileProblem::Format {
            path: shown(),
            found: format,
        }
        .into());
    }
    let mut plan: Plan = serde_json::from_str(&text).map_err(parse)?;
    scope.narrow(&mut plan.entries);
    Ok(plan)
}

pub(super) fn to_json(value: &impl Serialize) -> Result<String, CommandError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| CommandError::Write {
        path: "stdout".to_string(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    Ok(text)
}

pub(super) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CommandError> {
    std::fs::write(path, to_json(value)?).map_err(|source| CommandError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Opens every registry a plan names: through the configuration when it
/// has that name (credentials, limits), else by the address in the plan.
pub(super) fn open_plan_stores(
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
