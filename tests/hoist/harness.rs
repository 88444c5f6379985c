//! Quick checks that the test registries in `tests/support` behave as the
//! integration tests expect, using nothing but plain HTTP requests.

use crate::support::registry;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use registry::TestRegistry;
use ureq::Agent;
use ureq::http::Response;

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// An agent that returns 4xx/5xx as responses and trusts `ca` if given.
fn agent(ca: Option<&Path>) -> Agent {
    registry::http_agent_trusting(ca, Duration::from_secs(30))
}

fn header(response: &Response<ureq::Body>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("response has a {name} header"))
        .to_str()
        .expect("header is text")
        .to_owned()
}

/// Pushes `bytes` as a blob of `repo`; returns its digest.
///
/// Distribution 2.8 ignores `?digest=` on the POST (no single-request
/// upload): it always opens a session, which a PUT then completes.
fn push_blob(agent: &Agent, registry: &TestRegistry, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let response = agent
        .post(format!("{}/v2/{repo}/blobs/uploads/", registry.url()))
        .send_empty()
        .expect("start a blob upload");
    assert_eq!(response.status(), 202, "start the upload of {digest}");
    let location = header(&response, "location");
    let location = if location.starts_with('/') {
        format!("{}{location}", registry.url())
    } else {
        location
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let response = agent
        .put(format!("{location}{separator}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .send(bytes)
        .expect("finish the blob upload");
    assert_eq!(response.status(), 201, "finish the upload of {digest}");
    digest
}

/// Pushes a minimal OCI image (empty config, no layers) as `repo:tag`.
fn push_empty_image(agent: &Agent, registry: &TestRegistry, repo: &str, tag: &str) {
    let config = b"{}";
    let config_digest = push_blob(agent, registry, repo, config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [],
    })
    .to_string();
    let response = agent
        .put(format!("{}/v2/{repo}/manifests/{tag}", registry.url()))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(manifest.as_bytes())
        .expect("manifest upload");
    assert_eq!(response.status(), 201, "manifest upload of {repo}:{tag}");
}

fn process_is_alive(pid: u32) -> bool {
    // A killed and reaped process has no /proc entry.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn anonymous_registry_answers_v2() {
    let registry = TestRegistry::start();
    assert!(registry.host().starts_with("127.0.0.1:"));
    assert_eq!(registry.url(), format!("http://{}", registry.host()));
    assert!(registry.credentials().is_none());
    assert!(registry.ca_file().is_none());
    assert!(registry.token_server().is_none());

    let response = agent(None)
        .get(format!("{}/v2/", registry.url()))
        .call()
        .expect("GET /v2/");
    assert_eq!(response.status(), 200);
}

#[test]
fn blobs_live_where_blob_data_path_says_and_survive_restart() {
    let mut registry = TestRegistry::start();
    let agent = agent(None);
    let bytes = b"hello, hoist";
    let digest = push_blob(&agent, &registry, "foo/bar", bytes);

    let on_disk = registry.blob_data_path(&digest);
    assert!(on_disk.starts_with(registry.storage_dir()));
    assert_eq!(std::fs::read(&on_disk).expect("blob file exists"), bytes);

    let host = registry.host().to_owned();
    let old_pid = registry.pid();
    registry.restart();
    assert_eq!(registry.host(), host);
    assert_ne!(registry.pid(), old_pid);
    assert!(!process_is_alive(old_pid), "old registry process is gone");

    let response = agent
        .head(format!("{}/v2/foo/bar/blobs/{digest}", registry.url()))
        .call()
        .expect("HEAD blob");
    assert_eq!(response.status(), 200);
}

#[test]
fn dropping_the_registry_kills_its_process() {
    let registry = TestRegistry::start();
    let pid = registry.pid();
    let storage = registry.storage_dir().to_owned();
    assert!(process_is_alive(pid));
    drop(registry);
    assert!(!process_is_alive(pid));
    assert!(!storage.exists(), "the temporary directory is removed");
}

#[test]
fn htpasswd_registry_wants_basic_auth() {
    let registry = TestRegistry::builder().htpasswd("alice", "s3cret").start();
    assert_eq!(registry.credentials(), Some(("alice", "s3cret")));
    let agent = agent(None);
    let url = format!("{}/v2/", registry.url());

    let anonymous = agent.get(&url).call().expect("GET /v2/");
    assert_eq!(anonymous.status(), 401);
    assert!(header(&anonymous, "www-authenticate").starts_with("Basic "));

    let wrong = agent
        .get(&url)
        .header("Authorization", basic("alice", "wrong"))
        .call()
        .expect("GET /v2/");
    assert_eq!(wrong.status(), 401);

    let right = agent
        .get(&url)
        .header("Authorization", basic("alice", "s3cret"))
        .call()
        .expect("GET /v2/");
    assert_eq!(right.status(), 200);
}

#[test]
fn tls_registry_answers_https_when_its_ca_is_trusted() {
    let registry = TestRegistry::builder().tls().start();
    assert_eq!(registry.url(), format!("https://{}", registry.host()));
    let ca = registry.ca_file().expect("a TLS registry has a CA file");
    let url = format!("{}/v2/", registry.url());

    let response = agent(Some(ca))
        .get(&url)
        .call()
        .expect("GET /v2/ over https");
    assert_eq!(response.status(), 200);

    let localhost = url.replace("127.0.0.1", "localhost");
    let response = agent(Some(ca))
        .get(&localhost)
        .call()
        .expect("the certificate also names localhost");
    assert_eq!(response.status(), 200);

    let untrusted = agent(None).get(&url).call();
    assert!(
        untrusted.is_err(),
        "without the CA the certificate must be rejected"
    );
}

#[test]
fn tls_registry_with_htpasswd() {
    let registry = TestRegistry::builder()
        .tls()
        .htpasswd("bob", "hunter2")
        .start();
    let agent = agent(registry.ca_file());
    let url = format!("{}/v2/", registry.url());

    assert_eq!(agent.get(&url).call().expect("GET /v2/").status(), 401);
    let response = agent
        .get(&url)
        .header("Authorization", basic("bob", "hunter2"))
        .call()
        .expect("GET /v2/");
    assert_eq!(response.status(), 200);
}

/// Splits `Bearer realm="..",service="..",scope=".."` into its parameters.
fn bearer_params(challenge: &str) -> Vec<(String, String)> {
    let params = challenge
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("a Bearer challenge, got {challenge:?}"));
    let mut out = Vec::new();
    let mut rest = params;
    while let Some((name, after)) = rest.split_once("=\"") {
        let (value, tail) = after.split_once('"').expect("closing quote");
        out.push((
            name.trim_start_matches(',').trim().to_owned(),
            value.to_owned(),
        ));
        rest = tail;
    }
    out
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("challenge has {name}"))
}

