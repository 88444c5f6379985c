//! Registry personalities: a [`FaultProxy`] in front of a real
//! `docker-registry` made to answer part of the API as a given registry
//! does (docs/registries.md). Each section is one behaviour.

use super::TestRegistry;
use super::fault_proxy::{FaultProxy, Reply};

// ---------------------------------------------------------------------------
// The catalog: none (Docker Hub, GHCR, ECR), or an empty one (Artifact Registry)
// ---------------------------------------------------------------------------

/// How a registry that does not list its repositories answers
/// `GET /v2/_catalog`, whoever asks.
#[derive(Clone, Debug)]
pub enum NoCatalog {
    /// 404 with `NOT_FOUND` (GHCR).
    NotFound,
    /// 400 with `UNSUPPORTED` (registries that say so outright).
    Unsupported,
    /// 401 with this `WWW-Authenticate` challenge, even to valid credentials.
    Unauthorized(String),
}

impl NoCatalog {
    /// Docker Hub's answer: 401 with a bearer challenge for
    /// `registry:catalog:*` at the token service of `registry` (a
    /// `token_auth` test registry), which grants a token that does not help.
    pub fn docker_hub(registry: &TestRegistry) -> NoCatalog {
        let tokens = registry
            .token_server()
            .expect("a token_auth registry for Docker Hub's challenge");
        NoCatalog::Unauthorized(format!(
            "Bearer realm=\"{}\",service=\"{}\",scope=\"registry:catalog:*\"",
            tokens.realm(),
            tokens.service()
        ))
    }

    /// A basic-auth registry's answer (an htpasswd test registry): 401 with
    /// its basic challenge, so the login sent is refused for the catalog only.
    pub fn basic_login_refused() -> NoCatalog {
        NoCatalog::Unauthorized("Basic realm=\"hoist-test\"".to_string())
    }

    /// The status it answers, for assertions.
    pub fn status(&self) -> u16 {
        match self {
            NoCatalog::NotFound => 404,
            NoCatalog::Unsupported => 400,
            NoCatalog::Unauthorized(_) => 401,
        }
    }

    fn reply(&self) -> Reply {
        let (code, message) = match self {
            NoCatalog::NotFound => ("NOT_FOUND", "404 page not found"),
            NoCatalog::Unsupported => ("UNSUPPORTED", "the catalog is not supported"),
            NoCatalog::Unauthorized(_) => ("UNAUTHORIZED", "authentication required"),
        };
        let reply = Reply::status(self.status())
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#
            ));
        match self {
            NoCatalog::Unauthorized(challenge) => reply.header("WWW-Authenticate", challenge),
            _ => reply,
        }
    }
}

/// Whether a request is for the catalog (any page).
fn is_catalog(method: &str, path: &str) -> bool {
    method == "GET" && path.starts_with("/v2/_catalog")
}

/// Makes `proxy` a registry that does not list its repositories: every
/// catalog request gets `how`; everything else reaches the registry.
pub fn without_catalog(proxy: &FaultProxy, how: NoCatalog) {
    let reply = how.reply();
    proxy.answer(move |method, path| is_catalog(method, path).then(|| reply.clone()));
}

/// Makes `proxy` Artifact Registry: the catalog answers 200 with an empty
/// list, whatever the registry holds; everything else reaches the registry.
pub fn with_empty_catalog(proxy: &FaultProxy) {
    proxy.answer(|method, path| {
        is_catalog(method, path).then(|| {
            Reply::status(200)
                .header("Content-Type", "application/json")
                .body(r#"{"repositories":[]}"#)
        })
    });
}

// ---------------------------------------------------------------------------
// No tag list: manifests are served, `/v2/<name>/tags/list` is not
// ---------------------------------------------------------------------------

/// Makes `proxy` a registry that serves manifests but has no tag-list
/// endpoint: every `GET /v2/<name>/tags/list` answers 404 with an empty
/// body, where Distribution's 404 for a missing repository carries
/// `NAME_UNKNOWN`. Everything else reaches the registry.
pub fn without_tag_list(proxy: &FaultProxy) {
    proxy.answer(|method, path| {
        let listing = path
            .split('?')
            .next()
            .is_some_and(|p| p.starts_with("/v2/") && p.ends_with("/tags/list"));
        (method == "GET" && listing).then(|| Reply::status(404))
    });
}
