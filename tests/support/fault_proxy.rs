//! A fault-injecting HTTP proxy for tests: it sits in front of a real
//! `docker-registry` and, on a seeded schedule, answers 429 (with and without
//! `Retry-After`) or 500/502/503 instead of forwarding, resets or truncates a
//! response mid-body, stalls it, or flips a byte of a blob body. Every
//! request it saw is recorded with what it did to it.
//!
//! A test can also answer requests itself ([`FaultProxy::answer`]) or edit
//! the registry's answers ([`FaultProxy::rewrite`]): a hostile or broken
//! registry in front of a real one.
//!
//! One upstream connection per request, `Connection: close` to the client:
//! simple, and every fault ends its connection the way a broken network would.

mod connection;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use self::connection::{Shared, serve};

/// What the proxy may do to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: N` seconds, or without it.
    TooManyRequests(Option<u64>),
    /// This status instead of forwarding (500, 502, 503).
    Status(u16),
    /// Forward, then reset the connection halfway through the body.
    ResetMidBody,
    /// Forward, then close cleanly halfway through the body.
    Truncate,
    /// Forward half the body, then stall this long before closing.
    Stall(Duration),
    /// Forward a blob body with one byte flipped.
    FlipByte,
}

impl Fault {
    /// Whether the fault can apply to this request and its upstream answer.
    fn applies(self, method: &str, path: &str, status: u16, body: usize) -> bool {
        match self {
            Fault::TooManyRequests(_) | Fault::Status(_) => true,
            Fault::ResetMidBody | Fault::Truncate | Fault::Stall(_) => {
                method == "GET" && status == 200 && body > 1
            }
            Fault::FlipByte => {
                method == "GET" && status == 200 && body > 0 && path.contains("/blobs/sha256:")
            }
        }
    }

    /// Faults that answer in place of the registry.
    fn replaces_upstream(self) -> bool {
        matches!(self, Fault::TooManyRequests(_) | Fault::Status(_))
    }
}

/// When to inject what.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Seed of the generator that picks requests and faults.
    pub seed: u64,
    /// Chance (0..=1) that a request gets a fault.
    pub rate: f64,
    /// Faults to choose from, uniformly.
    pub faults: Vec<Fault>,
    /// Only requests whose path contains this (all when empty).
    pub path_contains: String,
}

impl Schedule {
    /// No faults: a plain proxy.
    pub fn none() -> Schedule {
        Schedule {
            seed: 0,
            rate: 0.0,
            faults: Vec::new(),
            path_contains: String::new(),
        }
    }
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When it arrived, since the proxy started.
    pub at: Duration,
    /// Request method.
    pub method: String,
    /// Request path and query.
    pub path: String,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
    /// The request's header lines, as sent.
    pub head: String,
}

impl Seen {
    /// Whether the request carried an `Authorization` header.
    pub fn authorized(&self) -> bool {
        self.head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("authorization:"))
    }
}

/// An answer a test makes up in place of the registry's.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// This status, no headers, an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl ToString) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body (`Content-Length` follows it; a HEAD gets no body).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut raw = format!("HTTP/1.1 {} Made-Up\r\n", self.status);
        for (name, value) in &self.headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut raw = raw.into_bytes();
        if !head_only {
            raw.extend_from_slice(&self.body);
        }
        raw
    }
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    schedule: Arc<Mutex<Schedule>>,
    pending: Arc<Mutex<Vec<Fault>>>,
    hooks: Arc<Hooks>,
}

/// Called with each request's method and path before it is forwarded.
pub type Hook = Box<dyn FnMut(&str, &str) + Send>;
/// Answers a request (method, path) in place of the registry, or lets it through.
pub type Answer = Box<dyn FnMut(&str, &str) -> Option<Reply> + Send>;
/// Edits the registry's raw answer (head and body) to a request (method, path).
pub type Rewrite = Box<dyn FnMut(&str, &str, &mut Vec<u8>) + Send>;

/// What a test plugged into the proxy.
#[derive(Default)]
struct Hooks {
    request: Mutex<Option<Hook>>,
    answer: Mutex<Option<Answer>>,
    rewrite: Mutex<Option<Rewrite>>,
    /// Serve the registry under this path (`/artifactory/api/docker/local`).
    prefix: Mutex<Option<String>>,
    /// Answers a request knowing its body's size, before `answer`.
    answer_sized: Mutex<Option<SizedAnswer>>,
    /// Answers a request seeing all of it, before the others.
    answer_seeing: Mutex<Option<SeeingAnswer>>,
}

/// What a [`SeeingAnswer`] sees of a request.
pub struct Incoming<'a> {
    /// Request method.
    pub method: &'a str,
    /// Request path and query.
    pub path: &'a str,
    /// The request's header lines, as sent.
    pub head: &'a str,
    /// The body's length in bytes.
    pub body_len: usize,
    /// The body, as sent (a manifest `PUT`'s manifest).
    pub body: &'a [u8],
}

impl Incoming<'_> {
    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Answers a request seeing its method, path, headers and body length, or lets it through.
