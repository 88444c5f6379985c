//! Registry authentication: the `WWW-Authenticate` challenge (and the `/v2/`
//! ping that asks for it), HTTP basic, and Docker's bearer-token flow with a
//! token cache per scope set.

use std::time::Instant;

use ureq::SendBody;
use ureq::http::{self, Response};

use super::credentials::{Credentials, Found};
use super::http::{MAX_ERROR_BODY, discard, header, read_json, retry_after};
use super::tokens::{Challenge, Ping, Scopes, TokenResponse, parse_challenge};
use super::{DistributionRegistry, Scheme, endpoint, link};
use crate::registry::retry::Decision;
use crate::registry::{RegistryError, Result};

impl DistributionRegistry {
    /// The credentials for this registry and where they came from, looked up once.
    pub(super) fn found_credentials(&self) -> Result<Option<&Found>> {
        let host = &self.endpoint.host;
        match self
            .credentials
            .get_or_init(|| self.endpoint.credentials.lookup(host))
        {
            Ok(found) => Ok(found.as_ref()),
            Err(e) => Err(RegistryError::Auth {
                registry: host.clone(),
                message: e.0.clone(),
            }),
        }
    }

    /// Whether `/v2/` has not answered yet.
    pub(super) fn never_answered(&self) -> bool {
        *self.challenge.lock().unwrap_or_else(|p| p.into_inner()) == Ping::NotYet
    }

    /// Pings `/v2/` unless it was pinged already.
    pub(super) fn ping(&self) -> Result<()> {
        self.challenge().map(drop)
    }

    /// What `/v2/` asks for, pinging it the first time.
    fn challenge(&self) -> Result<Option<Challenge>> {
        let mut known = self.challenge.lock().unwrap_or_else(|p| p.into_inner());
        match &*known {
            Ping::NotYet => {}
            Ping::Anonymous => return Ok(None),
            Ping::Asks(challenge) => return Ok(Some(challenge.clone())),
        }
        let url = self.url("/v2/");
        // A registry that never answered, through every retry of a request,
        // is not pinged again this run: each thread waiting for this lock
        // (and each request after) would wait through the retries again.
        if let Some(cause) = self.unreachable.get() {
            return Err(RegistryError::Transport {
                method: "GET".into(),
                url,
                cause: cause.clone(),
            });
        }
        // A 429 or 5xx on the first request must not fail the run: retried
        // here, while other threads wait for the answer. A request that got
        // no answer is retried by `send`, which called this, so it is not
        // retried twice over.
        let policy = self.endpoint.retry;
        let mut asked = Instant::now();
        let response = policy.run(
            |_| {
                asked = Instant::now();
                self.send_once(http::Request::get(&url).body(SendBody::none()), &url)
            },
            |result, attempt| match result {
                Ok(response) => {
                    policy.decide_status(response.status().as_u16(), retry_after(response), attempt)
                }
                Err(_) => Decision::Stop,
            },
        )?;
        // Its time is the handshakes' and one request's round trips.
        if asked.elapsed() >= crate::registry::adaptive::FAR {
            self.far();
        }
        let status = response.status().as_u16();
        if !matches!(status, 200..=299 | 401) {
            return Err(self.status_error("GET", &url, response));
        }
        let header = header(&response, "www-authenticate").unwrap_or_default();
        discard(response);
        let challenge = match status {
            401 => Some(parse_challenge(&header).ok_or_else(|| {
                self.protocol(format!(
                    "401 from /v2/ with an unusable WWW-Authenticate challenge `{header}`"
                ))
            })?),
            _ => None,
        };
        *known = Ping::answered(challenge.clone());
        Ok(challenge)
    }

    /// A 401 that stands after the login was sent: with basic auth that is
    /// the registry refusing the credentials, said with where they came
    /// from (never what they are). Other 401s are handed back as they are.
    pub(super) fn refused_login(
        &self,
        response: Response<ureq::Body>,
    ) -> Result<Response<ureq::Body>> {
        let basic = matches!(
            *self.challenge.lock().unwrap_or_else(|p| p.into_inner()),
            Ping::Asks(Challenge::Basic)
        );
        match self.found_credentials()? {
            Some(found) if basic && matches!(found.credentials, Credentials::Basic { .. }) => {
                Err(RegistryError::LoginRefused {
                    registry: self.endpoint.host.clone(),
                    origin: found.origin.clone(),
                })
            }
            _ => Ok(response),
        }
    }

