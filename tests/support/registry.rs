//! Real CNCF Distribution registries (`docker-registry serve`) for integration tests.
//!
//! Each [`TestRegistry`] owns a temporary directory holding its config, its
//! storage and its log, listens on `127.0.0.1:<free port>`, and is killed when
//! dropped. The registry process is also tied to the test process, so it dies
//! with it even when the tests are interrupted.
// Each test binary uses a different part of the harness.
#![allow(dead_code)]

mod builder;

use std::fs::{self, OpenOptions};
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use super::certs;
use super::token_server::TokenServer;

pub use self::builder::RegistryBuilder;
/// Other helper processes (the WAN proxy) die with the test process too.
pub use spawn::spawn_tied_to_test_process;

const INSTALLED_PATH: &str = "/usr/bin/docker-registry";
const NOT_INSTALLED: &str = "docker-registry is not installed: run `sudo apt-get install -y docker-registry` (or ./scripts/test, which installs it)";

/// The service name registries with token auth announce (the JWT `aud`).
pub const TOKEN_SERVICE: &str = "hoist-test-registry";

/// How long a registry gets to answer `GET /v2/` after being spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many ports `start` tries before giving up.
const START_ATTEMPTS: usize = 3;

/// How long `restart` waits after SIGTERM before sending SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A running Distribution registry, stopped (and its storage deleted) on drop.
pub struct TestRegistry {
    host: String,
    tls: Option<TlsFiles>,
    credentials: Option<(String, String)>,
    token_server: Option<TokenServer>,
    storage: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    /// The `auth:` section of the config, already rendered.
    auth_yaml: String,
    catalog_max_entries: Option<u32>,
    secret: String,
    child: Option<Child>,
    // Declared last so the directory outlives everything that points into it.
    dir: tempfile::TempDir,
}

struct TlsFiles {
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
}

impl TestRegistry {
    /// Anonymous plain-http registry on 127.0.0.1:<free port>, temp storage dir.
    pub fn start() -> TestRegistry {
        TestRegistry::builder().start()
    }

