//! Sending requests: once (counted, paced, transport failures typed), with
//! authorisation, and retried under the registry's [`RetryPolicy`]; reading
//! answers and turning unexpected ones into [`RegistryError::Status`].
//!
//! [`RetryPolicy`]: crate::registry::retry::RetryPolicy

use ureq::SendBody;
use ureq::http::{self, Method, Response};

use super::DistributionRegistry;
use super::http::{
    Body, MAX_ERROR_BODY, OCTET_STREAM, decode_error_envelope, redact_query, retry_after,
};
use super::tokens::Scopes;
use crate::registry::retry::Decision;
use crate::registry::{RegistryError, Result};

impl DistributionRegistry {
    /// Sends an authorised request, retrying transport failures, 429 and
    /// 5xx answers with backoff when the body can be replayed. A 429 makes
    /// every thread wait (`Retry-After`, or the backoff).
    pub(super) fn send(
        &self,
        method: Method,
        url: &str,
        scopes: &Scopes,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
    ) -> Result<Response<ureq::Body>> {
        let policy = self.endpoint.retry;
        let replayable = body.replayable();
        let result = policy.run_throttled(
            |_| self.send_authorized(method.clone(), url, scopes, headers, &mut body),
            |result, attempt| match result {
                _ if !replayable => Decision::Stop,
                // Another request found the registry unreachable meanwhile.
                Err(_) if self.unreachable.get().is_some() => Decision::Stop,
                Ok(response) => {
                    policy.decide_status(response.status().as_u16(), retry_after(response), attempt)
                }
                // Only the `/v2/` ping fails with a status here, and it
                // retried already.
                Err(RegistryError::Status { .. }) => Decision::Stop,
                Err(e) => {
                    // No answer in time, or a broken connection: fewer at once.
                    if matches!(e, RegistryError::Transport { .. }) {
                        self.congested();
                    }
                    policy.decide(e, attempt)
                }
            },
            |pause| self.cool_down(pause),
        );
        // No answer through every retry, from a registry that never
        // answered its ping: unreachable for the rest of the run.
        if let Err(RegistryError::Transport { cause, .. }) = &result
            && self.never_answered()
        {
            let _ = self.unreachable.set(cause.clone());
        }
        result
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
            let mut request = http::Request::builder().method(method.clone()).uri(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(value) = self.authorization(&scopes)? {
                request = request.header("Authorization", value);
            }
            let response = self.send_body(request, body, &shown_url)?;
            if response.status().as_u16() != 401 {
                return Ok(response);
            }
            if attempt == 1 || !body.replayable() {
                return self.refused_login(response);
            }
            match self.renew_authorization(&scopes, &response) {
                Some(scope) => extra_scope = scope,
                None => return self.refused_login(response),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Attaches `body` (with its content headers) to `request` and sends it once.
    fn send_body(
        &self,
        request: http::request::Builder,
        body: &mut Body<'_>,
        url_for_errors: &str,
    ) -> Result<Response<ureq::Body>> {
        // Each arm sends on its own: `SendBody` is invariant in its lifetime.
        match body {
            Body::Empty => self.send_once(request.body(SendBody::none()), url_for_errors),
            Body::Bytes(bytes, content_type) => {
                let mut slice: &[u8] = bytes;
                let request = request
                    .header("Content-Type", *content_type)
                    .header("Content-Length", slice.len())
                    .body(SendBody::from_reader(&mut slice));
                self.send_once(request, url_for_errors)
            }
            Body::Stream(reader, length) => {
                let request = request
                    .header("Content-Type", OCTET_STREAM)
                    .header("Content-Length", *length)
                    .body(SendBody::from_reader(reader));
                self.send_once(request, url_for_errors)
            }
        }
    }

    /// Sends a request once, counting it; transport failures become typed errors.
    pub(super) fn send_once(
        &self,
        request: std::result::Result<http::Request<SendBody<'_>>, http::Error>,
        url_for_errors: &str,
    ) -> Result<Response<ureq::Body>> {
        let request = request.map_err(|e| {
            self.protocol(format!("cannot build a request for {url_for_errors}: {e}"))
        })?;
        let method = request.method().to_string();
        self.limits.pace();
        self.counters.request();
        if !matches!(request.method(), &Method::GET | &Method::HEAD) {
            self.counters.write();
        }
        self.client
            .agent
            .run(request)
            .map_err(|e| self.transport_error(&method, url_for_errors, e))
    }

    /// A request or a body read that got no (whole) answer, keeping digest
    /// mismatches recognisable.
    fn transport_error(&self, method: &str, url: &str, err: ureq::Error) -> RegistryError {
        if let ureq::Error::Io(io) = err {
            return match RegistryError::from_stream(url, io) {
                verification @ RegistryError::Verification(_) => verification,
                RegistryError::Io { source, .. } => RegistryError::transport(method, url, source),
                other => other,
            };
        }
        RegistryError::transport(method, url, std::io::Error::other(err))
    }

    /// An unexpected answer as an error, with the registry's own codes and message.
    pub(super) fn status_error(
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

    /// The response when its status is one of `ok`, else the error it makes.
    pub(super) fn expect_status(
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

    /// Runs `request` (a send and its status checks), then reads the body,
    /// at most `limit` bytes. A body that breaks off (reset, truncated,
    /// stalled past the timeout) is a failed request: the whole exchange is
    /// retried with backoff, as `send` retries one that got no answer.
    pub(super) fn read_retrying(
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
}
