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
/// a registry or a load balancer may have dropped it meanwhile. (A TLS
/// connection cannot be asked whether it is still open: a server may send
/// its session tickets after the handshake, and ureq's check takes any
/// unread byte for a closed connection.)
const FRESH: Duration = Duration::from_secs(3);

/// How long a request waits for a connection being opened for it before
/// it opens its own (which would take longer, unless that one is stuck).
/// Once a request waited that long, none waits for that host again.
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
    /// A request waited [`WAIT`] in vain: an opening is stuck.
    stalled: bool,
}

impl Host {
    /// Closes the connections that waited too long for a request.
    fn drop_stale(&mut self) {
        self.ready.retain(|(opened, _)| opened.elapsed() < FRESH);
    }
}

impl Warm {
    /// Opens connections to the host of `base_url` in the background, for
    /// the agent configured by `config`, until `count` are open or being
    /// opened (two registries on one host share them). Nothing is opened
    /// through a proxy: the proxy decides how it reaches the registry.
    pub fn open(self: &Arc<Self>, config: &Config, base_url: &str, count: usize) {
        if config.proxy().is_some() {
            return;
        }
        let Ok(uri) = base_url.parse::<ureq::http::Uri>() else {
            return;
        };
        let host = key(&uri);
        let missing = {
            let mut hosts = self.hosts();
            let entry = hosts.entry(host.clone()).or_default();
            entry.drop_stale();
            let missing = count.saturating_sub(entry.opening + entry.ready.len());
            entry.opening += missing;
            missing
        };
        for _ in 0..missing {
            let (warm, config, uri) = (Arc::clone(self), config.clone(), uri.clone());
            // A connection that cannot be opened is no error: the request
            // that needs it opens its own and reports what goes wrong.
            let spawned = std::thread::Builder::new()
                .name("hoist-connect".into())
                .spawn(move || {
                    let opened = warm.connect(&config, &uri).ok();
                    warm.opened(key(&uri), opened);
                });
            if spawned.is_err() {
                self.opened(host.clone(), None);
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
        host.drop_stale();
        host.ready.extend(transport.map(|t| (Instant::now(), t)));
        self.changed.notify_all();
    }

    /// An opened connection to `uri`'s host that is still fresh. When none
    /// is ready but one is being opened that no other request waits for,
    /// waits for it: it was started before this request, so it is ready
    /// sooner than a new one would be. A request that comes along does not
    /// take a connection a waiting request was woken for.
    fn take(&self, uri: &ureq::http::Uri) -> Option<Box<dyn Transport>> {
        let key = key(uri);
        let deadline = Instant::now() + WAIT;
        let mut hosts = self.hosts();
        let mut waited = false;
        loop {
            let host = hosts.get_mut(&key)?;
            host.drop_stale();
            let others = if std::mem::take(&mut waited) {
                host.waiting -= 1;
                0
            } else {
                host.waiting
            };
            if host.ready.len() > others {
                let (_, mut transport) = host.ready.pop()?;
                // A plain connection can say whether the server closed it.
                if transport.is_tls() || transport.is_open() {
                    return Some(transport);
                }
                continue;
            }
            if Instant::now() >= deadline {
                host.stalled = true;
            }
            if host.stalled || host.opening <= host.waiting {
                return None;
            }
            host.waiting += 1;
            waited = true;
            let left = deadline.saturating_duration_since(Instant::now());
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
        // A request with its own settings gets its own connection, as
        // ureq's pool does.
        if !details.request_level
            && let Some(transport) = self.0.take(details.uri)
        {
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

#[cfg(test)]
mod tests {
    use std::thread;

    use ureq::unversioned::transport::{Buffers, LazyBuffers};

    use super::*;

    /// A connection that is open and never used.
    #[derive(Debug)]
    struct Idle(LazyBuffers);

    impl Transport for Idle {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.0
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    fn idle() -> Box<dyn Transport> {
        Box::new(Idle(LazyBuffers::new(1024, 1024)))
    }

    fn uri() -> ureq::http::Uri {
        "http://registry.test:5000/v2/".parse().expect("a URI")
    }

    #[test]
    fn a_request_waits_for_a_connection_being_opened_but_never_for_a_stuck_one() {
        let warm = Arc::new(Warm::default());
        let host = key(&uri());
        // Nothing being opened: no wait.
        assert!(warm.take(&uri()).is_none());

        // One being opened: the request waits for it, and gets it once opened.
        warm.hosts().entry(host.clone()).or_default().opening = 1;
        let (taken, took) = std::sync::mpsc::channel();
        let taker = {
            let warm = warm.clone();
            thread::spawn(move || taken.send(warm.take(&uri()).is_some()))
        };
        assert!(
            took.recv_timeout(WAIT / 4).is_err(),
            "a request returned before the connection being opened was"
        );
        warm.opened(host.clone(), Some(idle()));
        assert_eq!(took.recv_timeout(WAIT), Ok(true), "the one being opened");
        taker.join().expect("the taker").expect("sent");

        // One that never opens is waited for once, then never again.
        warm.hosts().entry(host.clone()).or_default().opening = 1;
        let asked = Instant::now();
        assert!(warm.take(&uri()).is_none());
        assert!(asked.elapsed() >= WAIT);
        let asked = Instant::now();
        assert!(warm.take(&uri()).is_none());
        assert!(asked.elapsed() < Duration::from_millis(100));

        // A connection opened too long ago is not handed out.
        let long_ago = Instant::now() - FRESH - Duration::from_millis(1);
        let mut hosts = warm.hosts();
        hosts
            .entry(host)
            .or_default()
            .ready
            .push((long_ago, idle()));
        drop(hosts);
        assert!(warm.take(&uri()).is_none());
    }
}
