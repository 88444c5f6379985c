//! [`RegistryBuilder`]: a test registry's options, and starting it with
//! them (TLS files, htpasswd or token auth, a free port).

use std::fs;
use std::path::Path;

use super::{
    START_ATTEMPTS, TOKEN_SERVICE, TestRegistry, TlsFiles, TokenServer, certs, free_port, quoted,
    random_hex, registry_binary,
};

/// Options for a [`TestRegistry`]; get one from [`TestRegistry::builder`].
#[derive(Default)]
pub struct RegistryBuilder {
    htpasswd: Option<(String, String)>,
    tls: bool,
    token_auth: Option<(String, String)>,
    /// The service the token registry announces; [`TOKEN_SERVICE`] by default.
    token_service: Option<String>,
    catalog_max_entries: Option<u32>,
}

impl RegistryBuilder {
    /// Basic auth from an htpasswd file holding `user` (bcrypt, cost 4).
    pub fn htpasswd(mut self, user: &str, password: &str) -> Self {
        self.htpasswd = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Serve https with a server certificate signed by a test CA ([`TestRegistry::ca_file`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Bearer-token auth through a [`TokenServer`] that knows `user`/`password`.
    pub fn token_auth(mut self, user: &str, password: &str) -> Self {
        self.token_auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// The service name a `token_auth` registry announces and its token
    /// server issues for (Docker Hub's is `registry.docker.io`).
    pub fn token_service(mut self, service: &str) -> Self {
        self.token_service = Some(service.to_owned());
        self
    }

    /// Cap catalog pages at `n` entries (`catalog.maxentries`), to force pagination.
    pub fn catalog_max_entries(mut self, n: u32) -> Self {
        self.catalog_max_entries = Some(n);
        self
    }

    /// Starts the registry and waits until it answers `GET /v2/`.
    pub fn start(self) -> TestRegistry {
        assert!(
            self.htpasswd.is_none() || self.token_auth.is_none(),
            "a test registry takes htpasswd or token_auth, not both"
        );
        // Fail with install instructions before making keys and servers.
        registry_binary();
        let dir = tempfile::Builder::new()
            .prefix("hoist-registry-")
            .tempdir()
            .expect("create the registry's temporary directory");
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).expect("create the registry storage directory");

        let tls = self.tls.then(|| write_tls_files(dir.path()));

        let mut auth_yaml = String::new();
        let mut token_server = None;
        if let Some((user, password)) = &self.htpasswd {
            auth_yaml = htpasswd_auth_yaml(dir.path(), user, password);
        }
        if let Some((user, password)) = &self.token_auth {
            let server = TokenServer::start(
                user,
                password,
                self.token_service.as_deref().unwrap_or(TOKEN_SERVICE),
            );
            auth_yaml = token_auth_yaml(dir.path(), &server);
            token_server = Some(server);
        }

        let registry = TestRegistry {
            host: String::new(),
            tls,
            credentials: self.htpasswd.or(self.token_auth),
            token_server,
            storage,
            config_path: dir.path().join("config.yml"),
            log_path: dir.path().join("registry.log"),
            auth_yaml,
            catalog_max_entries: self.catalog_max_entries,
            secret: random_hex(16),
            child: None,
            dir,
        };
        launch_on_a_free_port(registry)
    }
}

/// Writes the test CA, the server certificate and its key into `dir`.
fn write_tls_files(dir: &Path) -> TlsFiles {
    let certs = certs::tls_certificates();
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        certificate: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    fs::write(&files.ca, &certs.ca_pem).expect("write the CA certificate");
    fs::write(&files.certificate, &certs.cert_pem).expect("write the server certificate");
    fs::write(&files.key, &certs.key_pem).expect("write the server key");
    files
}

/// Writes an htpasswd file holding `user` into `dir`; the `auth:` section
/// that points the registry at it.
fn htpasswd_auth_yaml(dir: &Path, user: &str, password: &str) -> String {
    let hash = bcrypt::hash_with_result(password, 4)
        .expect("bcrypt the test password")
        .format_for_version(bcrypt::Version::TwoY);
    let path = dir.join("htpasswd");
    fs::write(&path, format!("{user}:{hash}\n")).expect("write the htpasswd file");
    format!(
        "auth:\n  htpasswd:\n    realm: \"hoist-test\"\n    path: {}\n",
        quoted(&path.to_string_lossy())
    )
}

/// Writes the root certificate of `server` into `dir`; the `auth:` section
/// that sends clients to `server` for tokens.
fn token_auth_yaml(dir: &Path, server: &TokenServer) -> String {
    let bundle = dir.join("token-root.pem");
    fs::write(&bundle, server.root_cert_pem()).expect("write the token root certificate");
    format!(
        "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
        quoted(&server.realm()),
        quoted(server.service()),
        quoted(server.issuer()),
        quoted(&bundle.to_string_lossy()),
    )
}

/// Launches `registry` on a free port, trying another (up to
/// [`START_ATTEMPTS`] in all) when the one picked was taken meanwhile.
fn launch_on_a_free_port(mut registry: TestRegistry) -> TestRegistry {
    // The port is free when picked but may be taken before the registry
    // binds it (another test's client, say): then pick another.
    for attempt in 1..=START_ATTEMPTS {
        registry.host = format!("127.0.0.1:{}", free_port());
        match registry.launch() {
            Ok(()) => return registry,
            Err(failure) => {
                let log = fs::read_to_string(&registry.log_path).unwrap_or_default();
                if attempt < START_ATTEMPTS && log.contains("address already in use") {
                    continue;
                }
                panic!("{}", registry.startup_panic_message(&failure));
            }
        }
    }
    unreachable!("the last attempt returns or panics")
}