pub type SeeingAnswer = Box<dyn FnMut(&Incoming<'_>) -> Option<Reply> + Send>;

/// Answers a request (method, path, body length) in place of the registry, or lets it through.
pub type SizedAnswer = Box<dyn FnMut(&str, &str, usize) -> Option<Reply> + Send>;

impl FaultProxy {
    /// A proxy on a loopback port in front of `upstream` (`host:port`, plain HTTP).
    pub fn start(upstream: &str, schedule: Schedule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let pending = Arc::new(Mutex::new(if schedule.rate > 0.0 {
            schedule.faults.clone()
        } else {
            Vec::new()
        }));
        let schedule = Arc::new(Mutex::new(schedule));
        let hooks = Arc::new(Hooks::default());
        let counter = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let upstream = upstream.to_string();
        {
            let (stop, seen, schedule, pending, hooks) = (
                stop.clone(),
                seen.clone(),
                schedule.clone(),
                pending.clone(),
                hooks.clone(),
            );
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let (seen, schedule, counter, pending, hooks) = (
                                seen.clone(),
                                schedule.clone(),
                                counter.clone(),
                                pending.clone(),
                                hooks.clone(),
                            );
                            let upstream = upstream.clone();
                            thread::spawn(move || {
                                let shared = Shared {
                                    schedule: &schedule,
                                    pending: &pending,
                                    hooks: &hooks,
                                    counter: &counter,
                                    seen: &seen,
                                    started,
                                };
                                let _ = serve(client, &upstream, &shared);
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(2))
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        FaultProxy {
            address,
            stop,
            seen,
            schedule,
            pending,
            hooks,
        }
    }

    /// `127.0.0.1:PORT`, for a configuration's `url`.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Runs `hook` on every request before it is forwarded: a test's way to
    /// change the registry at an exact moment of a run.
    pub fn on_request(&self, hook: impl FnMut(&str, &str) + Send + 'static) {
        *self.hooks.request.lock().unwrap() = Some(Box::new(hook));
    }

    /// Lets `answer` reply to requests in place of the registry: whatever it
    /// returns `Some` for never reaches the registry.
    pub fn answer(&self, answer: impl FnMut(&str, &str) -> Option<Reply> + Send + 'static) {
        *self.hooks.answer.lock().unwrap() = Some(Box::new(answer));
    }

    /// Like [`FaultProxy::answer`], knowing the request body's length: a
    /// registry's rules about upload bodies (GHCR's 4 MiB cap, ECR refusing
    /// a monolithic `PUT`).
    pub fn answer_sized(
        &self,
        answer: impl FnMut(&str, &str, usize) -> Option<Reply> + Send + 'static,
    ) {
        *self.hooks.answer_sized.lock().unwrap() = Some(Box::new(answer));
    }

    /// Like [`FaultProxy::answer`], seeing the request's headers too: a
    /// registry's rules about what a request must carry (Nexus refusing an
    /// upload without `Content-Type: application/octet-stream`).
    pub fn answer_seeing(
        &self,
        answer: impl FnMut(&Incoming<'_>) -> Option<Reply> + Send + 'static,
    ) {
        *self.hooks.answer_seeing.lock().unwrap() = Some(Box::new(answer));
    }

    /// Serves the registry under a path prefix, as Artifactory
    /// (`/artifactory/api/docker/REPO-KEY`) and Nexus (`/repository/NAME`)
    /// do: requests must carry it (others get 404), and the `Location` and
    /// `Link` headers of answers come back with it.
    pub fn serve_under(&self, prefix: &str) {
        *self.hooks.prefix.lock().unwrap() = Some(prefix.trim_end_matches('/').to_string());
    }

    /// Lets `rewrite` edit the registry's raw answers (status line, headers
    /// and body) before the client gets them.
    pub fn rewrite(&self, rewrite: impl FnMut(&str, &str, &mut Vec<u8>) + Send + 'static) {
        *self.hooks.rewrite.lock().unwrap() = Some(Box::new(rewrite));
    }

    /// Changes what is injected from now on (a rate of 0 makes it a plain proxy).
    pub fn set_schedule(&self, schedule: Schedule) {
        *self.pending.lock().unwrap() = if schedule.rate > 0.0 {
            schedule.faults.clone()
        } else {
            Vec::new()
        };
        *self.schedule.lock().unwrap() = schedule;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// splitmix64: a fixed sequence for a seed, whatever the platform.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The fault for the `n`th request, if the schedule gives it one: chosen
/// among those that can apply to its method (body faults need a GET).
fn pick(schedule: &Schedule, n: u64, method: &str) -> Option<Fault> {
    let possible: Vec<Fault> = schedule
        .faults
        .iter()
        .copied()
        .filter(|f| f.replaces_upstream() || method == "GET")
        .collect();
    if possible.is_empty() {
        return None;
    }
    let roll = mix(schedule.seed ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let chance = (roll >> 11) as f64 / (1u64 << 53) as f64;
    (chance < schedule.rate).then(|| possible[mix(roll) as usize % possible.len()])
}