    /// Options for auth, TLS and catalog paging.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http://127.0.0.1:PORT`, or `https://…` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// Root of the storage directory (filesystem driver `rootdirectory`).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// Where the registry keeps the bytes of blob `sha256:<hex>`, so tests can
    /// corrupt or remove them.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        blob_data_in(&self.storage, digest)
    }

    /// PEM file of the CA that signed the registry's certificate (TLS only).
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|tls| tls.ca.as_path())
    }

    /// `(username, password)` when basic or token auth is on.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// The token server behind a `token_auth` registry.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// The registry's log (stdout and stderr, across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id of the running registry.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the registry is running")
    }

    /// A `ureq` agent that trusts this registry's CA and hands back 4xx/5xx
    /// answers as responses instead of errors: for poking the registry directly.
    pub fn http_agent(&self) -> ureq::Agent {
        self.agent_with_timeout(Duration::from_secs(30))
    }

    /// Tags of `repository` as the registry lists them (`GET
    /// /v2/NAME/tags/list`), read without hoist, sorted; empty when the
    /// repository does not exist.
    pub fn read_tags(&self, repository: &str) -> Vec<String> {
        let url = format!("{}/v2/{repository}/tags/list", self.url());
        let mut response = self.direct_request(self.http_agent().get(&url));
        match response.status().as_u16() {
            404 => return Vec::new(),
            200 => {}
            status => panic!("GET {url}: HTTP {status}"),
        }
        let text = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let body: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"));
        let mut tags: Vec<String> = body["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        tags.sort();
        tags
    }

    /// The digest the registry serves for `repository:reference` (HEAD,
    /// `Docker-Content-Digest`), read without hoist; `None` when absent.
    pub fn read_manifest_digest(&self, repository: &str, reference: &str) -> Option<String> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.url());
        let response = self.direct_request(self.http_agent().head(&url).header(
            "Accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        ));
        match response.status().as_u16() {
            404 => None,
            200 => Some(
                response
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_else(|| panic!("HEAD {url}: no Docker-Content-Digest"))
                    .to_string(),
            ),
            status => panic!("HEAD {url}: HTTP {status}"),
        }
    }

    /// Sends a request of the test's own, with basic credentials when the
    /// registry wants them.
    fn direct_request(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    ) -> ureq::http::Response<ureq::Body> {
        assert!(
            self.token_server.is_none(),
            "reading a token-auth registry directly is not supported"
        );
        let request = match self.credentials() {
            Some((user, password)) => {
                use base64::Engine as _;
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                request.header("Authorization", format!("Basic {basic}"))
            }
            None => request,
        };
        request
            .call()
            .unwrap_or_else(|e| panic!("request to {}: {e}", self.host))
    }

    fn agent_with_timeout(&self, timeout: Duration) -> ureq::Agent {
        http_agent_trusting(self.ca_file(), timeout)
    }

    /// Stops the process (SIGTERM, then SIGKILL after ~3 s) and starts it
    /// again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop(STOP_GRACE);
        if let Err(failure) = self.launch() {
            panic!("{}", self.startup_panic_message(&failure));
        }
    }

    /// Kills the process (SIGKILL: a crash), leaves the port closed for
    /// `down`, and starts it again on the same port and storage.
    pub fn crash_and_restart_after(&mut self, down: Duration) {
        self.stop(Duration::ZERO);
        thread::sleep(down);
        if let Err(failure) = self.launch() {
            panic!("{}", self.startup_panic_message(&failure));
        }
    }

    /// Kills the process, giving it `grace` to exit on SIGTERM first.
    fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if !grace.is_zero() {
            signal::terminate(child.id());
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill(); // SIGKILL; fails only if it already exited
        let _ = child.wait();
    }

    /// Writes the config, spawns the registry and waits until it answers.
    fn launch(&mut self) -> Result<(), StartupFailure> {
        fs::write(&self.config_path, self.render_config()).expect("write the registry config");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the registry log file");
        let mut command = Command::new(registry_binary());
        command
            .arg("serve")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("share the registry log file"))
            .stderr(log);
        let child = spawn::spawn_tied_to_test_process(command)
            .unwrap_or_else(|e| panic!("spawn {}: {e}", registry_binary().display()));
        self.child = Some(child);
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> Result<(), StartupFailure> {
        // Short timeouts: a registry that accepts but never answers must not
        // stretch the startup deadline.
        let agent = self.agent_with_timeout(Duration::from_secs(1));
        let probe = format!("{}/v2/", self.url());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("the registry was spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(StartupFailure::Exited(status.to_string()));
            }
            // Any HTTP answer, 401 included, means the registry is serving.
            match agent.get(&probe).call() {
                Ok(_) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    self.stop(Duration::ZERO);
                    return Err(StartupFailure::NoAnswer(error.to_string()));
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn startup_panic_message(&self, failure: &StartupFailure) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        let config = fs::read_to_string(&self.config_path).unwrap_or_default();
        format!(
            "docker-registry on {} did not start: {failure}\n--- registry log ---\n{log}\n--- config.yml ---\n{config}",
            self.host,
        )
    }

    fn render_config(&self) -> String {
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {}\n  secret: {}\n",
            quoted(&self.storage.to_string_lossy()),
            quoted(&self.host),
            quoted(&self.secret),
        );
        if let Some(tls) = &self.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                quoted(&tls.certificate.to_string_lossy()),
                quoted(&tls.key.to_string_lossy()),
            ));
        }
        if let Some(n) = self.catalog_max_entries {
            yaml.push_str(&format!("catalog:\n  maxentries: {n}\n"));
        }
        yaml.push_str(&self.auth_yaml);
        yaml
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

/// Why a registry did not come up.
enum StartupFailure {
    Exited(String),
    NoAnswer(String),
}

