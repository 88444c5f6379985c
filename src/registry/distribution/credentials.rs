//! Where registry credentials come from: environment variables named in the
//! configuration, or the login files of docker (`config.json`: `auths`,
//! `credHelpers`, `credsStore`) and then of podman, skopeo and buildah
//! (`auth.json`, same format). A lookup that fails is an error, never
//! anonymous access; what is found says where it came from, so a refusal can
//! name it without showing it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

/// How to find the credentials of one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CredentialSource {
    /// docker's config.json and its credential helpers (the default).
    #[default]
    DockerConfig,
    /// Username and password in these environment variables.
    Env {
        /// Variable holding the username.
        username_env: String,
        /// Variable holding the password.
        password_env: String,
    },
    /// A ready bearer token in this environment variable.
    TokenEnv(String),
    /// No credentials at all.
    Anonymous,
}

/// Credentials for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Username and password (or identity token) for basic auth and token requests.
    Basic {
        /// The username.
        username: String,
        /// The password or token.
        password: String,
    },
    /// A bearer token sent as-is to the registry.
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    /// The `Authorization` header value for HTTP basic auth, if these are basic credentials.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => {
                let raw = format!("{username}:{password}");
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            Credentials::Bearer(_) => None,
        }
    }
}

/// Credentials and where they came from (`the variables A and B`, a file, a
/// helper), for messages: never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The credentials.
    pub credentials: Credentials,
    /// Where they were found.
    pub origin: String,
}

/// Why credentials could not be obtained.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct CredentialError(pub String);

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

