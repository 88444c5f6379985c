//! What authentication is made of: the `WWW-Authenticate` challenge, the
//! scopes a request needs, and bearer tokens cached per scope set.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What `/v2/` has said of authentication so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Ping {
    /// It has not answered yet.
    #[default]
    NotYet,
    /// It answered without asking for anything: requests go anonymous.
    Anonymous,
    /// It asked for this.
    Asks(Challenge),
}

impl Ping {
    /// The state after an answer that asked for `challenge` (or nothing).
    pub fn answered(challenge: Option<Challenge>) -> Ping {
        match challenge {
            Some(challenge) => Ping::Asks(challenge),
            None => Ping::Anonymous,
        }
    }
}

/// What the registry asked for in its `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic auth.
    Basic,
    /// Docker token auth: get a token from `realm` for `service`.
    Bearer {
        /// Token endpoint URL.
        realm: String,
        /// The `service` parameter to pass on.
        service: Option<String>,
        /// The scope the registry says it needs, if it said.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value; `None` when no known scheme is present.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let realm = params.get("realm")?.clone();
            Some(Challenge::Bearer {
                realm,
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        }
        _ => None,
    }
}

/// Parses `key="value", key=token` pairs, honouring quoted-string escapes.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',' && !c.is_whitespace()))
                .collect();
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key.to_ascii_lowercase(), value);
    }
    params
}

/// A set of token scopes such as `repository:apps/web:pull,push`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// No scope: enough for `/v2/`.
    pub fn none() -> Scopes {
        Scopes::default()
    }

    /// `repository:<repo>:<actions>`.
    pub fn repository(repository: &str, actions: &str) -> Scopes {
        Scopes::none().with_repository(repository, actions)
    }

    /// Adds `repository:<repo>:<actions>`.
    pub fn with_repository(mut self, repository: &str, actions: &str) -> Scopes {
        self.0.insert(format!("repository:{repository}:{actions}"));
        self
    }

    /// `registry:catalog:*`, for `/v2/_catalog`.
    pub fn catalog() -> Scopes {
        let mut s = Scopes::none();
        s.0.insert("registry:catalog:*".into());
        s
    }

    /// Adds a raw scope string (as a registry's challenge names it).
    pub fn with_raw(mut self, scope: &str) -> Scopes {
        for part in scope.split(' ').filter(|s| !s.is_empty()) {
            self.0.insert(part.to_string());
        }
        self
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    /// The token itself; never logged.
    pub value: String,
    /// Refresh before this instant.
    pub refresh_at: Instant,
}

/// Tokens by scope set, shared by every thread talking to one registry.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<Scopes, Token>>,
}

impl TokenCache {
    /// A still-valid token for exactly these scopes.
    pub fn get(&self, scopes: &Scopes) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(scopes)
            .filter(|t| t.refresh_at > Instant::now())
            .map(|t| t.value.clone())
    }

    /// Remembers a token; it is refreshed a little before the registry would expire it.
    pub fn put(&self, scopes: Scopes, value: String, expires_in: Duration) {
        let margin = (expires_in / 10).min(Duration::from_secs(30));
        let token = Token {
            value,
            refresh_at: Instant::now() + expires_in.saturating_sub(margin),
        };
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scopes, token);
    }

    /// Forgets the token for these scopes (the registry refused it).
    pub fn forget(&self, scopes: &Scopes) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(scopes);
    }
}

/// Longest a token is cached, whatever the token service claims.
const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;

/// The JSON a token endpoint answers with.
#[derive(serde::Deserialize)]
pub struct TokenResponse {
    /// Docker's name for the token.
    #[serde(default)]
    pub token: Option<String>,
    /// OAuth2's name for it.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Lifetime in seconds (60 when absent, per the Docker token spec).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and its lifetime, if the response had one.
    pub fn into_token(self) -> Option<(String, Duration)> {
        let value = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        // Capped: a hostile lifetime must not overflow `Instant` arithmetic.
        let lifetime = Duration::from_secs(
            self.expires_in
                .unwrap_or(60)
                .clamp(1, MAX_TOKEN_LIFETIME_SECS),
        );
        Some((value, lifetime))
    }
}
