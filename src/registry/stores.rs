//! Opens stores by where they are: a host, an `oci-layout:` directory, or a
//! registry named in the configuration (by its parsed [`RegistrySpec`]). One
//! handle per store, shared, so tokens and connections are reused.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::Registry;
use super::distribution::{Client, DistributionRegistry, Endpoint, build_client};
use super::oci_layout::OciLayoutStore;
use super::spec::{RegistrySpec, StoreSettings};
use crate::reference::Location;

/// A store that cannot be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// A name that is not a `[registries.NAME]`.
    #[error("no registry named `{0}` in the configuration")]
    UnknownName(String),
    /// A bad address or TLS file.
    #[error("registry `{name}`: {message}")]
    Invalid {
        /// Registry name or host.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// Every store a run uses, opened once each.
pub struct Stores {
    /// The configured registries, by name.
    named: BTreeMap<String, RegistrySpec>,
    settings: StoreSettings,
    opened: Mutex<HashMap<Location, Arc<dyn Registry>>>,
    /// Agents by TLS settings: registries that trust the same roots share connections' configuration.
    agents: Mutex<HashMap<(Option<PathBuf>, bool), Client>>,
}

impl Stores {
    /// Stores for a run: the configured registries by name, and the
    /// settings every HTTP store gets.
    pub fn new(named: BTreeMap<String, RegistrySpec>, settings: StoreSettings) -> Stores {
        Stores {
            named,
            settings: StoreSettings {
                jobs: settings.jobs.max(1),
                ..settings
            },
            opened: Mutex::new(HashMap::new()),
            agents: Mutex::new(HashMap::new()),
        }
    }

    /// The settings every HTTP store of the run gets.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// Whether `name` is a `[registries.NAME]` of the configuration.
    pub fn is_registry_name(&self, name: &str) -> bool {
        self.named.contains_key(name)
    }

    /// The store at `location`, opening it the first time.
    pub fn open(&self, location: &Location) -> Result<Arc<dyn Registry>, OpenError> {
        if let Some(store) = self
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(location)
        {
            return Ok(store.clone());
        }
        let store: Arc<dyn Registry> = match location {
            Location::OciLayout(dir) => Arc::new(OciLayoutStore::new(dir.clone())),
            Location::Host(host) => {
                let endpoint = Endpoint::parse(host).map_err(|e| OpenError::Invalid {
                    name: host.clone(),
                    message: e.0,
                })?;
                self.distribution(host, endpoint)?
            }
            Location::Named(name) => match self.named.get(name) {
                None => return Err(OpenError::UnknownName(name.clone())),
                Some(RegistrySpec::OciLayout(dir)) => Arc::new(OciLayoutStore::new(dir.clone())),
                Some(RegistrySpec::Http(endpoint)) => self.distribution(name, endpoint.clone())?,
            },
        };
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(location.clone(), store.clone());
        Ok(store)
    }

    /// A Distribution client for `endpoint` with the run's settings, sharing
    /// an agent with registries of the same TLS trust.
    fn distribution(
        &self,
        name: &str,
        mut endpoint: Endpoint,
    ) -> Result<Arc<dyn Registry>, OpenError> {
        endpoint.timeout = self.settings.timeout;
        endpoint.retry = self.settings.retry;
        endpoint.page_size = self.settings.page_size;
        let key = (endpoint.ca_file.clone(), endpoint.insecure);
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        let agent = match agents.get(&key) {
            Some(agent) => agent.clone(),
            None => {
                let agent = build_client(&endpoint, self.settings.jobs).map_err(|e| {
                    OpenError::Invalid {
                        name: name.to_string(),
                        message: e.0,
                    }
                })?;
                agents.insert(key, agent.clone());
                agent
            }
        };
        Ok(Arc::new(DistributionRegistry::new(endpoint, agent)))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::seed::{ImageSpec, LayerSpec, push_image};

    /// `promotions.toml` with `text` written into `dir`, loaded as hoist loads it.
    fn stores_for(dir: &Path, text: &str) -> Stores {
        let path = dir.join("promotions.toml");
        std::fs::write(&path, text).unwrap();
        let loaded = crate::config::LoadedConfig::load(&path).unwrap();
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let settings = StoreSettings {
            jobs: 2,
            ..StoreSettings::default()
        };
        Stores::new(loaded.registries, settings)
    }

    #[test]
    fn opening_a_location_twice_shares_one_handle() {
        let dir = tempfile::tempdir().unwrap();
        let stores = stores_for(
            dir.path(),
            "[registries.prod]\nurl = \"registry.example.com\"\n",
        );
        for location in [
            Location::Named("prod".into()),
            Location::Host("127.0.0.1:5000".into()),
            Location::OciLayout(dir.path().join("store")),
        ] {
            let first = stores.open(&location).unwrap();
            let second = stores.open(&location).unwrap();
            assert!(Arc::ptr_eq(&first, &second), "{location}");
        }
        // Different locations get different handles.
        let a = stores
            .open(&Location::Host("127.0.0.1:5000".into()))
            .unwrap();
        let b = stores
            .open(&Location::Host("127.0.0.1:5001".into()))
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn a_relative_oci_layout_path_is_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = dir.path().join("conf");
        std::fs::create_dir_all(&config_dir).unwrap();
        let image = ImageSpec::oci("relative", vec![LayerSpec { size: 8, seed: 3 }]);
        let written = OciLayoutStore::new(config_dir.join("images"));
        let manifest = push_image(&written, "app", "1.0", &image).unwrap();

        // The test process runs elsewhere: only the config's directory makes `images` findable.
        let stores = stores_for(
            &config_dir,
            "[registries.local]\nurl = \"oci-layout:images\"\n",
        );
        let store = stores.open(&Location::Named("local".into())).unwrap();
        assert_eq!(
            store.display_name(),
            format!("oci-layout:{}", config_dir.join("images").display())
        );
        assert_eq!(store.tags("app").unwrap(), ["1.0"]);
        assert_eq!(
            store.manifest_head("app", "1.0").unwrap().map(|h| h.digest),
            Some(manifest.digest)
        );
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let stores = stores_for(dir.path(), "[registries.prod]\nurl = \"oci-layout:p\"\n");
        let error = stores
            .open(&Location::Named("staging".into()))
            .err()
            .unwrap();
        assert_eq!(error, OpenError::UnknownName("staging".into()));
        assert_eq!(
            error.to_string(),
            "no registry named `staging` in the configuration"
        );
        assert!(stores.is_registry_name("prod"));
        assert!(!stores.is_registry_name("staging"));
    }
}