impl CredentialSource {
    /// Looks up the credentials for `host` (`host[:port]`, `docker.io` for Docker Hub).
    pub fn lookup(&self, host: &str) -> Result<Option<Found>, CredentialError> {
        match self {
            CredentialSource::Anonymous => Ok(None),
            CredentialSource::Env {
                username_env,
                password_env,
            } => {
                let username = env_var(username_env)?;
                let password = env_var(password_env)?;
                Ok(Some(Found {
                    credentials: Credentials::Basic { username, password },
                    origin: format!("the variables {username_env} and {password_env}"),
                }))
            }
            CredentialSource::TokenEnv(name) => Ok(Some(Found {
                credentials: Credentials::Bearer(env_var(name)?),
                origin: format!("the variable {name}"),
            })),
            CredentialSource::DockerConfig => {
                for path in login_files() {
                    if let Some(found) = login_file_lookup(&path, host)? {
                        return Ok(Some(found));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Where a lookup looks, for the message when it finds nothing.
    pub fn places(&self) -> String {
        match self {
            CredentialSource::DockerConfig => {
                let files: Vec<String> = login_files()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                format!(
                    "looked in {}; run `docker login` or `podman login`, or set username_env/password_env in the registry's configuration",
                    files.join(", ")
                )
            }
            _ => "set username_env/password_env in the registry's configuration".to_string(),
        }
    }
}

fn env_var(name: &str) -> Result<String, CredentialError> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        Ok(_) => Err(CredentialError(format!(
            "environment variable {name} is empty"
        ))),
        Err(_) => Err(CredentialError(format!(
            "environment variable {name} is not set (named in the registry's configuration)"
        ))),
    }
}

/// The login files, in the order they are read: docker's `config.json`
/// (`$DOCKER_CONFIG`, else `~/.docker`), then the containers tools'
/// `auth.json`: `$REGISTRY_AUTH_FILE` when set, else
/// `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/$UID/auth.json`
/// when `XDG_RUNTIME_DIR` is unset: `podman login` as root) and
/// `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config` when unset), as
/// containers-auth.json(5) lists them.
fn login_files() -> Vec<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = var("HOME");
    let mut files = Vec::new();
    match var("DOCKER_CONFIG") {
        Some(dir) => files.push(dir.join("config.json")),
        None => files.extend(home.as_ref().map(|h| h.join(".docker").join("config.json"))),
    }
    match var("REGISTRY_AUTH_FILE") {
        Some(file) => files.push(file),
        None => {
            let runtime = var("XDG_RUNTIME_DIR")
                .map(|d| d.join("containers"))
                .or_else(|| user_id().map(|uid| PathBuf::from(format!("/run/containers/{uid}"))));
            files.extend(runtime.map(|d| d.join("auth.json")));
            let config = var("XDG_CONFIG_HOME").or_else(|| home.map(|h| h.join(".config")));
            files.extend(config.map(|d| d.join("containers").join("auth.json")));
        }
    }
    files
}

/// This process's user id, as the owner of `/proc/self` (Linux; `None`
/// elsewhere), for `/run/containers/$UID`.
fn user_id() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The keys docker uses for a host in `auths` and `credHelpers`.
fn host_keys(host: &str) -> Vec<String> {
    if host == "docker.io" {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ]
}

/// The credentials one login file holds for `host`, if any.
fn login_file_lookup(path: &Path, host: &str) -> Result<Option<Found>, CredentialError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CredentialError(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    // serde's message can quote the offending value, which may be a secret: give the position only.
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| {
        CredentialError(format!(
            "{} is not valid docker config JSON (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    let keys = host_keys(host);
    let server = keys[0].as_str();

    let from_helper = |helper: &str, credentials| Found {
        credentials,
        origin: format!("docker-credential-{helper} (named in {})", path.display()),
    };
    // A helper named for this very host must answer: not finding credentials there is an error.
    if let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(k)) {
        return match run_helper(helper, server)? {
            Some(creds) => Ok(Some(from_helper(helper, creds))),
            None => Err(CredentialError(format!(
                "credential helper docker-credential-{helper} has no credentials for {server}"
            ))),
        };
    }
    if let Some(auth) = keys.iter().find_map(|k| config.auths.get(k))
        && let Some(credentials) = decode_auth(auth, path)?
    {
        return Ok(Some(Found {
            credentials,
            origin: format!("the `auths` entry of {}", path.display()),
        }));
    }
    // The default store covers every host; having nothing for this one means anonymous.
    if let Some(store) = &config.creds_store {
        return Ok(run_helper(store, server)?.map(|creds| from_helper(store, creds)));
    }
    Ok(None)
}

fn decode_auth(
    auth: &DockerAuth,
    path: &std::path::Path,
) -> Result<Option<Credentials>, CredentialError> {
    if let Some(token) = auth.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::Basic {
            username: "<token>".into(),
            password: token.clone(),
        }));
    }
    if let Some(encoded) = auth.auth.as_ref().filter(|a| !a.is_empty()) {
        let bad = || {
            CredentialError(format!(
                "{}: an `auth` entry is not base64 of user:password",
                path.display()
            ))
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    match (&auth.username, &auth.password) {
        (Some(username), Some(password)) => Ok(Some(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-<helper> get` with the server on stdin.
fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>, CredentialError> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CredentialError(format!("cannot run credential helper {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is judged by its exit status below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| CredentialError(format!("credential helper {program} failed: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // docker's helpers say exactly this when they simply have nothing for the host.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(CredentialError(format!(
            "credential helper {program} failed ({}) for {server}: {}",
            output.status,
            first_line(if stderr.trim().is_empty() {
                &stdout
            } else {
                &stderr
            })
        )));
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout).map_err(|e| {
        CredentialError(format!(
            "credential helper {program} printed invalid JSON: {e}"
        ))
    })?;
    if answer.username.is_empty() && answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials::Basic {
        username: answer.username,
        password: answer.secret,
    }))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let creds = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Bearer("tok3n".into())).contains("tok3n"));
    }

    #[test]
    fn decodes_auth_entries() {
        let auth = DockerAuth {
            auth: Some(base64::engine::general_purpose::STANDARD.encode("alice:s3:cret")),
            ..DockerAuth::default()
        };
        let creds = decode_auth(&auth, std::path::Path::new("config.json")).unwrap();
        assert_eq!(
            creds,
            Some(Credentials::Basic {
                username: "alice".into(),
                password: "s3:cret".into()
            })
        );
        let bad = DockerAuth {
            auth: Some("!!!".into()),
            ..DockerAuth::default()
        };
        assert!(decode_auth(&bad, std::path::Path::new("config.json")).is_err());
    }
}
