//! Registries that page listings their own way, played by the test proxy in
//! front of a real registry: it reads the whole listing from the registry and
//! hands it out in pages of its own.
//!
//! - Quay (`endpoints/v2/__init__.py`, `paginate`): pages clamped to a size
//!   of its own whatever `n` asks, continued with an opaque `next_page`
//!   token in `Link`. A query built by the client (`last=`) is not
//!   understood.
//! - ACR (acr issue 749): `n` is ignored, pages have the registry's size,
//!   and `Link` carries `last=` and the registry's own `n` and `orderby=`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use super::fault_proxy::{FaultProxy, Reply};

/// How a registry pages `_catalog` and `tags/list`.
#[derive(Clone, Copy, Debug)]
pub enum Paging {
    /// Quay: `size` entries a page, opaque `next_page` tokens.
    Quay {
        /// Entries per page, whatever `n` asks.
        size: usize,
    },
    /// ACR: `size` entries a page, `n` ignored, `last=` in `Link`.
    Acr {
        /// Entries per page, whatever `n` asks.
        size: usize,
    },
}

/// Makes `proxy` (in front of `upstream`, `host:port`) answer every listing
/// request with pages the way `paging` says. A request the registry would
/// not understand (a query the client built itself, an unknown token)
/// answers 400, so a client that does not follow `Link` exactly fails.
pub fn page_listings(proxy: &FaultProxy, upstream: &str, paging: Paging) {
    let upstream = upstream.to_string();
    let tokens: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    proxy.answer(move |method, path| {
        let listing = Listing::of(path)?;
        if method != "GET" {
            return None;
        }
        let all = match read_all(&upstream, &listing) {
            Ok(all) => all,
            Err(reply) => return Some(reply),
        };
        let start = match paging {
            Paging::Quay { .. } => quay_offset(path, &tokens),
            Paging::Acr { .. } => Ok(acr_offset(path, &all)),
        };
        let start = match start {
            Ok(start) => start.min(all.len()),
            Err(reply) => return Some(reply),
        };
        let size = match paging {
            Paging::Quay { size } | Paging::Acr { size } => size,
        };
        let end = (start + size).min(all.len());
        let mut reply = Reply::status(200)
            .header("Content-Type", "application/json")
            .body(listing.page(&all[start..end]));
        if end < all.len() {
            let next = match paging {
                Paging::Quay { size } => {
                    let token = opaque_token(end, &listing.base);
                    tokens.lock().unwrap().insert(token.clone(), end);
                    format!("{}?n={size}&next_page={token}", listing.base)
                }
                Paging::Acr { size } => {
                    format!("{}?last={}&n={size}&orderby=", listing.base, all[end - 1])
                }
            };
            reply = reply.header("Link", format!("<{next}>; rel=\"next\""));
        }
        Some(reply)
    });
}

/// A listing request: `_catalog`, or the tags of one repository.
struct Listing {
    /// The path without its query (`/v2/_catalog`, `/v2/a/b/tags/list`).
    base: String,
    /// The repository whose tags are listed; none for the catalog.
    repository: Option<String>,
}

impl Listing {
    /// The listing `path` asks for, if it is one.
    fn of(path: &str) -> Option<Listing> {
        let base = path.split('?').next().unwrap_or(path);
        let repository = if base == "/v2/_catalog" {
            None
        } else {
            let name = base.strip_prefix("/v2/")?.strip_suffix("/tags/list")?;
            Some(name.to_string())
        };
        Some(Listing {
            base: base.to_string(),
            repository,
        })
    }

    /// The JSON of a page holding `entries`.
    fn page(&self, entries: &[String]) -> Vec<u8> {
        let value = match &self.repository {
            None => serde_json::json!({ "repositories": entries }),
            Some(name) => serde_json::json!({ "name": name, "tags": entries }),
        };
        value.to_string().into_bytes()
    }
}

/// Every entry of the listing, read from the registry (following its own
/// `Link` pages).
fn read_all(upstream: &str, listing: &Listing) -> Result<Vec<String>, Reply> {
    let key = if listing.repository.is_some() {
        "tags"
    } else {
        "repositories"
    };
    let mut entries = Vec::new();
    let mut path = listing.base.clone();
    loop {
        let page =
            get(upstream, &path).map_err(|e| Reply::status(502).body(format!("upstream: {e}")))?;
        if page.status != 200 {
            return Err(Reply::status(page.status)
                .header("Content-Type", "application/json")
                .body(page.body));
        }
        let value: serde_json::Value = serde_json::from_slice(&page.body)
            .map_err(|e| Reply::status(502).body(e.to_string()))?;
        if let Some(values) = value[key].as_array() {
            entries.extend(values.iter().filter_map(|v| v.as_str().map(String::from)));
        }
        match page.next {
            Some(next) => path = next,
            None => {
                // Both page in lexical order (ACR's `last=` depends on it).
                entries.sort();
                return Ok(entries);
            }
        }
    }
}

/// Where a Quay page starts: the first page, or where its token says.
fn quay_offset(path: &str, tokens: &Mutex<HashMap<String, usize>>) -> Result<usize, Reply> {
    if query_value(path, "last").is_some() {
        return Err(invalid(
            "this registry pages with next_page tokens, not last=",
        ));
    }
    match query_value(path, "next_page") {
        None => Ok(0),
        Some(token) => tokens
            .lock()
            .unwrap()
            .get(token)
            .copied()
            .ok_or_else(|| invalid("unknown next_page token")),
    }
}

/// Where an ACR page starts: after the entry `last=` names.
fn acr_offset(path: &str, all: &[String]) -> usize {
    match query_value(path, "last") {
        None => 0,
        Some(last) => all
            .iter()
            .position(|e| e.as_str() > last)
            .unwrap_or(all.len()),
    }
}

/// A token nobody could build from the entries: the offset mixed with the path.
fn opaque_token(offset: usize, base: &str) -> String {
    let mut x = offset as u64 ^ 0x5bd1_e995_u64.wrapping_mul(base.len() as u64 + 1);
    for b in base.bytes() {
        x = super::fault_proxy::mix(x ^ u64::from(b));
    }
    format!("gAAAAA{:016x}{:016x}", x, super::fault_proxy::mix(x))
}

/// The value of query parameter `name` in `path`.
fn query_value<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// A 400 as a registry answers a pagination query it does not understand.
fn invalid(message: &str) -> Reply {
    Reply::status(400)
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"errors":[{{"code":"PAGINATION_NUMBER_INVALID","message":"{message}"}}]}}"#
        ))
}

/// A registry's answer to a listing `GET`.
struct Page {
    status: u16,
    body: Vec<u8>,
    /// The `Link` target of the next page.
    next: Option<String>,
}

/// A plain `GET` to the registry, its body de-chunked.
fn get(upstream: &str, path: &str) -> std::io::Result<Page> {
    let mut stream = TcpStream::connect(upstream)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {upstream}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let next = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.eq_ignore_ascii_case("link") {
            return None;
        }
        let start = value.find('<')? + 1;
        let stop = value.find('>')?;
        Some(value[start..stop].to_string())
    });
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(&raw[end..])
    } else {
        raw[end..].to_vec()
    };
    Ok(Page { status, body, next })
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        body.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    body
}