/// Asks the realm for a token; returns the HTTP status and, on 200, the token.
fn fetch_token(
    agent: &Agent,
    realm: &str,
    service: &str,
    scopes: &[&str],
    credentials: Option<(&str, &str)>,
) -> (u16, Option<String>) {
    let mut request = agent.get(realm).query("service", service);
    for scope in scopes {
        request = request.query("scope", *scope);
    }
    if let Some((user, password)) = credentials {
        request = request.header("Authorization", basic(user, password));
    }
    let mut response = request.call().expect("GET token");
    let status = response.status().as_u16();
    if status != 200 {
        return (status, None);
    }
    let body: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("token body"))
            .expect("token response is JSON");
    assert_eq!(body["expires_in"], 300);
    assert!(
        body["issued_at"]
            .as_str()
            .expect("issued_at")
            .ends_with('Z')
    );
    let token = body["token"].as_str().expect("token").to_owned();
    assert_eq!(body["access_token"].as_str(), Some(token.as_str()));
    (status, Some(token))
}

fn start_upload(agent: &Agent, registry: &TestRegistry, token: Option<&str>) -> u16 {
    let mut request = agent.post(format!("{}/v2/foo/bar/blobs/uploads/", registry.url()));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    request
        .send_empty()
        .expect("POST blob upload")
        .status()
        .as_u16()
}