    /// The `Authorization` value for a request needing `scopes`, if any.
    pub(super) fn authorization(&self, scopes: &Scopes) -> Result<Option<String>> {
        let Some(challenge) = self.challenge()? else {
            return Ok(None);
        };
        let creds = self.found_credentials()?.map(|found| &found.credentials);
        match (challenge, creds) {
            (_, Some(Credentials::Bearer(token))) => Ok(Some(format!("Bearer {token}"))),
            (Challenge::Basic, Some(creds)) => Ok(creds.basic_header()),
            (Challenge::Basic, None) => Err(RegistryError::Auth {
                registry: self.endpoint.host.clone(),
                message: format!(
                    "the registry requires a login and no credentials were found ({})",
                    self.endpoint.credentials.places()
                ),
            }),
            (Challenge::Bearer { realm, service, .. }, creds) => {
                let token = self.token(&realm, service.as_deref(), scopes, creds)?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// After a 401 to a request made with `scopes`: the token expired, or
    /// the registry wants a scope we did not ask for. Forgets the token and
    /// learns the challenge; `Some(extra scope)` when another attempt may
    /// succeed, `None` when the answer names no challenge we can meet.
    pub(super) fn renew_authorization(
        &self,
        scopes: &Scopes,
        response: &Response<ureq::Body>,
    ) -> Option<Option<String>> {
        self.tokens.forget(scopes);
        let header = header(response, "www-authenticate").unwrap_or_default();
        let extra_scope = match parse_challenge(&header)? {
            Challenge::Bearer { scope, .. } => scope,
            // A login nobody gave (an anonymous registry that wants one for
            // its catalog only): this request is refused as it is, and the
            // registry stays anonymous for every other.
            Challenge::Basic if matches!(self.found_credentials(), Ok(None)) => return None,
            Challenge::Basic => None,
        };
        let mut known = self.challenge.lock().unwrap_or_else(|p| p.into_inner());
        if *known == Ping::Anonymous {
            // Anonymous until now: learn the challenge from this answer.
            *known = Ping::answered(parse_challenge(&header));
        }
        Some(extra_scope)
    }

    /// A bearer token for `scopes`, from the cache or the token service.
    fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
        creds: Option<&Credentials>,
    ) -> Result<String> {
        if let Some(token) = self.tokens.get(scopes) {
            return Ok(token);
        }
        // Held while fetching, so parallel threads do not all fetch the same token.
        let _fetching = self.token_fetch.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = self.tokens.get(scopes) {
            return Ok(token);
        }
        let auth_failed = |message: String| RegistryError::Auth {
            registry: self.endpoint.host.clone(),
            message,
        };
        let cleartext_realm = realm.starts_with("http://")
            && self.endpoint.scheme == Scheme::Https
            && !endpoint::is_loopback(&link::origin(realm)["http://".len()..]);
        if cleartext_realm && creds.is_some() {
            return Err(auth_failed(format!(
                "the registry sends credentials to a plain-http token service ({realm}); refusing to send them in clear text"
            )));
        }
        let url = token_url(realm, service, scopes);
        let basic = creds.and_then(Credentials::basic_header);
        // A token service that is overloaded or restarting (429, 5xx) is
        // asked again, as the registry would be; a request that got no answer
        // is retried by `send`, which called this.
        let policy = self.endpoint.retry;
        let response = policy.run(
            |_| {
                let mut request = http::Request::get(&url);
                if let Some(basic) = &basic {
                    request = request.header("Authorization", basic.as_str());
                }
                self.send_once(request.body(SendBody::none()), realm)
            },
            |result, attempt| match result {
                Ok(response) => {
                    policy.decide_status(response.status().as_u16(), retry_after(response), attempt)
                }
                Err(_) => Decision::Stop,
            },
        )?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let refused = if status == 401 || status == 403 {
                &match self.found_credentials()? {
                    Some(found) => format!(
                        "the token service refused the credentials from {}",
                        found.origin
                    ),
                    None => "the token service refused anonymous access".to_string(),
                }
            } else {
                "the token service failed"
            };
            let err = self.status_error("GET", realm, response);
            return Err(auth_failed(format!("{refused}: {err}")));
        }
        let parsed: TokenResponse = read_json(response, MAX_ERROR_BODY * 16).map_err(|e| {
            auth_failed(format!(
                "token service at {realm} answered with invalid JSON: {e}"
            ))
        })?;
        let (token, lifetime) = parsed.into_token().ok_or_else(|| {
            auth_failed(format!("token service at {realm} answered without a token"))
        })?;
        self.tokens.put(scopes.clone(), token.clone(), lifetime);
        Ok(token)
    }
}

/// The token service URL asking for `scopes` of `service`.
fn token_url(realm: &str, service: Option<&str>, scopes: &Scopes) -> String {
    let mut url = realm.to_string();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    let mut push = |key: &str, value: &str| {
        url.push(sep);
        url.push_str(key);
        url.push('=');
        url.push_str(&link::percent_encode(value));
        sep = '&';
    };
    if let Some(service) = service {
        push("service", service);
    }
    for scope in scopes.iter() {
        push("scope", scope);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::distribution::tokens::TokenCache;
    use std::time::Duration;

    #[test]
    fn parses_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
    }

    #[test]
    fn parses_basic_and_odd_spacing() {
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        let c = parse_challenge(r#"bearer  realm = "http://h/t" , service=svc"#).unwrap();
        assert!(
            matches!(c, Challenge::Bearer { ref service, .. } if service.as_deref() == Some("svc"))
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge(""), None);
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_some());
    }

    #[test]
    fn absurd_token_lifetimes_are_capped() {
        let response = TokenResponse {
            token: Some("t".into()),
            access_token: None,
            expires_in: Some(u64::MAX),
        };
        let (_, lifetime) = response.into_token().unwrap();
        let cache = TokenCache::default();
        cache.put(Scopes::none(), "t".into(), lifetime);
        assert_eq!(cache.get(&Scopes::none()).as_deref(), Some("t"));
    }

    #[test]
    fn token_cache_expires() {
        let cache = TokenCache::default();
        let scopes = Scopes::repository("a", "pull");
        cache.put(scopes.clone(), "t".into(), Duration::from_secs(300));
        assert_eq!(cache.get(&scopes).as_deref(), Some("t"));
        assert_eq!(cache.get(&Scopes::repository("a", "pull,push")), None);
        cache.put(scopes.clone(), "t".into(), Duration::from_millis(0));
        assert_eq!(cache.get(&scopes), None);
    }
}
