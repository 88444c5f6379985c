//! The HTTP underneath the Distribution client: the agent registries with
//! the same TLS settings share, request bodies, and reading answers
//! (headers, short JSON bodies, error envelopes).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use ureq::Agent;
use ureq::http::{self, Response};
use ureq::unversioned::resolver::DefaultResolver;

use super::endpoint::{Endpoint, EndpointError};
use super::warm::{Warm, WarmConnector};
use crate::registry::retry;

/// How much of an error body is read to explain the error.
pub(super) const MAX_ERROR_BODY: u64 = 64 * 1024;

/// The content type of blob bodies and of every upload request (Nexus insists).
pub(super) const OCTET_STREAM: &str = "application/octet-stream";

/// A request body.
pub(super) enum Body<'a> {
    /// No body.
    Empty,
    /// Bytes in memory with their content type (a manifest): replayable.
    Bytes(&'a [u8], &'a str),
    /// A stream of known length; cannot be replayed, so never retried.
    Stream(&'a mut dyn Read, u64),
}

impl Body<'_> {
    pub(super) fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(..))
    }
}

/// Why an answer's JSON body could not be had.
#[derive(Debug, thiserror::Error)]
pub(super) enum JsonBodyError {
    /// The body broke off or was larger than allowed.
    #[error(transparent)]
    Read(#[from] ureq::Error),
    /// It was not the JSON expected.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Reads a short answer (an error, a ping) to its end and drops it, so its
/// connection serves the next request instead of closing: a new one costs
/// a TLS handshake, the registry's CPU and, across a WAN, two round trips.
pub(super) fn discard(response: Response<ureq::Body>) {
    let _ = response
        .into_body()
        .into_with_config()
        .limit(MAX_ERROR_BODY)
        .read_to_vec();
}

/// Reads a JSON answer of at most `limit` bytes.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(
    response: Response<ureq::Body>,
    limit: u64,
) -> std::result::Result<T, JsonBodyError> {
    let bytes = response
        .into_body()
        .into_with_config()
        .limit(limit)
        .read_to_vec()?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Upload URLs carry opaque state; it is noise in messages.
pub(super) fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

/// A response header's value as text.
pub(super) fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    header_in(response.headers(), name)
}

/// A header's value as text, from headers kept after the body was read.
pub(super) fn header_in(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The wait a response asks for (`Retry-After`), if any.
pub(super) fn retry_after(response: &Response<ureq::Body>) -> Option<Duration> {
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

/// The HTTP agent shared by registries with the same TLS settings, and the
/// connections opened ahead for it.
#[derive(Clone, Debug)]
pub struct Client {
    pub(super) agent: Agent,
    pub(super) warm: Arc<Warm>,
    /// Idle connections the agent keeps per host.
    pub(super) connections: usize,
}

/// Builds the shared HTTP client for registries with the same TLS settings.
pub fn build_client(
    endpoint: &Endpoint,
    connections: usize,
) -> std::result::Result<Client, EndpointError> {
    let tls = endpoint.tls_config()?;
    let connections = connections.max(1);
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("hoist/{}", env!("CARGO_PKG_VERSION")))
        .max_idle_connections(connections * 4)
        .max_idle_connections_per_host(connections)
        // Each connection holds one buffer each way (128 KiB by default):
        // with dozens of connections per registry across regions, 32 KiB
        // keep the memory small without slowing a stream (a TLS record is 16 KiB).
        .input_buffer_size(32 * 1024)
        .output_buffer_size(32 * 1024)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(endpoint.timeout))
        .timeout_per_write(Some(endpoint.timeout))
        .tls_config(tls)
        .build();
    let warm = Arc::<Warm>::default();
    let agent = Agent::with_parts(
        config,
        WarmConnector(warm.clone()),
        DefaultResolver::default(),
    );
    Ok(Client {
        agent,
        warm,
        connections,
    })
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
