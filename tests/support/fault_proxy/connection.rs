//! One client connection of a [`FaultProxy`](super::FaultProxy): read the
//! request, then answer it with a test's made-up reply, an injected error,
//! or the registry's own answer (with a body fault done to it, if one applies).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Fault, Hooks, Incoming, Reply, Schedule, Seen, pick};

/// A client's request as sent, but for `Connection: close` in its head.
struct Request {
    method: String,
    path: String,
    head: Vec<u8>,
    body: Vec<u8>,
}

/// Reads one request: head, and a body by `Content-Length` or chunked (kept as sent).
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut chunked = false;
    let mut first = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if first.is_empty() {
            first = line.clone();
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        // The upstream gets `Connection: close`; everything else as sent.
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    head.truncate(head.len() - 2);
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    } else {
        body.resize(content_length, 0);
        reader.read_exact(&mut body)?;
    }
    let mut parts = first.split_whitespace();
    Ok(Some(Request {
        method: parts.next().unwrap_or("").to_string(),
        path: parts.next().unwrap_or("").to_string(),
        head,
        body,
    }))
}

/// The answer with `prefix` put before `/v2/` in its `Location` and `Link`
/// headers, as a registry served under a path writes them.
fn with_prefix_in_links(raw: &[u8], prefix: &str) -> Vec<u8> {
    let (body_start, _) = split_response(raw);
    let head = String::from_utf8_lossy(&raw[..body_start]);
    let mut out = String::new();
    for line in head.split_inclusive("\r\n") {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("location:") || lower.starts_with("link:") {
            out.push_str(&line.replace("/v2/", &format!("{prefix}/v2/")));
        } else {
            out.push_str(line);
        }
    }
    let mut rewritten = out.into_bytes();
    rewritten.extend_from_slice(&raw[body_start..]);
    rewritten
}

/// Where the header block ends and the body starts in a raw response.
fn split_response(raw: &[u8]) -> (usize, u16) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    let status = std::str::from_utf8(&raw[..end.min(raw.len())])
        .ok()
        .and_then(|head| head.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (end, status)
}

/// What the connection threads share.
pub(super) struct Shared<'a> {
    pub(super) schedule: &'a Mutex<Schedule>,
    /// Faults of the schedule not injected yet: each is injected at its
    /// first chance, so a run sees every kind whatever the seed.
    pub(super) pending: &'a Mutex<Vec<Fault>>,
    pub(super) hooks: &'a Hooks,
    pub(super) counter: &'a AtomicU64,
    pub(super) seen: &'a Mutex<Vec<Seen>>,
    pub(super) started: Instant,
}

/// Serves one client connection: reads its request, then answers it with
/// the test's reply, an injected error, or the registry's (maybe faulty) answer.
pub(super) fn serve(client: TcpStream, upstream: &str, shared: &Shared<'_>) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some(mut request) = read_request(&mut reader)? else {
        return Ok(());
    };
    let prefix = shared.hooks.prefix.lock().unwrap().clone();
    if let Some(prefix) = &prefix
        && !unprefix(&mut request, prefix)
    {
        client.write_all(&Reply::status(404).to_bytes(request.method == "HEAD"))?;
        return client.shutdown(Shutdown::Both);
    }
    if let Some(hook) = shared.hooks.request.lock().unwrap().as_mut() {
        hook(&request.method, &request.path);
    }
    let candidate = candidate_fault(shared, &request);

    if let Some(reply) = made_up_answer(shared.hooks, &request) {
        record(shared, &request, None);
        client.write_all(&reply.to_bytes(request.method == "HEAD"))?;
        client.flush()?;
        return client.shutdown(Shutdown::Both);
    }

    if let Some(fault) = candidate.filter(|f| f.replaces_upstream()) {
        record(shared, &request, Some(fault));
        write_injected(&mut client, fault)?;
        return client.shutdown(Shutdown::Both);
    }

    let raw = forward(upstream, &request, prefix.as_deref(), shared.hooks)?;
    let (body_start, status) = split_response(&raw);
    let body_len = raw.len() - body_start;
    let fault = candidate.filter(|f| f.applies(&request.method, &request.path, status, body_len));
    record(shared, &request, fault);
    deliver(reader, client, raw, body_start, fault)
}

/// Takes `prefix` off the request's path (in its request line too), as a
/// registry served under it does; false when the path is not under it.
fn unprefix(request: &mut Request, prefix: &str) -> bool {
    match request.path.strip_prefix(prefix) {
        Some(inner) if inner.starts_with('/') => {
            let inner = inner.to_string();
            let head = String::from_utf8_lossy(&request.head).replacen(
                &format!(" {} ", request.path),
                &format!(" {inner} "),
                1,
            );
            request.head = head.into_bytes();
            request.path = inner;
            true
        }
        _ => false,
    }
}

