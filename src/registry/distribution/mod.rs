//! The OCI Distribution API over HTTP(S), with ureq.

pub mod auth;
pub mod credentials;
mod endpoint;
pub mod link;

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ureq::http::{self, Method, Response};
use ureq::{Agent, SendBody};

pub use endpoint::{Endpoint, EndpointError, Scheme};

use self::auth::{Challenge, Scopes, TokenCache, TokenResponse};
use self::credentials::{CredentialError, Credentials};
use super::limits::Limits;
use super::retry::{self, Decision};
use super::{
    BlobReader, Counters, ManifestHead, MountOutcome, Registry, RegistryError, Result,
    UploadSession,
};
use crate::digest::{Digest, VerifyingReader};
use crate::manifest::{ACCEPT_MANIFESTS, Descriptor, MAX_MANIFEST_BYTES, Manifest};

/// Redirects followed for one request (blob GETs go to storage hosts).
const MAX_REDIRECTS: usize = 5;
/// Pages followed for one listing, as a last guard against a registry that never ends.
const MAX_PAGES: usize = 100_000;
/// How much of an error body is read to explain the error.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// A registry spoken to over the Distribution API.
pub struct DistributionRegistry {
    endpoint: Endpoint,
    agent: Agent,
    credentials: OnceLock<std::result::Result<Option<Credentials>, CredentialError>>,
    /// `None` until `/v2/` was pinged; then what it asked for (`None` inside: no auth).
    challenge: Mutex<Option<Option<Challenge>>>,
    tokens: TokenCache,
    /// Held while fetching a token, so parallel threads do not all fetch the same one.
    token_fetch: Mutex<()>,
    /// Set once the registry refused a monolithic upload: chunked from then on.
    needs_chunked: AtomicBool,
    /// Set once the registry answered that it has no referrers API.
    no_referrers_api: AtomicBool,
    /// Manifests read or written, by repository and digest. Content-addressed,
    /// so the same manifest is never fetched twice in a run (planning reads a
    /// tag's manifest; the copy reads it again by digest).
    manifests: Mutex<HashMap<(String, Digest), Manifest>>,
    limits: Limits,
    counters: Counters,
}

/// A request body.
enum Body<'a> {
    Empty,
    Bytes(&'a [u8], &'a str),
    /// A stream of known length; cannot be replayed, so never retried.
    Stream(&'a mut dyn Read, u64),
}

impl Body<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(..))
    }
}

impl DistributionRegistry {
    /// A client for `endpoint`, sharing connections through `agent`.
    pub fn new(endpoint: Endpoint, agent: Agent) -> Self {
        DistributionRegistry {
            agent,
            credentials: OnceLock::new(),
            challenge: Mutex::new(None),
            tokens: TokenCache::default(),
            token_fetch: Mutex::new(()),
            needs_chunked: AtomicBool::new(false),
            no_referrers_api: AtomicBool::new(false),
            manifests: Mutex::new(HashMap::new()),
            limits: Limits::new(endpoint.max_connections, endpoint.requests_per_second),
            counters: Counters::default(),
            endpoint,
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.base_url())
    }

    fn credentials(&self) -> Result<Option<&Credentials>> {
        let host = &self.endpoint.host;
        match self
            .credentials
            .get_or_init(|| self.endpoint.credentials.lookup(host))
        {
            Ok(creds) => Ok(creds.as_ref()),
            Err(e) => Err(RegistryError::Auth {
                registry: host.clone(),
                message: e.0.clone(),
            }),
        }
    }

