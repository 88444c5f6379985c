//! `hoist-wan`: a TCP proxy that puts a loopback registry across a wide-area
//! link, for the benchmark's WAN corpus (bench/bench.py) and its tests.
//!
//! ```text
//! hoist-wan --listen 127.0.0.1:6000 --upstream 127.0.0.1:5000 --rtt-ms 40 --mbit 400 \
//!           [--stats stats.json]
//! ```
//!
//! It prints the address it listens on (`--listen 127.0.0.1:0` picks a
//! free port) as its first line on stdout.
//!
//! The model, per direction (client to registry, registry to client):
//!
//! - **One shared link.** Every connection's bytes go through one link of
//!   `--mbit` megabits per second (10^6 bit/s) in that direction: a token
//!   bucket without burst, kept as the time the link is next free. A chunk
//!   read from one side is booked on the link at `max(read time, link free)`
//!   and occupies it for `len / rate`. Upload and download are separate
//!   links, each of the full rate (a symmetric line, as between two data
//!   centres), so 400 Mbit/s means 400 each way.
//! - **Latency.** The chunk is written to the other side half a round trip
//!   after the link has carried it. Chunks are queued with their release
//!   times, so latency does not cut a connection's throughput: many chunks
//!   are in flight at once, as on a real long fat pipe.
//! - **Connection set-up.** A client's connection is accepted at once, but
//!   its first bytes reach the registry no sooner than one round trip (the
//!   TCP handshake) plus half a round trip after it connected. TLS and HTTP
//!   turns then cost their round trips through the model above.
//!
//! Queues are first in, first out across connections (one bottleneck
//! queue); each connection may have a few bandwidth-delay products queued
//! per direction before its reader stops reading (TCP's window). A link
//! rate of 0 means no bandwidth limit, only latency.
//!
//! Counters (bytes, busy link time, connections, request/answer turns and
//! how many were outstanding at once) are written as JSON to `--stats` when
//! the proxy gets SIGTERM or SIGINT, and every second while it runs.

mod link;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use link::{Gauge, Link};

/// Bytes read from a socket at most at once: small enough that the link is
/// shared between connections at a fine grain (64 KiB take 1.3 ms of a
/// 400 Mbit/s link, a thirtieth of a 40 ms round trip), large enough that
/// the proxy's own CPU (a wake-up and two system calls per chunk) stays
/// small beside the registries' on the benchmark's machine: 16 KiB chunks
/// cost each proxy 0.35–0.48 s of CPU per 100 MiB, 64 KiB 0.25–0.39 s.
const CHUNK: usize = 64 * 1024;

const USAGE: &str = "usage: hoist-wan --listen ADDR --upstream HOST:PORT \
                     [--rtt-ms N] [--mbit N] [--stats FILE]";

/// The command line.
struct Args {
    listen: SocketAddr,
    upstream: String,
    rtt: Duration,
    /// Bytes per second per direction; 0 is unlimited.
    rate: f64,
    stats: Option<PathBuf>,
}

