//! Where and how to reach one registry: scheme, host, TLS trust, credentials, limits.

use std::path::PathBuf;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::credentials::CredentialSource;
use crate::registry::retry::RetryPolicy;

/// Chunk size for `PATCH` uploads when a registry needs them.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Page size asked of `_catalog` and `tags/list`.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP: only by default for loopback hosts.
    Http,
    /// HTTPS.
    Https,
}

/// A registry's address and connection settings.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host[:port]` as users name it (`docker.io` for Docker Hub): the credential key.
    pub host: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS verification; only when explicitly asked.
    pub insecure: bool,
    /// Where the credentials come from.
    pub credentials: CredentialSource,
    /// Entries per page for catalog and tag listings.
    pub page_size: usize,
    /// Idle timeout for each read or write.
    pub timeout: Duration,
    /// Upload in `PATCH` chunks of this size instead of one monolithic `PUT`.
    pub chunk_size: Option<u64>,
    /// Concurrent operations allowed; unbounded (the job count) when `None`.
    pub max_connections: Option<usize>,
    /// Client-side request rate limit.
    pub requests_per_second: Option<f64>,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    base_url: String,
}

/// A registry address or TLS file that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct EndpointError(pub String);

impl Endpoint {
    /// Parses `https://host[:port]`, `http://host[:port]` or a bare `host[:port]`
    /// (https, except loopback hosts, which default to http as docker does).
    /// A URL with a scheme may carry a path: the registry is served under it
    /// (Artifactory's `https://host/artifactory/api/docker/REPO-KEY`, Nexus's
    /// `https://host/repository/NAME`), and every request goes below it.
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        let url = url.trim().trim_end_matches('/');
        let (scheme, address) = match url.split_once("://") {
            Some(("https", address)) => (Some(Scheme::Https), address),
            Some(("http", address)) => (Some(Scheme::Http), address),
            Some((other, _)) => {
                return Err(EndpointError(format!(
                    "unsupported scheme `{other}` in `{url}` (use https://, http:// or oci-layout:)"
                )));
            }
            None => (None, url),
        };
        let (host, path) = match address.split_once('/') {
            Some((host, path)) => (host, format!("/{}", path.trim_matches('/'))),
            None => (address, String::new()),
        };
        let bad = |why: &str| {
            EndpointError(format!(
                "`{url}` is not a registry address ({why}; expected host[:port], or a URL such as https://host/path)"
            ))
        };
        if host.is_empty() || host.contains(['?', '#', '@', ' ']) {
            return Err(bad("no usable host"));
        }
        if !path.is_empty() && scheme.is_none() {
            return Err(bad("a path needs a scheme: write https:// before it"));
        }
        if path.contains(['?', '#', ' ']) || path.contains("//") {
            return Err(bad("the path is not a plain path"));
        }
        if path == "/v2" || path.ends_with("/v2") {
            return Err(bad("leave out `/v2`: hoist adds it to every request"));
        }
        let scheme = scheme.unwrap_or(if is_loopback(host) {
            Scheme::Http
        } else {
            Scheme::Https
        });
        let mut endpoint = Endpoint::new(host, scheme);
        endpoint.base_url.push_str(&path);
        Ok(endpoint)
    }

    /// An endpoint for `host` with default settings.
    pub fn new(host: &str, scheme: Scheme) -> Endpoint {
        let host = host.to_ascii_lowercase();
        let api_host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host.as_str()
        };
        let base_url = match scheme {
            Scheme::Http => format!("http://{api_host}"),
            Scheme::Https => format!("https://{api_host}"),
        };
        Endpoint {
            host,
            scheme,
            ca_file: None,
            insecure: false,
            credentials: CredentialSource::default(),
            page_size: DEFAULT_PAGE_SIZE,
            timeout: Duration::from_secs(60),
            chunk_size: None,
            max_connections: None,
            requests_per_second: None,
            retry: RetryPolicy::default(),
            base_url,
        }
    }

    /// `scheme://host[:port][/path]` of the API: requests go to `/v2/…` below it.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The socket addresses the host resolves to, each with the API path,
    /// and the base URL itself (kept when the name does not resolve).
    pub fn locations(&self) -> Vec<String> {
        use std::net::ToSocketAddrs;
        let authority = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, rest)| rest);
        let (address, path) = authority
            .split_once('/')
            .map_or((authority, ""), |(address, path)| (address, path));
        let has_port = match address.rsplit_once(':') {
            Some((name, port)) => {
                (!name.contains(':') || name.ends_with(']'))
                    && port.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        };
        let with_port = match (has_port, self.scheme) {
            (true, _) => address.to_string(),
            (false, Scheme::Http) => format!("{address}:80"),
            (false, Scheme::Https) => format!("{address}:443"),
        };
        let mut locations: Vec<String> = with_port
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| format!("{a}/{path}")).collect())
            .unwrap_or_default();
        locations.sort();
        locations.dedup();
        locations.push(self.base_url.clone());
        locations
    }

    /// TLS settings: system roots plus `ca_file`; verification off only when `insecure`.
    pub fn tls_config(&self) -> Result<TlsConfig, EndpointError> {
        let builder = TlsConfig::builder().disable_verification(self.insecure);
        let Some(ca_file) = &self.ca_file else {
            return Ok(builder.root_certs(system_roots()).build());
        };
        let pem = std::fs::read(ca_file).map_err(|e| {
            EndpointError(format!("cannot read ca_file {}: {e}", ca_file.display()))
        })?;
        let mut certs = pem_certificates(&pem)
            .map_err(|e| EndpointError(format!("ca_file {}: {e}", ca_file.display())))?;
        if certs.is_empty() {
            return Err(EndpointError(format!(
                "ca_file {} holds no PEM certificate",
                ca_file.display()
            )));
        }
        if let RootCerts::Specific(system) = system_roots() {
            certs.extend(system.iter().cloned());
        }
        Ok(builder
            .root_certs(RootCerts::new_with_certs(&certs))
            .build())
    }
}