    /// What `/v2/` asks for, pinging it the first time.
    fn challenge(&self) -> Result<Option<Challenge>> {
        let mut known = self.challenge.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(challenge) = known.as_ref() {
            return Ok(challenge.clone());
        }
        let url = self.url("/v2/");
        // A 429 or 5xx on the first request must not fail the run: retried
        // here, while other threads wait for the answer. A request that got
        // no answer is retried by `send`, which called this, so it is not
        // retried twice over.
        let policy = self.endpoint.retry;
        let response = policy.run(
            |_| self.send_raw(http::Request::get(&url).body(SendBody::none()), &url),
            |result, attempt| match result {
                Ok(response) => {
                    policy.decide_status(response.status().as_u16(), retry_after(response), attempt)
                }
                Err(_) => Decision::Stop,
            },
        )?;
        let challenge = match response.status().as_u16() {
            200..=299 => None,
            401 => {
                let header = header(&response, "www-authenticate").unwrap_or_default();
                Some(
                    auth::parse_challenge(&header).ok_or_else(|| RegistryError::Protocol {
                        registry: self.endpoint.host.clone(),
                        message: format!(
                            "401 from /v2/ with an unusable WWW-Authenticate challenge `{header}`"
                        ),
                    })?,
                )
            }
            _ => return Err(self.status_error("GET", &url, response)),
        };
        *known = Some(challenge.clone());
        Ok(challenge)
    }

