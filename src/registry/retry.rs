//! The one retry policy and the one answer to "is this failure worth another
//! attempt?", shared by the registry client and the executor.
//!
//! A retry loop is [`RetryPolicy::run`]: the caller gives the operation and a
//! judge that turns each outcome into a [`Decision`]; the policy keeps the
//! count, enforces the budget and waits. [`RetryPolicy::decide`] is the
//! standard judgement of an error, built on [`is_transient`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::RegistryError;

/// Longest single backoff, whatever the attempt number.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured; a registry asking for more waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How often and how patiently a failed operation is tried again:
/// exponential backoff with jitter, or the wait the registry asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first backoff; each retry doubles it.
    pub base: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base: Duration::from_millis(500),
        }
    }
}

/// What to do after one attempt, as the caller's judge sees its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Hand this outcome back: a success, a permanent failure, or one the
    /// caller does not want retried (a stop was requested).
    Stop,
    /// Try again at once, even when no retries are left (the attempt still
    /// counts): the client fixed the cause itself, as when a 413 switched the
    /// upload to chunks. The judge bounds it, typically to the first attempt.
    RetryNow,
    /// Try again after sleeping this long, if retries are left.
    RetryAfter(Duration),
    /// The registry is rate limiting (429): try again, if retries are left,
    /// after the caller's `throttle` made this pause for every thread that
    /// talks to it. [`RetryPolicy::run`] just sleeps.
    Throttle(Duration),
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (0 for the first retry):
    /// `base · 2^attempt`, capped, scaled by a random factor in [0.5, 1.5).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_BACKOFF);
        exponential.mul_f64(0.5 + jitter())
    }

    /// The standard judgement of a failure on attempt `attempt` (0 first):
    /// permanent errors stop; transient ones wait the `Retry-After` the
    /// registry sent, else the backoff; a 429 asks to [`Decision::Throttle`].
    pub fn decide(&self, error: &RegistryError, attempt: u32) -> Decision {
        if !is_transient(error) {
            return Decision::Stop;
        }
        match error {
            RegistryError::Status {
                status,
                retry_after,
                ..
            } => self.decide_status(*status, *retry_after, attempt),
            _ => Decision::RetryAfter(self.backoff(attempt)),
        }
    }

    /// [`RetryPolicy::decide`] for an answer still in hand (the client looks
    /// at a response before it becomes an error).
    pub fn decide_status(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        attempt: u32,
    ) -> Decision {
        if !is_transient_status(status) {
            return Decision::Stop;
        }
        let pause = retry_after.unwrap_or_else(|| self.backoff(attempt));
        if status == 429 {
            Decision::Throttle(pause)
        } else {
            Decision::RetryAfter(pause)
        }
    }

    /// Runs `operation` (given the attempt number, 0 first) until `judge`
    /// says [`Decision::Stop`] or the retries are spent, and returns the last
    /// outcome. A [`Decision::Throttle`] sleeps like `RetryAfter`; see
    /// [`RetryPolicy::run_throttled`] to spread it over a registry instead.
    pub fn run<O>(
        &self,
        operation: impl FnMut(u32) -> O,
        judge: impl FnMut(&O, u32) -> Decision,
    ) -> O {
        self.run_throttled(operation, judge, std::thread::sleep)
    }

    /// [`RetryPolicy::run`], handing the pause of a [`Decision::Throttle`] to
    /// `throttle` instead of sleeping: a registry-wide cooldown
    /// (`Registry::throttle`) makes every thread wait, this one included.
    /// `throttle` is only called when another attempt follows.
    ///
    /// A whole blob transfer, as the executor retries it:
    ///
    /// ```ignore
    /// let transferred = policy.run_throttled(
    ///     |_| {
    ///         let reader = source.blob_get(repo, &digest, size)?;
    ///         target.blob_put(repo, &digest, size, &mut reader, session.take())
    ///     },
    ///     |result, attempt| match result {
    ///         Ok(()) => Decision::Stop,
    ///         // The client switched to chunked uploads on the 413: again at once.
    ///         Err(RegistryError::Status { status: 413, .. }) if attempt == 0 => Decision::RetryNow,
    ///         Err(_) if stop_requested() => Decision::Stop,
    ///         Err(e) => policy.decide(e, attempt),
    ///     },
    ///     |pause| {
    ///         source.throttle(pause);
    ///         target.throttle(pause);
    ///     },
    /// );
    /// ```
    pub fn run_throttled<O>(
        &self,
        mut operation: impl FnMut(u32) -> O,
        mut judge: impl FnMut(&O, u32) -> Decision,
        mut throttle: impl FnMut(Duration),
    ) -> O {
        let mut attempt = 0;
        loop {
            let outcome = operation(attempt);
            match judge(&outcome, attempt) {
                Decision::Stop => return outcome,
                Decision::RetryNow => {}
                _ if attempt >= self.retries => return outcome,
                Decision::RetryAfter(pause) => std::thread::sleep(pause),
                Decision::Throttle(pause) => throttle(pause),
            }
            attempt += 1;
        }
    }
}

