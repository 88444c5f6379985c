//! A minimal Docker-style token server (`GET /token`) for bearer-auth registries.
//!
//! It speaks just enough HTTP/1.1 for registry clients: one request per
//! connection, answered with `Connection: close`. Tokens are RS256 JWTs whose
//! `x5c` header carries the signing certificate, which the registry trusts
//! through `auth.token.rootcertbundle`.
// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::json;

use super::certs;

/// The `iss` claim of every token; the registry is configured to trust it.
pub const ISSUER: &str = "hoist-test-issuer";

/// How long a token is valid, in seconds (`expires_in`).
pub const TOKEN_LIFETIME_SECS: u64 = 300;

/// A token server on `127.0.0.1:<free port>`, stopped when dropped.
///
/// With the right basic-auth credentials it grants every requested action;
/// with none it grants only `pull` on repositories (anonymous pull); with
/// wrong ones it answers 401.
pub struct TokenServer {
    addr: SocketAddr,
    state: Arc<State>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

struct State {
    user: String,
    password: String,
    service: String,
    signer: RsaKeyPair,
    x5c: String,
    rng: SystemRandom,
    requests: AtomicUsize,
    scopes_seen: Mutex<Vec<String>>,
    issued: Mutex<Vec<String>>,
}

impl TokenServer {
    /// Starts a token server issuing tokens for `service` (the JWT `aud`) to
    /// `user`/`password`.
    pub fn start(user: &str, password: &str, service: &str) -> TokenServer {
        let key = certs::token_signing_key();
        let signer = RsaKeyPair::from_pkcs8(&key.pkcs8_der)
            .expect("load the token signing key made by openssl");
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind the token server to 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("read the token server's address");
        let state = Arc::new(State {
            user: user.to_owned(),
            password: password.to_owned(),
            service: service.to_owned(),
            signer,
            x5c: STANDARD.encode(&key.cert_der),
            rng: SystemRandom::new(),
            requests: AtomicUsize::new(0),
            scopes_seen: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let state = Arc::clone(&state);
            let stopping = Arc::clone(&stopping);
            thread::Builder::new()
                .name("token-server".into())
                .spawn(move || accept_loop(&listener, &state, &stopping))
                .expect("start the token server thread")
        };
        TokenServer {
            addr,
            state,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    /// The realm to put in the registry's challenge: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The service name the registry announces and tokens are issued for.
    pub fn service(&self) -> &str {
        &self.state.service
    }

    /// The `iss` claim of the tokens.
    pub fn issuer(&self) -> &str {
        ISSUER
    }

    /// PEM of the certificate that verifies the tokens (`rootcertbundle`).
    pub fn root_cert_pem(&self) -> &'static str {
        &certs::token_signing_key().cert_pem
    }

    /// How many `/token` requests were answered, refused ones (401, 400) included.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Every token handed out, for tests that check none leaks.
    pub fn issued(&self) -> Vec<String> {
        self.state
            .issued
            .lock()
            .expect("token server token log poisoned")
            .clone()
    }

    /// Every scope asked for, in order, as sent (e.g. `repository:foo/bar:pull,push`).
    pub fn scopes_seen(&self) -> Vec<String> {
        self.state
            .scopes_seen
            .lock()
            .expect("token server scope log poisoned")
            .clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // accept() blocks; a connection of our own wakes it up to see the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>, stopping: &AtomicBool) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let state = Arc::clone(state);
        // One thread per connection, so an idle client cannot hold up others;
        // the read timeout bounds how long such a thread lives.
        let _ = thread::Builder::new()
            .name("token-conn".into())
            .spawn(move || serve_connection(stream, &state));
    }
}

/// A response: status code, extra headers, JSON body.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"errors": [{"code": code, "message": message}]}),
        )
    }
}

fn serve_connection(stream: TcpStream, state: &State) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(reader_half) = stream.try_clone() else {
        return;
    };
    // Bound what a misbehaving client can make us buffer.
    let mut reader = BufReader::new(reader_half.take(64 * 1024));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return; // e.g. the wake-up connection from Drop
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }

    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let reply = match (method, path) {
        ("GET", "/token") => {
            let authorization = headers
                .iter()
                .find(|(name, _)| name == "authorization")
                .map(|(_, value)| value.as_str());
            issue_token(state, query, authorization)
        }
        (_, "/token") => Reply::error(405, "UNSUPPORTED", "only GET /token is served"),
        _ => Reply::error(404, "NOT_FOUND", "only /token is served"),
    };
    write_reply(stream, &reply);
}

fn write_reply(mut stream: TcpStream, reply: &Reply) {
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
}

/// One requested or granted scope: `TYPE:NAME:ACTION,ACTION`.
struct Scope {
    kind: String,
    name: String,
    actions: Vec<String>,
}

