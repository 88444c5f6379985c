//! Target repositories a registry does not create on push (ECR, Harbor and
//! GitLab projects). The first write refused for one names it; the run
//! remembers it, so further images of that repository fail at once with
//! the same message, and other repositories go on.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::error::MissingRepository;
use crate::plan::RepositoryKey;
use crate::registry::RegistryError;

/// The target repositories found missing so far this run.
#[derive(Debug, Default)]
pub(super) struct MissingRepositories(Mutex<BTreeMap<RepositoryKey, MissingRepository>>);

impl MissingRepositories {
    /// Why nothing can be written to `repository` of `registry`, if it was
    /// found missing.
    pub(super) fn known(&self, registry: &str, repository: &str) -> Option<MissingRepository> {
        self.found_so_far().get(&key(registry, repository)).cloned()
    }

    /// Records that the registry refused a write to `repository` with
    /// `refused` because it does not exist; what to tell about it (the
    /// first refusal's words, whichever write comes later).
    pub(super) fn found(
        &self,
        registry: &str,
        repository: &str,
        refused: &RegistryError,
    ) -> MissingRepository {
        self.found_so_far()
            .entry(key(registry, repository))
            .or_insert_with(|| MissingRepository {
                registry: registry.to_string(),
                repository: repository.to_string(),
                said: refused.to_string(),
            })
            .clone()
    }

    fn found_so_far(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<RepositoryKey, MissingRepository>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn key(registry: &str, repository: &str) -> RepositoryKey {
    RepositoryKey {
        registry: registry.to_string(),
        repository: repository.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_unknown(repository: &str) -> RegistryError {
        RegistryError::Status {
            method: "POST".into(),
            url: format!("https://ecr.example/v2/{repository}/blobs/uploads/"),
            status: 404,
            codes: vec!["NAME_UNKNOWN".into()],
            message: format!(
                "The repository with name '{repository}' does not exist in the registry with id '123'"
            ),
            retry_after: None,
        }
    }

    #[test]
    fn a_missing_repository_is_remembered_with_its_first_refusal() {
        let missing = MissingRepositories::default();
        assert_eq!(missing.known("prod", "apps/db"), None);
        let first = missing.found("prod", "apps/db", &name_unknown("apps/db"));
        // A later refusal (another write, in other words) changes nothing.
        let other = RegistryError::Status {
            method: "PUT".into(),
            url: "https://ecr.example/v2/apps/db/manifests/1.0".into(),
            status: 404,
            codes: vec!["NAME_UNKNOWN".into()],
            message: "repository name not known to registry".into(),
            retry_after: None,
        };
        assert_eq!(missing.found("prod", "apps/db", &other), first);
        assert_eq!(missing.known("prod", "apps/db"), Some(first));
        // Another repository, or the same one on another registry, is not.
        assert_eq!(missing.known("prod", "apps/web"), None);
        assert_eq!(missing.known("staging", "apps/db"), None);
    }

    #[test]
    fn the_message_names_what_to_create_where_and_how() {
        let missing = MissingRepositories::default();
        let message = missing
            .found("prod", "apps/db", &name_unknown("apps/db"))
            .to_string();
        for part in [
            "repository `apps/db` does not exist on `prod`",
            "does not create repositories on push",
            "aws ecr create-repository --repository-name apps/db",
            "Harbor, GitLab: create the project",
            "then run again",
            "HTTP 404 NAME_UNKNOWN: The repository with name 'apps/db' does not exist",
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
    }
}