/// Whether a failure is worth another attempt: the request got no answer,
/// the registry (or something in front of it) is overloaded or restarting,
/// or a stream broke off. A digest mismatch, a refusal or a protocol
/// violation will not change by asking again.
pub fn is_transient(error: &RegistryError) -> bool {
    match error {
        RegistryError::Transport { .. } => true,
        RegistryError::Status { status, .. } => is_transient_status(*status),
        RegistryError::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::BrokenPipe
        ),
        // Sent again at once by the uploader's caller, not with backoff.
        RegistryError::UploadAdapted(_)
        | RegistryError::Auth { .. }
        | RegistryError::LoginRefused { .. }
        | RegistryError::Protocol { .. }
        | RegistryError::Manifest { .. }
        | RegistryError::Verification(_)
        | RegistryError::TagsUnlisted { .. }
        | RegistryError::NotFound { .. } => false,
    }
}

/// [`is_transient`] for an HTTP status: timeouts, rate limits and gateway
/// or server trouble.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Parses `Retry-After`: delay-seconds, capped at [`MAX_RETRY_AFTER`] (an
/// HTTP date is not worth a date parser here; the caller falls back to its
/// own backoff).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// A number in [0, 1), different on every call and every thread.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        ^ u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos(),
        );
    // splitmix64 finaliser
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::ErrorKind;
    use std::time::Instant;

    use super::*;
    use crate::digest::{BlobMismatch, ContentKind, Digest};

    fn status(status: u16, retry_after: Option<Duration>) -> RegistryError {
        RegistryError::Status {
            method: "GET".into(),
            url: "https://registry.example/v2/".into(),
            status,
            codes: Vec::new(),
            message: String::new(),
            retry_after,
        }
    }

    fn io(kind: ErrorKind) -> RegistryError {
        RegistryError::Io {
            path: "blob".into(),
            source: kind.into(),
        }
    }

    /// The judge most callers want: success stops, errors as `decide` says.
    fn standard(policy: RetryPolicy) -> impl Fn(&Result<(), RegistryError>, u32) -> Decision {
        move |outcome, attempt| match outcome {
            Ok(()) => Decision::Stop,
            Err(e) => policy.decide(e, attempt),
        }
    }

    fn tiny(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            base: Duration::from_millis(1),
        }
    }

    /// Every status and failure the table judges, named.
    fn failures() -> Vec<(String, RegistryError)> {
        let statuses = [
            200, 201, 202, 400, 401, 403, 404, 405, 408, 409, 413, 429, 500, 501, 502, 503, 504,
        ];
        let mut cases: Vec<(String, RegistryError)> = statuses
            .iter()
            .map(|&s| (format!("HTTP {s}"), status(s, None)))
            .collect();
        for kind in [
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
            ErrorKind::UnexpectedEof,
            ErrorKind::TimedOut,
            ErrorKind::BrokenPipe,
            ErrorKind::PermissionDenied,
        ] {
            cases.push((format!("stream {kind:?}"), io(kind)));
        }
        let others = [
            RegistryError::transport(
                "GET",
                "https://registry.example/v2/",
                std::io::Error::other("connection refused"),
            ),
            RegistryError::Verification(BlobMismatch {
                kind: ContentKind::Blob,
                digest: Digest::sha256_of(b"x"),
                what: "3 bytes hashing to something else".into(),
            }),
            RegistryError::Auth {
                registry: "registry.example".into(),
                message: "refused".into(),
            },
            RegistryError::LoginRefused {
                registry: "registry.example".into(),
                origin: "the variables U and P".into(),
            },
            RegistryError::Protocol {
                registry: "registry.example".into(),
                message: "pagination loops".into(),
            },
            RegistryError::NotFound {
                what: "manifest".into(),
            },
        ];
        for error in others {
            let name = format!("{error:?}");
            let variant = name.split([' ', '(']).next().unwrap_or_default();
            cases.push((variant.to_string(), error));
        }
        cases
    }

    #[test]
    fn which_failures_are_retried() {
        let policy = tiny(4);
        let table: Vec<String> = failures()
            .iter()
            .map(|(name, error)| {
                let verdict = if is_transient(error) {
                    "retried"
                } else {
                    "final"
                };
                let wait = match policy.decide(error, 0) {
                    Decision::Stop => "",
                    Decision::RetryNow => "at once",
                    Decision::RetryAfter(_) => "after a sleep",
                    Decision::Throttle(_) => "after a registry-wide cooldown",
                };
                format!("{name:<24} {verdict:<7} {wait}")
                    .trim_end()
                    .to_string()
            })
            .collect();
        insta::assert_snapshot!(table.join("\n"), @r"
        HTTP 200                 final
        HTTP 201                 final
        HTTP 202                 final
        HTTP 400                 final
        HTTP 401                 final
        HTTP 403                 final
        HTTP 404                 final
        HTTP 405                 final
        HTTP 408                 retried after a sleep
        HTTP 409                 final
        HTTP 413                 final
        HTTP 429                 retried after a registry-wide cooldown
        HTTP 500                 retried after a sleep
        HTTP 501                 final
        HTTP 502                 retried after a sleep
        HTTP 503                 retried after a sleep
        HTTP 504                 retried after a sleep
        stream ConnectionReset   retried after a sleep
        stream ConnectionAborted retried after a sleep
        stream UnexpectedEof     retried after a sleep
        stream TimedOut          retried after a sleep
        stream BrokenPipe        retried after a sleep
        stream PermissionDenied  final
        Transport                retried after a sleep
        Verification             final
        Auth                     final
        LoginRefused             final
        Protocol                 final
        NotFound                 final
        ");
    }

    /// How many attempts `policy` makes of an operation that always fails with `status`.
    fn attempts_failing_with(policy: RetryPolicy, status_code: u16) -> u32 {
        let calls = Cell::new(0);
        let outcome = policy.run(
            |_| {
                calls.set(calls.get() + 1);
                Err(status(status_code, None))
            },
            standard(policy),
        );
        assert!(
            matches!(outcome, Err(RegistryError::Status { status, .. }) if status == status_code)
        );
        calls.get()
    }

    #[test]
    fn transient_failures_are_retried_until_the_budget_is_spent() {
        assert_eq!(
            attempts_failing_with(tiny(3), 503),
            4,
            "the first attempt and three retries"
        );
    }

    #[test]
    fn a_transient_failure_then_success_succeeds() {
        let policy = tiny(3);
        let outcome = policy.run(
            |attempt| match attempt {
                0 => Err(io(ErrorKind::ConnectionReset)),
                _ => Ok(()),
            },
            standard(policy),
        );
        assert!(outcome.is_ok());
    }

    #[test]
    fn a_permanent_failure_stops_at_once() {
        assert_eq!(attempts_failing_with(tiny(3), 404), 1);
    }

    #[test]
    fn retry_after_is_waited_instead_of_the_backoff() {
        let policy = tiny(1);
        let started = Instant::now();
        let _ = policy.run(
            |_| Err(status(503, Some(Duration::from_millis(60)))),
            standard(policy),
        );
        assert!(started.elapsed() >= Duration::from_millis(60));
    }

    #[test]
    fn a_429_throttles_instead_of_sleeping_and_not_after_the_last_attempt() {
        let policy = tiny(2);
        let pauses = std::cell::RefCell::new(Vec::new());
        let started = Instant::now();
        let _ = policy.run_throttled(
            |_| Err(status(429, Some(Duration::from_secs(7)))),
            standard(policy),
            |pause| pauses.borrow_mut().push(pause),
        );
        assert_eq!(*pauses.borrow(), vec![Duration::from_secs(7); 2]);
        assert!(started.elapsed() < Duration::from_secs(7), "did not sleep");
    }

    #[test]
    fn retry_now_goes_past_the_budget_and_counts_as_an_attempt() {
        // The executor's 413 on a first upload: again at once, even with no retries.
        let policy = tiny(0);
        let attempts = std::cell::RefCell::new(Vec::new());
        let outcome = policy.run(
            |attempt| {
                attempts.borrow_mut().push(attempt);
                Err(status(if attempt == 0 { 413 } else { 503 }, None))
            },
            |outcome: &Result<(), RegistryError>, attempt| match outcome {
                Err(RegistryError::Status { status: 413, .. }) if attempt == 0 => {
                    Decision::RetryNow
                }
                Err(e) => policy.decide(e, attempt),
                Ok(()) => Decision::Stop,
            },
        );
        assert!(matches!(
            outcome,
            Err(RegistryError::Status { status: 503, .. })
        ));
        assert_eq!(*attempts.borrow(), vec![0, 1]);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let policy = RetryPolicy {
            retries: 10,
            base: Duration::from_millis(100),
        };
        for attempt in 0..4 {
            let nominal = 100.0 * f64::from(1u32 << attempt);
            let ms = policy.backoff(attempt).as_secs_f64() * 1000.0;
            assert!(ms >= nominal * 0.5 && ms < nominal * 1.5, "{attempt}: {ms}");
        }
        assert!(policy.backoff(30) < MAX_BACKOFF.mul_f64(1.5));
        let samples: std::collections::BTreeSet<_> = (0..20).map(|_| policy.backoff(2)).collect();
        assert!(samples.len() > 10, "jitter varies");
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("100000"), Some(MAX_RETRY_AFTER));
    }
}