impl Scope {
    /// Splits at the first and last `:`, so names may themselves hold colons.
    fn parse(text: &str) -> Option<Scope> {
        let (kind, rest) = text.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Scope {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// Answers `GET /token`: checks the service and the credentials, then issues
/// a signed token granting what the caller may have of the requested scopes.
fn issue_token(state: &State, query: &str, authorization: Option<&str>) -> Reply {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let params = parse_query(query);
    let requested = record_scopes(state, &params);

    if let Some((_, service)) = params.iter().find(|(name, _)| name == "service")
        && *service != state.service
    {
        return Reply::error(
            400,
            "INVALID_REQUEST",
            &format!("unknown service {service:?}, expected {:?}", state.service),
        );
    }

    let subject = match authenticate(state, authorization) {
        Ok(subject) => subject,
        Err(reply) => return reply,
    };
    let access = match granted_access(&requested, subject.is_none()) {
        Ok(access) => access,
        Err(reply) => return reply,
    };

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("system clock is after 1970")
        .as_secs();
    let token = sign_token(state, subject.as_deref().unwrap_or_default(), &access, now);
    state
        .issued
        .lock()
        .expect("token server token log poisoned")
        .push(token.clone());
    Reply::json(
        200,
        json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_LIFETIME_SECS,
            "issued_at": rfc3339(now),
        }),
    )
}

/// The scopes asked for, which are logged as seen.
fn record_scopes(state: &State, params: &[(String, String)]) -> Vec<String> {
    // Scopes may come as repeated `scope` params or space-separated in one.
    let requested: Vec<String> = params
        .iter()
        .filter(|(name, _)| name == "scope")
        .flat_map(|(_, value)| value.split_whitespace().map(str::to_owned))
        .collect();
    state
        .scopes_seen
        .lock()
        .expect("token server scope log poisoned")
        .extend(requested.iter().cloned());
    requested
}

/// The user the `Authorization` header proves, `None` when anonymous; a 401
/// for wrong credentials.
fn authenticate(state: &State, authorization: Option<&str>) -> Result<Option<String>, Reply> {
    match authorization.map(parse_basic_auth) {
        None => Ok(None),
        Some(Some((user, password))) if user == state.user && password == state.password => {
            Ok(Some(user))
        }
        Some(_) => {
            let mut reply = Reply::error(401, "UNAUTHORIZED", "wrong username or password");
            reply.headers.push((
                "WWW-Authenticate",
                "Basic realm=\"hoist-test-token\"".to_owned(),
            ));
            Err(reply)
        }
    }
}

/// The token's `access` claim for the `requested` scopes: all of them, or
/// only repository pulls when `anonymous`; a 400 for a malformed scope.
fn granted_access(requested: &[String], anonymous: bool) -> Result<Vec<serde_json::Value>, Reply> {
    let mut access = Vec::new();
    for text in requested {
        let Some(mut scope) = Scope::parse(text) else {
            return Err(Reply::error(
                400,
                "INVALID_REQUEST",
                &format!("malformed scope {text:?}"),
            ));
        };
        if anonymous {
            // Anonymous callers may only pull repositories.
            if scope.kind == "repository" {
                scope.actions.retain(|a| a == "pull");
            } else {
                scope.actions.clear();
            }
        }
        if !scope.actions.is_empty() {
            access.push(json!({
                "type": scope.kind,
                "name": scope.name,
                "actions": scope.actions,
            }));
        }
    }
    Ok(access)
}

/// An RS256 JWT for `subject` with `access`, issued at `now` (Unix seconds)
/// and carrying the signing certificate in `x5c`.
fn sign_token(state: &State, subject: &str, access: &[serde_json::Value], now: u64) -> String {
    let mut jti = [0u8; 16];
    state.rng.fill(&mut jti).expect("system randomness");
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [state.x5c]});
    let claims = json!({
        "iss": ISSUER,
        "sub": subject,
        // A plain string: Distribution 2.8 does not accept an array here.
        "aud": state.service,
        "exp": now + TOKEN_LIFETIME_SECS,
        "nbf": now.saturating_sub(5),
        "iat": now,
        "jti": hex(&jti),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; state.signer.public().modulus_len()];
    state
        .signer
        .sign(
            &RSA_PKCS1_SHA256,
            &state.rng,
            signing_input.as_bytes(),
            &mut signature,
        )
        .expect("sign the token");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&signature))
}

/// `Basic base64(user:password)` → `(user, password)`; `None` when malformed.
fn parse_basic_auth(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Decodes an `application/x-www-form-urlencoded` query string.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex_value(*high).zip(hex_value(*low)),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some((high, low)), _) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(unix_secs: u64) -> String {
    hoist::record::rfc3339(unix_secs)
}
