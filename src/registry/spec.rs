//! What a registry is, parsed once from the configuration or a command line:
//! an HTTP endpoint (address, credentials source, TLS trust, limits) or a
//! directory of OCI layouts. Stores are opened from specs, never from the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::distribution::{Endpoint, EndpointError};
use super::retry::RetryPolicy;

/// Prefix of `url`s naming a directory of OCI layouts.
pub const OCI_LAYOUT_SCHEME: &str = "oci-layout:";

/// A registry, as hoist will open it.
#[derive(Clone, Debug)]
pub enum RegistrySpec {
    /// The Distribution API over HTTP(S).
    Http(Endpoint),
    /// A directory whose sub-directories are OCI image layouts.
    OciLayout(PathBuf),
}

impl RegistrySpec {
    /// Parses an address as a user writes it: `oci-layout:DIR`, or a registry
    /// (`host[:port]`, `http://…`, `https://…`) with default settings.
    pub fn parse(url: &str) -> Result<RegistrySpec, EndpointError> {
        match url.strip_prefix(OCI_LAYOUT_SCHEME) {
            Some(dir) if dir.trim().is_empty() => Err(EndpointError(
                "`oci-layout:` needs a directory (write `oci-layout:./dir`, relative to the configuration file)".to_string(),
            )),
            Some(dir) => Ok(RegistrySpec::OciLayout(dir.into())),
            None => Endpoint::parse(url).map(RegistrySpec::Http),
        }
    }

    /// The spec with relative paths (a layout directory, a CA file) taken
    /// relative to `base`, the configuration file's directory.
    pub fn relative_to(self, base: &Path) -> RegistrySpec {
        let resolve = |path: PathBuf| {
            if path.is_absolute() {
                path
            } else {
                base.join(path)
            }
        };
        match self {
            RegistrySpec::OciLayout(dir) => RegistrySpec::OciLayout(resolve(dir)),
            RegistrySpec::Http(mut endpoint) => {
                endpoint.ca_file = endpoint.ca_file.map(resolve);
                RegistrySpec::Http(endpoint)
            }
        }
    }
}

/// What every HTTP store of a run shares, from the layered settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSettings {
    /// Parallel transfers: connections kept per registry.
    pub jobs: usize,
    /// Idle timeout of each read or write.
    pub timeout: Duration,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// Entries asked per catalog or tag-list page.
    pub page_size: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            jobs: 16,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            page_size: super::distribution::DEFAULT_PAGE_SIZE,
        }
    }
}
