//! `docker-promote`: a repository or one tag promoted as JFrog's
//! `docker-promote` does, through the same executor as `promote`.

use std::time::Instant;

use crate::cli::DockerPromoteArgs;
use crate::execute::StoreMap;
use crate::plan::PlanEntry;
use crate::reference::Reference;
use crate::registry::stores::Stores;
use crate::render;
use crate::report;

use super::apply::{read_only, run_promotion};
use super::error::CommandError;
use super::status::ExitStatus;

pub(super) fn docker_promote(
    stores: &Stores,
    loaded: &crate::config::LoadedConfig,
    args: &DockerPromoteArgs,
) -> Result<ExitStatus, CommandError> {
    let started = Instant::now();
    let is_name = |name: &str| stores.is_registry_name(name);
    if let Some(id) = &args.server_id {
        report::log(&format!(
            "--server-id {id}: not needed by hoist, which takes SOURCE and TARGET from the configuration's [registries] (credentials included) or as addresses"
        ));
    }
    let promotion = args
        .request()
        .resolve(&is_name)
        .map_err(|e| CommandError::Destination(Box::new(e)))?;
    let source_store = stores.open(&promotion.source.location)?;
    let target_store = stores.open(&promotion.target.location)?;
    // Planning (all of `--dry-run`) sees read-only handles: it cannot write.
    let handles = read_only([
        (promotion.source.location.to_string(), &source_store),
        (promotion.target.location.to_string(), &target_store),
    ]);
    let plan = promotion
        .plan(&handles, !args.no_referrers)
        .map_err(|cause| CommandError::Promote {
            source_ref: promotion.source.to_string(),
            target_ref: promotion.target.to_string(),
            cause: Box::new(cause),
        })?;
    report::print_raw(&render::render_table(&plan));
    if args.dry_run {
        return Ok(ExitStatus::Success);
    }
    let handles = StoreMap::from([
        (promotion.source.location.to_string(), source_store),
        (promotion.target.location.to_string(), target_store),
    ]);
    let status = run_promotion(&plan, &handles, (stores, loaded), &args.output, started)?;
    if status == ExitStatus::Success {
        // The result scripts want: where each tag now is, by digest.
        let written: Vec<String> = plan
            .entries
            .iter()
            .filter(|e| !e.role.is_attached())
            .map(|e| written(&promotion.target, e))
            .collect();
        report::print_lines(&written);
    }
    Ok(status)
}

/// `REGISTRY/REPOSITORY:TAG@DIGEST` of an entry's target tag.
fn written(target: &Reference, entry: &PlanEntry) -> String {
    Reference {
        tag: Some(entry.target.tag.clone()),
        digest: Some(entry.target_digest().clone()),
        ..target.clone()
    }
    .to_string()
}