    /// The `Authorization` value for a request needing `scopes`, if any.
    fn authorization(&self, scopes: &Scopes) -> Result<Option<String>> {
        let Some(challenge) = self.challenge()? else {
            return Ok(None);
        };
        let creds = self.credentials()?;
        match (challenge, creds) {
            (_, Some(Credentials::Bearer(token))) => Ok(Some(format!("Bearer {token}"))),
            (Challenge::Basic, Some(creds)) => Ok(creds.basic_header()),
            (Challenge::Basic, None) => Err(RegistryError::Auth {
                registry: self.endpoint.host.clone(),
                message: "the registry requires a login and no credentials were found (docker login, or username_env/password_env in the registry's configuration)".into(),
            }),
            (Challenge::Bearer { realm, service, .. }, creds) => {
                let token = self.token(&realm, service.as_deref(), scopes, creds)?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

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
        let _fetching = self.token_fetch.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = self.tokens.get(scopes) {
            return Ok(token);
        }
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
        let mut request = http::Request::get(&url);
        if let Some(basic) = creds.and_then(Credentials::basic_header) {
            request = request.header("Authorization", basic);
        }
        let request = request.body(SendBody::none());
        let response = self.send_raw(request, realm)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let refused = if status == 401 || status == 403 {
                "the token service refused the credentials"
            } else {
                "the token service failed"
            };
            let err = self.status_error("GET", realm, response);
            return Err(auth_failed(format!("{refused}: {err}")));
        }
        let parsed: TokenResponse = response
            .into_body()
            .into_with_config()
            .limit(MAX_ERROR_BODY * 16)
            .read_to_vec()
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
            .map_err(|e| {
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

    /// Sends a request once, counting it; transport failures become typed errors.
    fn send_raw(
        &self,
        request: std::result::Result<http::Request<SendBody<'_>>, http::Error>,
        url_for_errors: &str,
    ) -> Result<Response<ureq::Body>> {
        let request = request.map_err(|e| RegistryError::Protocol {
            registry: self.endpoint.host.clone(),
            message: format!("cannot build a request for {url_for_errors}: {e}"),
        })?;
        let method = request.method().to_string();
        self.limits.pace();
        self.counters.request();
        if !matches!(request.method(), &Method::GET | &Method::HEAD) {
            self.counters.write();
        }
        self.agent
            .run(request)
            .map_err(|e| self.transport_error(&method, url_for_errors, e))
    }

    fn transport_error(&self, method: &str, url: &str, err: ureq::Error) -> RegistryError {
        if let ureq::Error::Io(io) = err {
            return match RegistryError::from_stream(url, io) {
                verification @ RegistryError::Verification(_) => verification,
                RegistryError::Io { source, .. } => RegistryError::Transport {
                    method: method.into(),
                    url: url.into(),
                    message: source.to_string(),
                },
                other => other,
            };
        }
        RegistryError::Transport {
            method: method.into(),
            url: url.into(),
            message: err.to_string(),
        }
    }

    /// Sends an authorised request, retrying transport failures, 429 and
    /// 5xx answers with backoff when the body can be replayed. A 429 makes
    /// every thread wait (`Retry-After`, or the backoff).
    fn send(
        &self,
        method: Method,
        url: &str,
        scopes: &Scopes,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
    ) -> Result<Response<ureq::Body>> {
        let policy = self.endpoint.retry;
        let replayable = body.replayable();
        policy.run_throttled(
            |_| self.send_authorized(method.clone(), url, scopes, headers, &mut body),
            |result, attempt| match result {
                _ if !replayable => Decision::Stop,
                Ok(response) => {
                    policy.decide_status(response.status().as_u16(), retry_after(response), attempt)
                }
                // Only the `/v2/` ping fails with a status here, and it
                // retried already.
                Err(RegistryError::Status { .. }) => Decision::Stop,
                Err(e) => policy.decide(e, attempt),
            },
            |pause| self.limits.cool_down(pause),
        )
    }

    /// Sends an authorised request once; a 401 renews the token (or learns
    /// the challenge) and retries once when the body can be replayed.
    fn send_authorized(
        &self,
        method: Method,
        url: &str,
        scopes: &Scopes,
        headers: &[(&str, &str)],
        body: &mut Body<'_>,
    ) -> Result<Response<ureq::Body>> {
        // Upload URLs carry opaque session state: keep it out of messages.
        let shown_url = if url.contains("/blobs/uploads/") {
            redact_query(url)
        } else {
            url.to_string()
        };
        let mut extra_scope: Option<String> = None;
        for attempt in 0..2 {
            let scopes = match &extra_scope {
                Some(raw) => scopes.clone().with_raw(raw),
                None => scopes.clone(),
            };
            let authorization = self.authorization(&scopes)?;
            let mut request = http::Request::builder().method(method.clone()).uri(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(value) = &authorization {
                request = request.header("Authorization", value.as_str());
            }
            // Each arm sends on its own: `SendBody` is invariant in its lifetime.
            let response = match &mut *body {
                Body::Empty => self.send_raw(request.body(SendBody::none()), &shown_url)?,
                Body::Bytes(bytes, content_type) => {
                    let mut slice: &[u8] = bytes;
                    let request = request
                        .header("Content-Type", *content_type)
                        .header("Content-Length", slice.len())
                        .body(SendBody::from_reader(&mut slice));
                    self.send_raw(request, &shown_url)?
                }
                Body::Stream(reader, length) => {
                    let request = request
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Length", *length)
                        .body(SendBody::from_reader(reader));
                    self.send_raw(request, &shown_url)?
                }
            };
            if response.status().as_u16() != 401 || attempt == 1 || !body.replayable() {
                return Ok(response);
            }
            // The token expired, or the registry wants a scope we did not ask for.
            self.tokens.forget(&scopes);
            let header = header(&response, "www-authenticate").unwrap_or_default();
            match auth::parse_challenge(&header) {
                Some(Challenge::Bearer { scope, .. }) => extra_scope = scope,
                Some(Challenge::Basic) => {}
                None => return Ok(response),
            }
            let mut known = self.challenge.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(*known, Some(None)) {
                // Anonymous until now: learn the challenge from this answer.
                *known = Some(auth::parse_challenge(&header));
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn status_error(
        &self,
        method: &str,
        url: &str,
        response: Response<ureq::Body>,
    ) -> RegistryError {
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let text = response
            .into_body()
            .into_with_config()
            .limit(MAX_ERROR_BODY)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        let (codes, message) = decode_error_envelope(&text);
        RegistryError::Status {
            method: method.into(),
            url: url.into(),
            status,
            codes,
            message,
            retry_after,
        }
    }

    fn expect_status(
        &self,
        method: &str,
        url: &str,
        response: Response<ureq::Body>,
        ok: &[u16],
    ) -> Result<Response<ureq::Body>> {
        if ok.contains(&response.status().as_u16()) {
            Ok(response)
        } else {
            Err(self.status_error(method, url, response))
        }
    }

    /// Lists a paginated collection (`_catalog` or `tags/list`), following `Link` headers.
    fn list_pages(&self, first_path: &str, key: &str, scopes: &Scopes) -> Result<Vec<String>> {
        let mut url = self.url(first_path);
        let mut seen = std::collections::HashSet::new();
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            if !seen.insert(url.clone()) {
                return Err(self.protocol(format!("pagination loops back to {url}")));
            }
            let (headers, bytes) = self.read_retrying("GET", &url, 64 * 1024 * 1024, || {
                let response = self.send(
                    Method::GET,
                    &url,
                    scopes,
                    &[("Accept", "application/json")],
                    Body::Empty,
                )?;
                if response.status().as_u16() == 404 {
                    return Err(RegistryError::NotFound {
                        what: url.to_string(),
                    });
                }
                self.expect_status("GET", &url, response, &[200])
            })?;
            let next = header_in(&headers, "link").and_then(|h| link::next_link(&h));
            let page: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| self.protocol(format!("{url}: invalid JSON listing: {e}")))?;
            match page.get(key) {
                Some(serde_json::Value::Array(values)) => {
                    items.extend(values.iter().filter_map(|v| v.as_str().map(str::to_string)));
                }
                Some(serde_json::Value::Null) | None => {}
                Some(_) => return Err(self.protocol(format!("{url}: `{key}` is not a list"))),
            }
            match next {
                Some(next) => url = self.same_origin(&next, "pagination link")?,
                None => return Ok(items),
            }
        }
        Err(self.protocol(format!("more than {MAX_PAGES} pages listing {first_path}")))
    }

    /// Runs `request` (a send and its status checks), then reads the body,
    /// at most `limit` bytes. A body that breaks off (reset, truncated,
    /// stalled past the timeout) is a failed request: the whole exchange is
    /// retried with backoff, as `send` retries one that got no answer.
    fn read_retrying(
        &self,
        method: &str,
        url: &str,
        limit: u64,
        mut request: impl FnMut() -> Result<Response<ureq::Body>>,
    ) -> Result<(http::HeaderMap, Vec<u8>)> {
        let policy = self.endpoint.retry;
        // The outer error is the request's own, which `send` retried already;
        // the inner one is the body's.
        let exchange = policy.run(
            |_| {
                let response = request()?;
                let headers = response.headers().clone();
                let body = response
                    .into_body()
                    .into_with_config()
                    .limit(limit)
                    .read_to_vec();
                Ok(match body {
                    Ok(bytes) => Ok((headers, bytes)),
                    Err(ureq::Error::BodyExceedsLimit(_)) => {
                        Err(self.protocol(format!("{url}: answer larger than {limit} bytes")))
                    }
                    Err(e) => Err(self.transport_error(method, url, e)),
                })
            },
            |exchange: &Result<Result<_>>, attempt| match exchange {
                Ok(Err(body_error)) => policy.decide(body_error, attempt),
                _ => Decision::Stop,
            },
        );
        exchange?
    }

    fn protocol(&self, message: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.endpoint.host.clone(),
            message,
        }
    }

    /// Resolves a URL the registry handed us and insists it stays on the registry.
    fn same_origin(&self, location: &str, what: &str) -> Result<String> {
        let resolved = link::resolve(self.endpoint.base_url(), location);
        if link::origin(&resolved) != link::origin(self.endpoint.base_url()) {
            return Err(self.protocol(format!(
                "{what} points to another host ({}); refusing to follow it",
                link::origin(&resolved)
            )));
        }
        Ok(resolved)
    }

    fn start_upload(&self, repository: &str) -> Result<String> {
        let url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let scopes = Scopes::repository(repository, "pull,push");
        let response = self.send(
            Method::POST,
            &url,
            &scopes,
            &[("Content-Length", "0")],
            Body::Empty,
        )?;
        let response = self.expect_status("POST", &url, response, &[202])?;
        self.upload_location(&response)
    }

    fn upload_location(&self, response: &Response<ureq::Body>) -> Result<String> {
        let location = header(response, "location")
            .ok_or_else(|| self.protocol("upload answer without a Location header".into()))?;
        self.same_origin(&location, "upload Location")
    }

    fn put_monolithic(
        &self,
        repository: &str,
        location: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
    ) -> Result<()> {
        let url = link::with_query(location, "digest", &digest.to_string());
        let scopes = Scopes::repository(repository, "pull,push");
        let response = self.send(Method::PUT, &url, &scopes, &[], Body::Stream(body, size))?;
        if response.status().as_u16() == 413 {
            self.needs_chunked.store(true, Ordering::Relaxed);
        }
        self.expect_status("PUT", &redact_query(&url), response, &[201])?;
        Ok(())
    }

    fn put_chunked(
        &self,
        repository: &str,
        mut location: String,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
    ) -> Result<()> {
        let scopes = Scopes::repository(repository, "pull,push");
        let chunk = self
            .endpoint
            .chunk_size
            .unwrap_or(endpoint::DEFAULT_CHUNK_SIZE)
            .max(1);
        let mut offset = 0u64;
        while offset < size {
            let length = chunk.min(size - offset);
            let range = format!("{}-{}", offset, offset + length - 1);
            let mut part = body.take(length);
            let response = self.send(
                Method::PATCH,
                &location,
                &scopes,
                &[("Content-Range", range.as_str())],
                Body::Stream(&mut part, length),
            )?;
            let response =
                self.expect_status("PATCH", &redact_query(&location), response, &[202, 204])?;
            location = self.upload_location(&response)?;
            offset += length;
        }
        let url = link::with_query(&location, "digest", &digest.to_string());
        let response = self.send(
            Method::PUT,
            &url,
            &scopes,
            &[("Content-Length", "0")],
            Body::Empty,
        )?;
        self.expect_status("PUT", &redact_query(&url), response, &[201])?;
        Ok(())
    }

    /// A manifest by tag or digest, from the registry.
    fn fetch_manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let _permit = self.limits.permit();
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let scopes = Scopes::repository(repository, "pull");
        let (headers, bytes) = self.read_retrying("GET", &url, MAX_MANIFEST_BYTES, || {
            let response = self.send(
                Method::GET,
                &url,
                &scopes,
                &[("Accept", ACCEPT_MANIFESTS)],
                Body::Empty,
            )?;
            if response.status().as_u16() == 404 {
                let err = self.status_error("GET", &url, response);
                return Err(match err {
                    RegistryError::Status { .. }
                        if err.has_code("NAME_UNKNOWN") || err.has_code("MANIFEST_UNKNOWN") =>
                    {
                        RegistryError::NotFound {
                            what: format!(
                                "manifest {}/{repository}:{reference}",
                                self.endpoint.host
                            ),
                        }
                    }
                    other => other,
                });
            }
            let response = self.expect_status("GET", &url, response, &[200])?;
            if header(&response, "content-length")
                .and_then(|l| l.parse::<u64>().ok())
                .is_some_and(|l| l > MAX_MANIFEST_BYTES)
            {
                return Err(self.protocol(format!(
                    "{url}: manifest larger than {MAX_MANIFEST_BYTES} bytes"
                )));
            }
            Ok(response)
        })?;
        let content_type = header_in(&headers, "content-type");
        let announced = header_in(&headers, "docker-content-digest");
        let separator = if super::is_digest_reference(reference) {
            '@'
        } else {
            ':'
        };
        let what = format!("{}/{repository}{separator}{reference}", self.endpoint.host);
        let mut manifest =
            Manifest::from_bytes(bytes, content_type.as_deref()).map_err(|source| {
                RegistryError::Manifest {
                    what: what.clone(),
                    source,
                }
            })?;
        let mut expected: Vec<Digest> = announced.iter().filter_map(|d| d.parse().ok()).collect();
        let by_digest = if super::is_digest_reference(reference) {
            let digest: Digest = reference
                .parse()
                .map_err(|e: crate::digest::InvalidDigest| self.protocol(e.to_string()))?;
            expected.push(digest.clone());
            Some(digest)
        } else {
            None
        };
        for digest in expected {
            let actual = digest.recompute(&manifest.bytes);
            if actual != digest {
                return Err(RegistryError::Verification(crate::digest::BlobMismatch {
                    kind: crate::digest::ContentKind::Manifest,
                    digest,
                    what: format!("{what} served bytes that hash to {actual}"),
                }));
            }
        }
        if let Some(digest) = by_digest {
            // Asked for by a sha512 digest, it is known by that digest.
            manifest.digest = digest;
        }
        Ok(manifest)
    }

    fn store_manifest(&self, repository: &str, reference: &str, manifest: &Manifest) -> Result<()> {
        let _permit = self.limits.permit();
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let scopes = Scopes::repository(repository, "pull,push");
        let response = self.send(
            Method::PUT,
            &url,
            &scopes,
            &[],
            Body::Bytes(&manifest.bytes, &manifest.media_type),
        )?;
        let response = self.expect_status("PUT", &url, response, &[200, 201, 202])?;
        if let Some(stored) =
            header(&response, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok())
            && stored.algorithm() == manifest.digest.algorithm()
            && stored != manifest.digest
        {
            return Err(self.protocol(format!(
                "{url}: stored the manifest as {stored}, not {} (the registry rewrote it)",
                manifest.digest
            )));
        }
        Ok(())
    }

    fn remembered(&self, repository: &str, digest: &Digest) -> Option<Manifest> {
        self.manifests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(repository.to_string(), digest.clone()))
            .cloned()
    }

    fn remember(&self, repository: &str, manifest: &Manifest) {
        self.manifests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                (repository.to_string(), manifest.digest.clone()),
                manifest.clone(),
            );
    }
}

/// Upload URLs carry opaque state; it is noise in messages.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    header_in(response.headers(), name)
}

/// A header's value as text, from headers kept after the body was read.
fn header_in(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The wait a response asks for (`Retry-After`), if any.
fn retry_after(response: &Response<ureq::Body>) -> Option<Duration> {
    header(response, "retry-after").and_then(|v| retry::parse_retry_after(&v))
}

/// Decodes `{"errors":[{"code":..,"message":..}]}`; any other body becomes a short excerpt.
pub fn decode_error_envelope(text: &str) -> (Vec<String>, String) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<EnvelopeError>,
    }
    #[derive(serde::Deserialize)]
    struct EnvelopeError {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(envelope) = serde_json::from_str::<Envelope>(text) {
        let codes = envelope
            .errors
            .iter()
            .map(|e| e.code.clone())
            .filter(|c| !c.is_empty())
            .collect();
        let messages: Vec<String> = envelope
            .errors
            .into_iter()
            .map(|e| e.message)
            .filter(|m| !m.is_empty())
            .collect();
        return (codes, messages.join("; "));
    }
    let excerpt: String = text.trim().chars().take(200).collect();
    (Vec::new(), excerpt)
}

impl Registry for DistributionRegistry {
    fn display_name(&self) -> String {
        self.endpoint.host.clone()
    }