/// A command line that does not say what to run.
#[derive(Debug, thiserror::Error)]
enum ArgsError {
    /// A flag given last, without its value.
    #[error("{0} needs a value")]
    NeedsValue(String),
    /// `--listen` that is no socket address.
    #[error("--listen {text}: {reason}")]
    Listen {
        text: String,
        reason: std::net::AddrParseError,
    },
    /// A number that is negative or no number.
    #[error("{flag} {text}: not a non-negative number")]
    NotNumber { flag: String, text: String },
    /// A flag that is required, missing.
    #[error("{0} is required\n{USAGE}")]
    Required(&'static str),
    /// A flag hoist-wan does not know.
    #[error("unknown argument {0}\n{USAGE}")]
    Unknown(String),
    /// `--help`.
    #[error("{USAGE}")]
    Help,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, ArgsError> {
    let (mut listen, mut upstream, mut rtt_ms, mut mbit, mut stats) =
        (None, None, 0.0_f64, 0.0_f64, None);
    while let Some(flag) = argv.next() {
        let mut value = || {
            argv.next()
                .ok_or_else(|| ArgsError::NeedsValue(flag.clone()))
        };
        match flag.as_str() {
            "--listen" => {
                let text = value()?;
                listen = Some(
                    text.parse()
                        .map_err(|reason| ArgsError::Listen { text, reason })?,
                );
            }
            "--upstream" => upstream = Some(value()?),
            "--rtt-ms" => rtt_ms = number(&flag, &value()?)?,
            "--mbit" => mbit = number(&flag, &value()?)?,
            "--stats" => stats = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(ArgsError::Help),
            other => return Err(ArgsError::Unknown(other.to_string())),
        }
    }
    Ok(Args {
        listen: listen.ok_or(ArgsError::Required("--listen"))?,
        upstream: upstream.ok_or(ArgsError::Required("--upstream"))?,
        rtt: Duration::from_secs_f64(rtt_ms / 1000.0),
        rate: mbit * 1e6 / 8.0,
        stats,
    })
}

fn number(flag: &str, text: &str) -> Result<f64, ArgsError> {
    match text.parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Ok(n),
        _ => Err(ArgsError::NotNumber {
            flag: flag.to_string(),
            text: text.to_string(),
        }),
    }
}

/// What every connection shares: the two links and the counters.
struct Wan {
    rtt: Duration,
    /// Client to registry.
    up: Link,
    /// Registry to client.
    down: Link,
    /// Open connections.
    open: Gauge,
    /// Connections whose client has sent since the registry last answered:
    /// requests (and TLS handshake turns) awaiting an answer.
    waiting: Gauge,
    /// Connections whose client sent anything (its `total`): over plain
    /// HTTP, the connections that carried a request.
    used: Gauge,
    /// Queue length per connection and direction, in chunks.
    queue: usize,
}

/// One chunk on its way: written to the other side at `release`; no bytes
/// is the end of the stream.
struct Chunk {
    release: Instant,
    bytes: Vec<u8>,
}

/// Which way a pump carries bytes.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    Up,
    Down,
}

/// One client connection and its registry connection.
struct Pair {
    client: TcpStream,
    registry: TcpStream,
    accepted: Instant,
    /// The client sent since the registry last answered.
    waiting: AtomicBool,
    /// The client sent anything.
    used: AtomicBool,
    /// Directions finished (0, 1, 2).
    done: AtomicU8,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("hoist-wan: {message}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hoist-wan: listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    // The address, for a caller that asked for port 0.
    match listener.local_addr() {
        Ok(address) => println!("{address}"),
        Err(e) => {
            eprintln!("hoist-wan: {e}");
            return ExitCode::from(1);
        }
    }
    // Enough queue to keep several bandwidth-delay products in flight on
    // one connection (a window TCP would open), never fewer than 64 chunks.
    let bdp = if args.rate > 0.0 {
        args.rate * args.rtt.as_secs_f64()
    } else {
        0.0
    };
    let queue = ((4.0 * bdp) as usize / CHUNK).max(64);
    let wan = Arc::new(Wan {
        rtt: args.rtt,
        up: Link::new(args.rate),
        down: Link::new(args.rate),
        open: Gauge::default(),
        waiting: Gauge::default(),
        used: Gauge::default(),
        queue,
    });
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("hoist-wan: signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let upstream = args.upstream.clone();
    let accepting = wan.clone();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let wan = accepting.clone();
            let upstream = upstream.clone();
            thread::spawn(move || {
                if let Err(e) = serve(&wan, client, &upstream) {
                    eprintln!("hoist-wan: connection to {upstream}: {e}");
                }
            });
        }
    });
    let mut last_write = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(20));
        if last_write.elapsed() >= Duration::from_secs(1) {
            write_stats(&wan, &args);
            last_write = Instant::now();
        }
    }
    write_stats(&wan, &args);
    ExitCode::SUCCESS
}

fn write_stats(wan: &Wan, args: &Args) {
    let Some(path) = &args.stats else { return };
    let text = link::stats_json(
        &[("up", &wan.up), ("down", &wan.down)],
        &[
            ("connections", &wan.open),
            ("waiting", &wan.waiting),
            ("used", &wan.used),
        ],
        args.rtt,
        args.rate,
    );
    let temporary = path.with_extension("tmp");
    let written = std::fs::write(&temporary, text).and_then(|_| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        eprintln!("hoist-wan: {}: {e}", path.display());
    }
}