impl std::fmt::Display for StartupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupFailure::Exited(status) => write!(f, "the process exited ({status})"),
            StartupFailure::NoAnswer(error) => write!(
                f,
                "no answer to GET /v2/ within {}s (last error: {error})",
                STARTUP_TIMEOUT.as_secs()
            ),
        }
    }
}

/// `/usr/bin/docker-registry`, else `docker-registry` on `PATH`; panics with
/// install instructions when neither exists, so tests never skip silently.
fn registry_binary() -> PathBuf {
    static BINARY: OnceLock<Option<PathBuf>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let installed = PathBuf::from(INSTALLED_PATH);
            if installed.is_file() {
                return Some(installed);
            }
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("docker-registry"))
                    .find(|candidate| candidate.is_file())
            })
        })
        .clone()
        .expect(NOT_INSTALLED)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port on 127.0.0.1")
        .port()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("system randomness");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serialises")
}

/// Keeps registry processes from outliving the test process.
mod spawn {
    use super::*;

    type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

    /// Spawns `command` so the kernel kills it when the test process dies.
    ///
    /// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
    /// and test threads end with their test, so all children are forked by one
    /// thread that lives as long as the process. That covers registries that
    /// are never dropped (in a `static`, after `mem::forget`, or when the test
    /// binary itself is killed).
    pub fn spawn_tied_to_test_process(mut command: Command) -> io::Result<Child> {
        static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
        let spawner = SPAWNER.get_or_init(|| {
            let (requests, incoming) = mpsc::channel::<SpawnRequest>();
            thread::Builder::new()
                .name("registry-spawner".into())
                .spawn(move || {
                    for (mut command, reply) in incoming {
                        let _ = reply.send(command.spawn());
                    }
                })
                .expect("start the registry spawner thread");
            requests
        });
        die_with_parent(&mut command);
        let (reply, answer) = mpsc::channel();
        spawner
            .send((command, reply))
            .expect("the registry spawner thread is running");
        answer.recv().expect("the registry spawner thread answers")
    }

    #[cfg(target_os = "linux")]
    fn die_with_parent(command: &mut Command) {
        use std::os::raw::{c_int, c_ulong};
        use std::os::unix::process::CommandExt;

        unsafe extern "C" {
            fn prctl(option: c_int, ...) -> c_int;
        }
        const PR_SET_PDEATHSIG: c_int = 1;
        const SIGKILL: c_ulong = 9;
        // SAFETY: prctl is async-signal-safe and touches no memory of ours,
        // which is all a pre_exec hook (run between fork and exec) may do.
        unsafe {
            command.pre_exec(|| {
                if prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn die_with_parent(_command: &mut Command) {}
}

/// SIGTERM by pid, for a graceful stop.
mod signal {
    #[cfg(unix)]
    pub fn terminate(pid: u32) {
        use std::os::raw::c_int;
        unsafe extern "C" {
            fn kill(pid: c_int, sig: c_int) -> c_int;
        }
        const SIGTERM: c_int = 15;
        let Ok(pid) = c_int::try_from(pid) else {
            return;
        };
        // SAFETY: kill(2) only sends a signal; the pid is our own child, not
        // yet reaped, so it cannot name another process.
        unsafe {
            kill(pid, SIGTERM);
        }
    }

    #[cfg(not(unix))]
    pub fn terminate(_pid: u32) {}
}

/// A `ureq` agent that trusts `ca` (if given) and hands back 4xx/5xx answers
/// as responses instead of errors.
pub fn http_agent_trusting(ca: Option<&Path>, timeout: Duration) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout));
    if let Some(ca) = ca {
        let pem = fs::read(ca).expect("read the test CA file");
        let roots: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
                .build(),
        );
    }
    config.build().new_agent()
}

/// Where a registry with storage at `storage` keeps the bytes of blob
/// `sha256:<hex>`.
pub fn blob_data_in(storage: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("a blob digest is \"sha256:<64 hex>\", got {digest:?}"));
    storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}