fn check_token_flow(registry: &TestRegistry) {
    let agent = agent(registry.ca_file());
    let (user, password) = registry
        .credentials()
        .expect("token registry has credentials");
    let server = registry
        .token_server()
        .expect("token registry has a token server");

    let response = agent
        .get(format!("{}/v2/", registry.url()))
        .call()
        .expect("GET /v2/");
    assert_eq!(response.status(), 401);
    let challenge = bearer_params(&header(&response, "www-authenticate"));
    let realm = param(&challenge, "realm");
    let service = param(&challenge, "service");
    assert_eq!(realm, server.realm());
    assert_eq!(service, server.service());

    // Without a token, the upload's challenge names the scope it needs.
    let response = agent
        .post(format!("{}/v2/foo/bar/blobs/uploads/", registry.url()))
        .send_empty()
        .expect("POST blob upload");
    assert_eq!(response.status(), 401);
    let challenge = bearer_params(&header(&response, "www-authenticate"));
    // Distribution lists the actions in Go map order: "pull,push" or "push,pull".
    let wanted = param(&challenge, "scope");
    assert!(
        [
            "repository:foo/bar:pull,push",
            "repository:foo/bar:push,pull"
        ]
        .contains(&wanted),
        "challenge scope {wanted:?}"
    );

    let scope = "repository:foo/bar:pull,push";
    let (status, token) = fetch_token(&agent, realm, service, &[scope], Some((user, password)));
    assert_eq!(status, 200);
    let token = token.expect("a token");
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("JWT payload"))
            .expect("JWT payload is base64url"),
    )
    .expect("JWT claims are JSON");
    assert_eq!(claims["sub"], user);
    assert_eq!(claims["aud"], service);
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "foo/bar", "actions": ["pull", "push"]}])
    );
    assert_eq!(start_upload(&agent, registry, Some(&token)), 202);

    // Anonymous callers get a pull-only token, which cannot push.
    let (status, anonymous) = fetch_token(&agent, realm, service, &[scope], None);
    assert_eq!(status, 200);
    assert_eq!(
        start_upload(&agent, registry, anonymous.as_deref()),
        401,
        "a pull-only token must not start an upload"
    );

    // Wrong credentials get no token at all.
    let (status, _) = fetch_token(&agent, realm, service, &[scope], Some((user, "wrong")));
    assert_eq!(status, 401);

    // Several scopes in one request, as a cross-repository mount asks.
    let (status, _) = fetch_token(
        &agent,
        realm,
        service,
        &["repository:foo/bar:pull,push", "repository:other/src:pull"],
        Some((user, password)),
    );
    assert_eq!(status, 200);

    assert_eq!(server.requests(), 4);
    assert_eq!(
        server.scopes_seen(),
        [
            scope,
            scope,
            scope,
            "repository:foo/bar:pull,push",
            "repository:other/src:pull"
        ]
    );
}

#[test]
fn token_registry_accepts_tokens_from_its_token_server() {
    let registry = TestRegistry::builder()
        .token_auth("carol", "pa55word")
        .start();
    assert_eq!(registry.credentials(), Some(("carol", "pa55word")));
    check_token_flow(&registry);
}

#[test]
fn tls_registry_with_token_auth() {
    let registry = TestRegistry::builder()
        .tls()
        .token_auth("dave", "letmein")
        .start();
    check_token_flow(&registry);
}

#[test]
fn catalog_max_entries_forces_pagination() {
    let registry = TestRegistry::builder().catalog_max_entries(2).start();
    let agent = agent(None);
    for repo in ["a/one", "b/two", "c/three"] {
        push_empty_image(&agent, &registry, repo, "latest");
    }

    let mut response = agent
        .get(format!("{}/v2/_catalog", registry.url()))
        .call()
        .expect("GET catalog");
    assert_eq!(response.status(), 200);
    let link = header(&response, "link");
    let body: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("catalog body"))
            .expect("catalog is JSON");
    assert_eq!(body["repositories"], serde_json::json!(["a/one", "b/two"]));
    assert!(link.contains("rel=\"next\""), "Link: {link}");
}