    fn store_id(&self) -> String {
        self.endpoint.base_url().to_string()
    }

    fn catalog(&self) -> Result<Vec<String>> {
        let _permit = self.limits.permit();
        let path = format!("/v2/_catalog?n={}", self.endpoint.page_size);
        self.list_pages(&path, "repositories", &Scopes::catalog())
    }

    fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let _permit = self.limits.permit();
        let path = format!("/v2/{repository}/tags/list?n={}", self.endpoint.page_size);
        self.list_pages(&path, "tags", &Scopes::repository(repository, "pull"))
    }

    fn manifest_head(&self, repository: &str, reference: &str) -> Result<Option<ManifestHead>> {
        let _permit = self.limits.permit();
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let scopes = Scopes::repository(repository, "pull");
        let response = self.send(
            Method::HEAD,
            &url,
            &scopes,
            &[("Accept", ACCEPT_MANIFESTS)],
            Body::Empty,
        )?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let response = self.expect_status("HEAD", &url, response, &[200])?;
        let digest =
            header(&response, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
        let media_type = header(&response, "content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let size = header(&response, "content-length").and_then(|l| l.parse::<u64>().ok());
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size)) if !media_type.is_empty() => {
                Ok(Some(ManifestHead {
                    digest,
                    media_type,
                    size,
                }))
            }
            // Not every registry sends the digest on HEAD: fetch and hash.
            _ => {
                let manifest = self.manifest_get(repository, reference)?;
                Ok(Some(ManifestHead {
                    size: manifest.bytes.len() as u64,
                    digest: manifest.digest,
                    media_type: manifest.media_type,
                }))
            }
        }
    }

    fn manifest_get(&self, repository: &str, reference: &str) -> Result<Manifest> {
        if super::is_digest_reference(reference)
            && let Ok(digest) = reference.parse::<Digest>()
            && let Some(known) = self.remembered(repository, &digest)
        {
            return Ok(known);
        }
        let manifest = self.fetch_manifest(repository, reference)?;
        self.remember(repository, &manifest);
        Ok(manifest)
    }

    fn manifest_put(&self, repository: &str, reference: &str, manifest: &Manifest) -> Result<()> {
        self.store_manifest(repository, reference, manifest)?;
        self.remember(repository, manifest);
        Ok(())
    }

    fn manifest_delete(&self, repository: &str, digest: &Digest) -> Result<()> {
        let _permit = self.limits.permit();
        self.manifests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(repository.to_string(), digest.clone()));
        let url = self.url(&format!("/v2/{repository}/manifests/{digest}"));
        let scopes = Scopes::repository(repository, "pull,push,delete");
        let response = self.send(Method::DELETE, &url, &scopes, &[], Body::Empty)?;
        self.expect_status("DELETE", &url, response, &[200, 202, 204])?;
        Ok(())
    }

    fn tag_delete(&self, repository: &str, tag: &str) -> Result<bool> {
        let _permit = self.limits.permit();
        let url = self.url(&format!("/v2/{repository}/manifests/{tag}"));
        let scopes = Scopes::repository(repository, "pull,push,delete");
        let response = self.send(Method::DELETE, &url, &scopes, &[], Body::Empty)?;
        match response.status().as_u16() {
            200 | 202 | 204 => Ok(true),
            404 => Err(RegistryError::NotFound {
                what: format!("tag {}/{repository}:{tag}", self.endpoint.host),
            }),
            // Distribution before OCI 1.1 deletes by digest only.
            400 | 405 => Ok(false),
            _ => Err(self.status_error("DELETE", &url, response)),
        }
    }

    fn referrers(&self, repository: &str, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        if self.no_referrers_api.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let _permit = self.limits.permit();
        let url = self.url(&format!("/v2/{repository}/referrers/{digest}"));
        let scopes = Scopes::repository(repository, "pull");
        let response = self.send(
            Method::GET,
            &url,
            &scopes,
            &[("Accept", crate::manifest::OCI_INDEX)],
            Body::Empty,
        )?;
        match response.status().as_u16() {
            200 => {}
            // No referrers API (a registry that has one never answers 404
            // here): the caller falls back to the tag convention, and the
            // registry is not asked again.
            404 | 405 => {
                self.no_referrers_api.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            // A 400 may be about this request only: this time without.
            400 => return Ok(None),
            _ => return Err(self.status_error("GET", &url, response)),
        }
        #[derive(serde::Deserialize)]
        struct Listing {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let listing: Listing = response
            .into_body()
            .into_with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
            .map_err(|e| self.protocol(format!("{url}: invalid referrers index: {e}")))?;
        Ok(Some(listing.manifests))
    }

    fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let _permit = self.limits.permit();
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let scopes = Scopes::repository(repository, "pull");
        let response = self.send(Method::HEAD, &url, &scopes, &[], Body::Empty)?;
        match response.status().as_u16() {
            200 => Ok(true),
            // A redirect to a storage host means the registry has it.
            301 | 302 | 303 | 307 | 308 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error("HEAD", &url, response)),
        }
    }

    fn blob_get<'a>(
        &'a self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader<'a>> {
        let permit = self.limits.permit();
        let scopes = Scopes::repository(repository, "pull");
        let mut url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let origin = link::origin(self.endpoint.base_url()).to_string();
        for _ in 0..=MAX_REDIRECTS {
            let response = if link::origin(&url) == origin {
                self.send(Method::GET, &url, &scopes, &[], Body::Empty)?
            } else {
                // A storage host: never send the registry's credentials there.
                let request = http::Request::get(&url).body(SendBody::none());
                self.send_raw(request, &redact_query(&url))?
            };
            match response.status().as_u16() {
                200 => {
                    let reader = response.into_body().into_with_config().limit(size).reader();
                    // The slot is released here, not when the stream ends: a
                    // copy between two capped registries must never hold one
                    // registry's slot while waiting for the other's.
                    drop(permit);
                    return Ok(Box::new(VerifyingReader::new(reader, digest.clone(), size)));
                }
                301 | 302 | 303 | 307 | 308 => {
                    let location = header(&response, "location").ok_or_else(|| {
                        self.protocol(format!("{url}: redirect without Location"))
                    })?;
                    url = link::resolve(&url, &location);
                }
                404 => {
                    return Err(RegistryError::NotFound {
                        what: format!("blob {}/{repository}@{digest}", self.endpoint.host),
                    });
                }
                _ => return Err(self.status_error("GET", &redact_query(&url), response)),
            }
        }
        Err(self.protocol(format!(
            "blob {digest}: more than {MAX_REDIRECTS} redirects"
        )))
    }

    fn blob_mount(&self, repository: &str, digest: &Digest, from: &str) -> Result<MountOutcome> {
        let _permit = self.limits.permit();
        let url = self.url(&format!(
            "/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"
        ));
        // Mounting needs push on the target and pull on the source.
        let scopes = Scopes::repository(repository, "pull,push").with_repository(from, "pull");
        let response = self.send(
            Method::POST,
            &url,
            &scopes,
            &[("Content-Length", "0")],
            Body::Empty,
        )?;
        match response.status().as_u16() {
            201 => Ok(MountOutcome::Mounted),
            202 => Ok(MountOutcome::NotMounted(Some(UploadSession(
                self.upload_location(&response)?,
            )))),
            _ => Err(self.status_error("POST", &url, response)),
        }
    }

    fn blob_put(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
        session: Option<UploadSession>,
    ) -> Result<()> {
        let _permit = self.limits.permit();
        let location = match session {
            Some(UploadSession(location)) => location,
            None => self.start_upload(repository)?,
        };
        let mut counted = CountingReader {
            inner: body,
            counters: &self.counters,
        };
        let chunked = (self.endpoint.chunk_size.is_some()
            || self.needs_chunked.load(Ordering::Relaxed))
            && size > 0;
        if chunked {
            self.put_chunked(repository, location, digest, size, &mut counted)
        } else {
            self.put_monolithic(repository, &location, digest, size, &mut counted)
        }
    }

    fn throttle(&self, pause: Duration) {
        self.limits.cool_down(pause);
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// Counts blob bytes as they are handed to the network.
struct CountingReader<'a> {
    inner: &'a mut dyn Read,
    counters: &'a Counters,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.uploaded(n as u64);
        Ok(n)
    }
}

/// Builds the shared HTTP agent for registries with the same TLS settings.
pub fn build_agent(
    endpoint: &Endpoint,
    connections: usize,
) -> std::result::Result<Agent, EndpointError> {
    let tls = endpoint.tls_config()?;
    let connections = connections.max(1);
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("hoist/{}", env!("CARGO_PKG_VERSION")))
        .max_idle_connections(connections * 4)
        .max_idle_connections_per_host(connections)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(endpoint.timeout))
        .timeout_per_write(Some(endpoint.timeout))
        .tls_config(tls)
        .build();
    Ok(Agent::new_with_config(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_oci_error_envelopes() {
        let (codes, message) = decode_error_envelope(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert_eq!(codes, vec!["MANIFEST_UNKNOWN"]);
        assert_eq!(message, "manifest unknown");
        let (codes, message) = decode_error_envelope("<html>bad gateway</html>");
        assert!(codes.is_empty());
        assert_eq!(message, "<html>bad gateway</html>");
    }
}