/// Connects to the registry and pumps both directions until both end.
fn serve(wan: &Arc<Wan>, client: TcpStream, upstream: &str) -> io::Result<()> {
    let accepted = Instant::now();
    let registry = TcpStream::connect(upstream)?;
    // Every chunk is written when its time comes, not held back to merge
    // with the next one.
    client.set_nodelay(true)?;
    registry.set_nodelay(true)?;
    wan.open.add(1);
    let pair = Arc::new(Pair {
        client,
        registry,
        accepted,
        waiting: AtomicBool::new(false),
        used: AtomicBool::new(false),
        done: AtomicU8::new(0),
    });
    for way in [Way::Up, Way::Down] {
        let (send, receive) = sync_channel(wan.queue);
        let (reading, writing) = (pair.clone(), pair.clone());
        let (wan_r, wan_w) = (wan.clone(), wan.clone());
        thread::spawn(move || read_side(&wan_r, &reading, way, send));
        thread::spawn(move || write_side(&wan_w, &writing, way, receive));
    }
    Ok(())
}

/// Reads chunks from one side, books them on the link and queues them.
fn read_side(wan: &Wan, pair: &Pair, way: Way, queue: SyncSender<Chunk>) {
    let (mut from, link) = match way {
        Way::Up => (&pair.client, &wan.up),
        Way::Down => (&pair.registry, &wan.down),
    };
    let half = wan.rtt / 2;
    // The TCP handshake: nothing reaches the registry before a round trip.
    let earliest = match way {
        Way::Up => pair.accepted + wan.rtt,
        Way::Down => pair.accepted,
    };
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buffer).unwrap_or(0);
        let now = Instant::now().max(earliest);
        if n == 0 {
            let _ = queue.send(Chunk {
                release: now + half,
                bytes: Vec::new(),
            });
            return;
        }
        if way == Way::Up && !pair.waiting.swap(true, Ordering::Relaxed) {
            wan.waiting.add(1);
        }
        if way == Way::Up && !pair.used.swap(true, Ordering::Relaxed) {
            wan.used.add(1);
        }
        let sent = link.book(now, n);
        let chunk = Chunk {
            release: sent + half,
            bytes: buffer[..n].to_vec(),
        };
        if queue.send(chunk).is_err() {
            return;
        }
    }
}

/// Writes each queued chunk to the other side when its time comes.
fn write_side(wan: &Wan, pair: &Pair, way: Way, queue: Receiver<Chunk>) {
    let mut to = match way {
        Way::Up => &pair.registry,
        Way::Down => &pair.client,
    };
    for chunk in queue {
        let wait = chunk.release.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            thread::sleep(wait);
        }
        if chunk.bytes.is_empty() {
            let _ = to.shutdown(Shutdown::Write);
            break;
        }
        if to.write_all(&chunk.bytes).is_err() {
            // The other side is gone: end both directions.
            let _ = pair.client.shutdown(Shutdown::Both);
            let _ = pair.registry.shutdown(Shutdown::Both);
            break;
        }
        if way == Way::Down && pair.waiting.swap(false, Ordering::Relaxed) {
            wan.waiting.add(-1);
        }
    }
    if pair.done.fetch_add(1, Ordering::AcqRel) == 1 {
        if pair.waiting.swap(false, Ordering::Relaxed) {
            wan.waiting.add(-1);
        }
        wan.open.add(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Result<Args, ArgsError> {
        parse_args(text.split_whitespace().map(String::from))
    }

    #[test]
    fn megabits_are_bytes_per_second_per_direction() {
        let a =
            args("--listen 127.0.0.1:0 --upstream 127.0.0.1:5000 --rtt-ms 40 --mbit 400").unwrap();
        assert_eq!(a.rate, 50e6);
        assert_eq!(a.rtt, Duration::from_millis(40));
        assert_eq!(a.upstream, "127.0.0.1:5000");
    }

    #[test]
    fn listen_and_upstream_are_required() {
        assert!(args("--upstream 127.0.0.1:5000").is_err());
        assert!(args("--listen 127.0.0.1:0").is_err());
        assert!(args("--listen 127.0.0.1:0 --upstream x:1 --mbit -3").is_err());
    }
}
