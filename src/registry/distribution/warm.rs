//! Connections opened ahead of the requests that will use them. A far
//! registry's first wave of requests (the tag lists, right after the
//! catalog) would otherwise each open a connection: a TCP and a TLS
//! handshake, two round trips, before the request's own. Opened while the
//! catalog is listed, they are ready when the wave starts.
//!
//! This uses ureq's `unversioned` transport API (outside its semver
//! promise): the agent's connector hands out an opened connection when one
//! is waiting for the request's host, and otherwise connects as ureq does.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::unversioned::resolver::{DefaultResolver, Resolver};
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport, time,
};

/// An opened connection older than this is closed rather than handed out:
/// a registry or a load balancer may have dropped it meanwhile.
const FRESH: Duration = Duration::from_secs(5);

/// How long a request waits for a connection being opened for it before
/// it opens its own (which would take longer, unless that one is stuck).
const WAIT: Duration = Duration::from_secs(1);

/// Opened connections waiting for a request, by scheme and authority.
#[derive(Debug, Default)]
pub struct Warm {
    connector: DefaultConnector,
    resolver: DefaultResolver,
    hosts: Mutex<HashMap<String, Host>>,
    /// Signalled when a connection is ready or failed.
    changed: Condvar,
}

/// The connections of one host: opened and waiting for a request, being
/// opened, and the requests waiting for one of those.
#[derive(Debug, Default)]
struct Host {
    ready: Vec<(Instant, Box<dyn Transport>)>,
    opening: usize,
    waiting: usize,
}

impl Warm {
    /// Opens `count` connections to the host of `base_url` in the
    /// background, for the agent configured by `config`. Nothing is opened
    /// through a proxy: the proxy decides how it reaches the registry.
    pub fn open(self: &Arc<Self>, config: &Config, base_url: &str, count: usize) {
        if config.proxy().is_some() {
            return;
        }
        let Ok(uri) = base_url.parse::<ureq::http::Uri>() else {
            return;
        };
        let host = key(&uri);
        for _ in 0..count {
            let (warm, config, uri) = (Arc::clone(self), config.clone(), uri.clone());
            self.hosts().entry(host.clone()).or_default().opening += 1;
            // A connection that cannot be opened is no error: the request
            // that needs it opens its own and reports what goes wrong.
            let spawned = std::thread::Builder::new()
                .name("hoist-connect".into())
                .spawn(move || {
                    let opened = warm.connect(&config, &uri).ok();
                    warm.opened(key(&uri), opened);
                });
            if spawned.is_err() {
                self.opened(host, None);
                return;
            }
        }
    }

    fn hosts(&self) -> MutexGuard<'_, HashMap<String, Host>> {
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One connection to `uri`'s host, as the agent would open it.
    fn connect(
        &self,
        config: &Config,
        uri: &ureq::http::Uri,
    ) -> Result<Box<dyn Transport>, ureq::Error> {
        let timeout = NextTimeout {
            after: config
                .timeouts()
                .connect
                .unwrap_or(Duration::from_secs(30))
                .into(),
            reason: ureq::Timeout::Connect,
            per_read: None,
            per_write: None,
        };
        let addrs = self.resolver.resolve(uri, config, timeout)?;
        let details = ConnectionDetails {
            uri,
            addrs,
            config,
            request_level: false,
            resolver: &self.resolver,
            now: time::Instant::now(),
            timeout,
            current_time: Arc::new(time::Instant::now),
            // Only a CONNECT proxy runs the chain again, and none is used.
            run_connector: Arc::new(|_: &ConnectionDetails| Err(ureq::Error::ConnectionFailed)),
            // The agent is never shut down from another thread.
            register_shutdown: Arc::new(|_| Ok(())),
        };
        self.connector
            .connect(&details, None)?
            .ok_or(ureq::Error::ConnectionFailed)
    }

    /// A connection being opened is ready (or failed to open).
    fn opened(&self, key: String, transport: Option<Box<dyn Transport>>) {
        let mut hosts = self.hosts();
        let host = hosts.entry(key).or_default();
        host.opening = host.opening.saturating_sub(1);
        host.ready.extend(transport.map(|t| (Instant::now(), t)));
        self.changed.notify_all();
    }

    /// An opened connection to `uri`'s host that is still fresh and open.
    /// When none is ready but one is being opened that no other request
    /// waits for, waits for it: it was started before this request, so it
    /// is ready sooner than a new one would be.
    fn take(&self, uri: &ureq::http::Uri) -> Option<Box<dyn Transport>> {
        let key = key(uri);
        let deadline = Instant::now() + WAIT;
        let mut hosts = self.hosts();
        let mut waited = false;
        loop {
            let host = hosts.get_mut(&key)?;
            if std::mem::take(&mut waited) {
                host.waiting -= 1;
            }
            while let Some((opened, mut transport)) = host.ready.pop() {
                if opened.elapsed() < FRESH && transport.is_open() {
                    return Some(transport);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if host.opening <= host.waiting || left.is_zero() {
                return None;
            }
            host.waiting += 1;
            waited = true;
            hosts = self
                .changed
                .wait_timeout(hosts, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The connector of an agent with a [`Warm`]: an opened connection when one
/// waits for the host, else a new one.
#[derive(Debug)]
pub struct WarmConnector(pub Arc<Warm>);

impl Connector<()> for WarmConnector {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(transport) = self.0.take(details.uri) {
            return Ok(Some(transport));
        }
        self.0.connector.connect(details, chained)
    }
}

/// Connections are shared by scheme and authority, as ureq's pool does.
fn key(uri: &ureq::http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or_default(),
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    )
}