/// Whether a `host[:port]` is on the loopback interface.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    name == "localhost" || name == "::1" || name.starts_with("127.")
}

fn pem_certificates(pem: &[u8]) -> Result<Vec<Certificate<'static>>, ureq::Error> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let PemItem::Certificate(cert) = item? {
            certs.push(cert);
        }
    }
    Ok(certs)
}

/// The operating system's CA bundle (`SSL_CERT_FILE` or Debian's path); Mozilla's roots if none.
fn system_roots() -> RootCerts {
    let candidates = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
            ]
            .map(PathBuf::from),
        );
    for path in candidates {
        if let Ok(pem) = std::fs::read(&path)
            && let Ok(certs) = pem_certificates(&pem)
            && !certs.is_empty()
        {
            return RootCerts::new_with_certs(&certs);
        }
    }
    RootCerts::WebPki
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_default_like_docker() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:5000").unwrap().base_url(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(Endpoint::parse("localhost").unwrap().scheme, Scheme::Http);
        assert_eq!(
            Endpoint::parse("reg.example.com").unwrap().base_url(),
            "https://reg.example.com"
        );
        assert_eq!(
            Endpoint::parse("https://127.0.0.1:5000/").unwrap().scheme,
            Scheme::Https
        );
        assert_eq!(
            Endpoint::parse("docker.io").unwrap().base_url(),
            "https://registry-1.docker.io"
        );
        assert!(Endpoint::parse("ftp://x").is_err());
    }

    #[test]
    fn a_url_path_is_where_the_registry_is_served() {
        let artifactory =
            Endpoint::parse("https://jfrog.example.com/artifactory/api/docker/docker-local/")
                .unwrap();
        assert_eq!(
            artifactory.base_url(),
            "https://jfrog.example.com/artifactory/api/docker/docker-local"
        );
        // Credentials are looked up by host, as `docker login` stores them.
        assert_eq!(artifactory.host, "jfrog.example.com");
        let nexus = Endpoint::parse("http://127.0.0.1:8081/repository/docker-hosted").unwrap();
        assert_eq!(
            nexus.base_url(),
            "http://127.0.0.1:8081/repository/docker-hosted"
        );
        for bad in [
            "registry.example.com/prefix",
            "https://x/a?b",
            "https://x/a//b",
            "https:///path",
            "https://x/v2/",
            "https://x/artifactory/api/docker/local/v2",
        ] {
            let error = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(error.contains(bad.trim_end_matches('/')), "{bad}: {error}");
        }
        assert!(
            Endpoint::parse("reg.example.com/prefix")
                .unwrap_err()
                .to_string()
                .contains("a path needs a scheme")
        );
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("localhost.example.com"));
    }
}