/// The fault the schedule has for the request, if any: a pending kind that
/// can apply first, else the seeded pick. Counts the request either way.
fn candidate_fault(shared: &Shared<'_>, request: &Request) -> Option<Fault> {
    let schedule = shared.schedule.lock().unwrap().clone();
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    if !request.path.contains(&schedule.path_contains) {
        return None;
    }
    let first = shared
        .pending
        .lock()
        .unwrap()
        .iter()
        .copied()
        .find(|f| f.replaces_upstream() || request.method == "GET");
    first.or_else(|| pick(&schedule, n, &request.method))
}

/// Records the request as seen with the fault done to it, which is then no
/// longer pending.
fn record(shared: &Shared<'_>, request: &Request, fault: Option<Fault>) {
    if let Some(fault) = fault {
        shared.pending.lock().unwrap().retain(|f| *f != fault);
    }
    shared.seen.lock().unwrap().push(Seen {
        at: shared.started.elapsed(),
        method: request.method.clone(),
        path: request.path.clone(),
        fault,
        head: String::from_utf8_lossy(&request.head).into_owned(),
    });
}

/// The test's own answer to the request, if one of its answer hooks gives
/// one: `answer_seeing` first, then `answer_sized`, then `answer`.
fn made_up_answer(hooks: &Hooks, request: &Request) -> Option<Reply> {
    let head = String::from_utf8_lossy(&request.head).into_owned();
    let incoming = Incoming {
        method: &request.method,
        path: &request.path,
        head: &head,
        body_len: request.body.len(),
        body: &request.body,
    };
    let seeing = hooks
        .answer_seeing
        .lock()
        .unwrap()
        .as_mut()
        .and_then(|answer| answer(&incoming));
    let sized = seeing.or_else(|| {
        hooks
            .answer_sized
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|answer| answer(&request.method, &request.path, request.body.len()))
    });
    sized.or_else(|| {
        hooks
            .answer
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|answer| answer(&request.method, &request.path))
    })
}

/// Writes the error a fault that replaces the registry answers with: 429
/// (with `Retry-After` if it has one) or its status, and a registry error body.
fn write_injected(client: &mut TcpStream, fault: Fault) -> io::Result<()> {
    let (status, retry_after) = match fault {
        Fault::TooManyRequests(after) => (429, after),
        Fault::Status(status) => (status, None),
        _ => unreachable!(),
    };
    let body = format!(
        r#"{{"errors":[{{"code":"{}","message":"injected by the test proxy"}}]}}"#,
        if status == 429 {
            "TOOMANYREQUESTS"
        } else {
            "UNAVAILABLE"
        }
    );
    let mut head = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(seconds) = retry_after {
        head.push_str(&format!("Retry-After: {seconds}\r\n"));
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes())?;
    client.write_all(body.as_bytes())
}

/// Sends the request to the registry and reads its whole answer, with the
/// `prefix` put into its links and the test's rewrite done to it.
fn forward(
    upstream: &str,
    request: &Request,
    prefix: Option<&str>,
    hooks: &Hooks,
) -> io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(&request.head)?;
    server.write_all(&request.body)?;
    let mut raw = Vec::new();
    server.read_to_end(&mut raw)?;
    if let Some(prefix) = prefix {
        raw = with_prefix_in_links(&raw, prefix);
    }
    if let Some(rewrite) = hooks.rewrite.lock().unwrap().as_mut() {
        rewrite(&request.method, &request.path, &mut raw);
    }
    Ok(raw)
}

/// Sends the registry's answer `raw` to the client with `fault` done to its
/// body (from `body_start`), then closes the connection (both its handles).
fn deliver(
    reader: BufReader<TcpStream>,
    mut client: TcpStream,
    mut raw: Vec<u8>,
    body_start: usize,
    fault: Option<Fault>,
) -> io::Result<()> {
    let half = body_start + (raw.len() - body_start) / 2;
    match fault {
        None | Some(Fault::TooManyRequests(_)) | Some(Fault::Status(_)) => {
            client.write_all(&raw)?
        }
        Some(Fault::FlipByte) => {
            let at = half.min(raw.len() - 1);
            raw[at] ^= 0x55;
            client.write_all(&raw)?;
        }
        Some(Fault::Truncate) => {
            client.write_all(&raw[..half])?;
        }
        Some(Fault::ResetMidBody) => {
            client.write_all(&raw[..half])?;
            reset(&client);
            drop(reader);
            return Ok(());
        }
        Some(Fault::Stall(pause)) => {
            client.write_all(&raw[..half])?;
            client.flush()?;
            thread::sleep(pause);
        }
    }
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

/// Makes closing `stream` send RST (SO_LINGER 0), as a dropped connection would.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
