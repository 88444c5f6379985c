//! What a registry has said about uploads, kept for the rest of the run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ureq::http::Response;

use super::endpoint;
use super::http::header;

/// Smallest chunk hoist shrinks to after 413 answers.
const MIN_CHUNK_AFTER_413: u64 = 64 * 1024;

/// How one blob goes up, chosen from what the configuration and the
/// registry said so far ([`UploadRules`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UploadStrategy {
    /// One `PUT` with the whole blob: the fewest requests.
    Monolithic,
    /// `PATCH` chunks of this many bytes, then a closing `PUT`: for
    /// registries (or proxies) that refuse large bodies.
    Chunked(u64),
}

/// What a registry has said about uploads, kept for the rest of the run:
/// monolithic first; chunked once a monolithic `PUT` is refused; chunks no
/// smaller than an announced `OCI-Chunk-Min-Length` (ECR: 5 MiB) and no
/// larger than a body the registry accepts (GHCR answers 413 over 4 MiB).
#[derive(Debug, Default)]
pub(super) struct UploadRules {
    /// Set once the registry refused a monolithic upload.
    chunked: AtomicBool,
    /// The largest chunk to send (0: no cap known), halved on each 413.
    max_chunk: AtomicU64,
    /// The smallest chunk the registry takes (all but the last), as announced.
    min_chunk: AtomicU64,
}

impl UploadRules {
    /// The strategy for a blob of `size` bytes; `configured` is the
    /// registry's `upload_chunk_size`.
    pub(super) fn strategy(&self, configured: Option<u64>, size: u64) -> UploadStrategy {
        let chunked = configured.is_some() || self.chunked.load(Ordering::Relaxed);
        if !chunked || size == 0 {
            return UploadStrategy::Monolithic;
        }
        let mut chunk = configured.unwrap_or(endpoint::DEFAULT_CHUNK_SIZE);
        let cap = self.max_chunk.load(Ordering::Relaxed);
        if cap > 0 {
            chunk = chunk.min(cap);
        }
        // The registry's minimum wins over everything but the blob's end.
        UploadStrategy::Chunked(chunk.max(self.min_chunk.load(Ordering::Relaxed)).max(1))
    }

    /// A monolithic `PUT` of `size` bytes was refused: chunks from now on;
    /// after a 413 no chunk is larger than half of what was refused.
    pub(super) fn refused_monolithic(&self, status: u16, size: u64) {
        self.chunked.store(true, Ordering::Relaxed);
        if status == 413 {
            self.too_large(size.max(2));
        }
    }

    /// A body of `size` bytes was too large (413): cap chunks below it.
    /// Whether the next upload sends smaller bodies (false at the floor).
    pub(super) fn too_large(&self, size: u64) -> bool {
        let cap = (size / 2).max(MIN_CHUNK_AFTER_413);
        let _ = self
            .max_chunk
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                (now == 0 || cap < now).then_some(cap)
            });
        self.max_chunk.load(Ordering::Relaxed) < size
    }

    /// Reads `OCI-Chunk-Min-Length` from an answer that opened an upload.
    pub(super) fn announced(&self, response: &Response<ureq::Body>) {
        if let Some(min) = header(response, "oci-chunk-min-length").and_then(|v| v.parse().ok()) {
            self.min_chunk.fetch_max(min, Ordering::Relaxed);
        }
    }
}
