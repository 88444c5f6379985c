//! The benchmark's WAN proxy (`hoist-wan`) in front of a real registry: a
//! request on an open connection takes one round trip, and transfers in
//! parallel share one link of the given rate instead of each getting it.

use std::time::{Duration, Instant};

use crate::support::TestRegistry;
use crate::support::openssl_tls::OpensslTls;
use crate::support::seed;
use crate::support::wan::WanProxy;

const RTT_MS: u32 = 20;
const MBIT: u32 = 80;
const LAYER: u64 = 256 * 1024;
const PARALLEL: usize = 4;

fn agent() -> ureq::Agent {
    crate::support::registry::http_agent_trusting(None, Duration::from_secs(30))
}

/// Milliseconds `GET url` takes, the body read.
fn timed_get(agent: &ureq::Agent, url: &str) -> (f64, usize) {
    let start = Instant::now();
    let mut response = agent.get(url).call().expect("GET through hoist-wan");
    assert_eq!(response.status().as_u16(), 200, "{url}");
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .expect("read the body");
    (start.elapsed().as_secs_f64() * 1000.0, body.len())
}

#[test]
fn a_request_takes_a_round_trip_and_parallel_transfers_share_the_link() {
    let registry = TestRegistry::start();
    let spec = seed::ImageSpec {
        format: seed::Format::Oci,
        layers: seed::layers("wan", PARALLEL, 0, LAYER),
        platforms: Vec::new(),
        label: "wan".into(),
    };
    let manifest = seed::push(seed::client(&registry).as_ref(), "wan/app", "1.0.0", &spec);
    let parsed: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let layers: Vec<String> = parsed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers.len(), PARALLEL);

    let proxy = WanProxy::start(registry.host(), RTT_MS, MBIT);
    let base = format!("http://{}", proxy.host());
    let rtt = f64::from(RTT_MS);

    // A new connection: the TCP handshake, then the request: two round trips.
    let one = agent();
    let (first, _) = timed_get(&one, &format!("{base}/v2/"));
    assert!(
        first >= 2.0 * rtt,
        "first request {first:.1} ms < 2 × {rtt} ms"
    );
    // On the open connection, one round trip (the best of a few: the
    // machine is shared).
    let again: Vec<f64> = (0..5)
        .map(|_| timed_get(&one, &format!("{base}/v2/")).0)
        .collect();
    let best = again.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        again.iter().all(|&ms| ms >= rtt),
        "a request took less than the round trip: {again:?}"
    );
    assert!(
        best < rtt + 15.0,
        "best request {best:.1} ms, round trip {rtt} ms: {again:?}"
    );

    // PARALLEL blobs at once, each on its own connection: together they
    // need the bytes ÷ the one link's rate, not ÷ PARALLEL links.
    let link_ms = (PARALLEL as f64 * LAYER as f64 * 8.0) / (f64::from(MBIT) * 1e6) * 1000.0;
    let start = Instant::now();
    let threads: Vec<_> = layers
        .iter()
        .map(|digest| {
            let url = format!("{base}/v2/wan/app/blobs/{digest}");
            std::thread::spawn(move || timed_get(&agent(), &url))
        })
        .collect();
    let sizes: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap().1).collect();
    let together = start.elapsed().as_secs_f64() * 1000.0;
    assert!(sizes.iter().all(|&n| n as u64 == LAYER), "{sizes:?}");
    // Never faster than the link; close to it (+ handshake, request and
    // the registry's own time, generously).
    assert!(
        together >= link_ms,
        "{together:.1} ms < the link's {link_ms:.1} ms"
    );
    assert!(
        together < link_ms * 1.5 + 3.0 * rtt + 50.0,
        "{together:.1} ms for {link_ms:.1} ms of link time: the link is not filled"
    );

    let stats = proxy.stop();
    eprintln!(
        "first request {first:.1} ms, then {again:?} ms; {PARALLEL} blobs in \
         {together:.1} ms for {link_ms:.1} ms of link time; {stats}"
    );
    let down = stats["down"]["bytes"].as_u64().unwrap();
    assert!(down >= PARALLEL as u64 * LAYER, "{stats}");
    assert!(stats["up"]["bytes"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(
        stats["connections"]["total"],
        1 + PARALLEL as u64,
        "{stats}"
    );
    assert!(stats["waiting"]["peak"].as_i64().unwrap() >= 2, "{stats}");
    assert_eq!(stats["rtt_ms"], 20.0, "{stats}");
}

/// A registry whose first answer shows it is far (the handshakes and the
/// ping take 3 round trips of 40 ms) gets more reads at once from the start
/// than a near one's 16: planning 4 repositories × 10 tags into an empty
/// target wants 40 manifest GETs at once once the tags are listed.
#[test]
fn a_far_registry_gets_more_reads_at_once_from_the_start() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    for repository in ["far/a", "far/b", "far/c", "far/d"] {
        for minor in 0..10 {
            let tag = format!("1.{minor}.0");
            let label = format!("{repository}:{tag}");
            let image = seed::small_image(&label, seed::Format::Oci);
            seed::push(client.as_ref(), repository, &tag, &image);
        }
    }
    let proxy = WanProxy::start(staging.host(), 40, 1000);
    let config = crate::apply::config_at(
        &[("staging", proxy.host()), ("prod", prod.host())],
        "[[promotion]]\nname = \"far\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"far/*\"]\n",
    );
    crate::support::Hoist::new()
        .config(&config)
        .args(["plan"])
        .run()
        .success();
    let stats = proxy.stop();
    let peak = stats["waiting"]["peak"].as_i64().unwrap();
    assert!(peak > 16, "at most {peak} requests at once: {stats}");
    assert!(peak <= 64, "the cheap requests' ceiling holds: {stats}");
}

/// 8 repositories `ahead/app-N` of two tags each in `staging`.
fn seed_sixteen_tags(staging: &TestRegistry) {
    let client = seed::client(staging);
    for index in 0..8 {
        let repository = format!("ahead/app-{index}");
        for tag in ["1.0.0", "1.1.0"] {
            let image = seed::small_image(&format!("{repository}:{tag}"), seed::Format::Oci);
            seed::push(client.as_ref(), &repository, tag, &image);
        }
    }
}

/// `hoist plan` of the 16 tags through `proxy`, with `env`; the proxy's
/// counters, after checking that the connections opened ahead were all
/// the plan opened: 48 (the ping's and 47 more); were they not used, the
/// requests would open about 16 more of their own.
fn plan_sixteen_tags(proxy: WanProxy, config: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let run = crate::support::Hoist::new()
        .config(config)
        .envs(env)
        .args(["plan"])
        .run()
        .success();
    let stats = proxy.stop();
    assert!(
        run.stderr.contains("planned 16 target tags"),
        "{}",
        run.stderr
    );
    let opened = stats["connections"]["total"].as_i64().unwrap();
    assert!(opened >= 24, "only {opened} connections opened: {stats}");
    assert!(
        opened <= 56,
        "requests opened their own beside those opened ahead: {stats}"
    );
    stats
}

/// A far registry's connections are opened while its catalog is listed,
/// as many as it takes requests at once to start with (48), so the first
/// wave of tag lists does not wait for handshakes; the requests then use
/// those instead of opening more.
#[test]
fn a_far_registry_has_its_connections_opened_while_the_catalog_is_listed() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    seed_sixteen_tags(&staging);
    let proxy = WanProxy::start(staging.host(), 40, 1000);
    let config = crate::apply::config_at(
        &[("staging", proxy.host()), ("prod", prod.host())],
        "[[promotion]]\nname = \"ahead\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"ahead/*\"]\n",
    );
    // 8 tag lists at once, then 16 manifest reads: without connections
    // opened ahead, about 16 are opened, each by the request that needs it.
    let stats = plan_sixteen_tags(proxy, &config, &[]);
    let used = stats["used"]["total"].as_i64().unwrap();
    assert!(
        used >= 8,
        "the connections opened ahead carried no request: {stats}"
    );
}

/// Behind a TLS 1.3 server that sends its session tickets after the
/// handshake (OpenSSL's way, as nginx or HAProxy in front of a registry
/// do), the connections opened ahead are used too: a fresh TLS connection
/// is not asked whether it is open, which the unread ticket would answer
/// "no", throwing every one away and opening as many again.
#[test]
fn connections_opened_ahead_are_used_behind_an_openssl_tls_terminator() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    seed_sixteen_tags(&staging);
    let port = staging
        .host()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok());
    let tls = OpensslTls::start(port.expect("the registry's port"));
    let proxy = WanProxy::start(tls.host(), 40, 1000);
    let config = format!(
        "[registries.staging]\nurl = \"https://{}\"\nca_file = \"{}\"\n\n\
         [registries.prod]\nurl = \"{}\"\n\n\
         [[promotion]]\nname = \"ahead\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"ahead/*\"]\n",
        proxy.host(),
        tls.ca_file.display(),
        prod.host()
    );
    // A catalog of 4 pages: the first wave comes after the tickets did.
    plan_sixteen_tags(proxy, &config, &[("HOIST_PAGE_SIZE", "2")]);
}

/// Repositories that share a base layer do not wait for one another: once
/// the layer is in the first of them it is mounted into the others side by
/// side, and each image's tag follows its own repository's mount. One
/// repository after another, 40 repositories 100 ms away took 40 round
/// trips (4 s) more, every image waiting for the last mount.
#[test]
fn a_shared_base_layer_is_mounted_into_many_repositories_at_once() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    crate::apply::seed_sharing(&staging, "base/app-", (40, 2), (2, 1, 2000));
    let proxy = WanProxy::start(prod.host(), 100, 0);
    let config = crate::apply::config_at(
        &[("staging", staging.host()), ("prod", proxy.host())],
        "[[promotion]]\nname = \"base\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"base/*\"]\n",
    );
    let started = Instant::now();
    let run = crate::support::Hoist::new()
        .config(&config)
        .args(["apply", "--report", "report.json"])
        .run()
        .success();
    let total = started.elapsed().as_secs_f64();
    proxy.stop();
    let report = run.json_file("report.json");
    assert_eq!(report["summary"]["promoted"], 40, "{report:#}");
    assert_eq!(report["summary"]["blobs_mounted"], 39, "{report:#}");
    let planning: f64 = run
        .stderr
        .split("planned 40 target tags from 1 rules in ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("no planning time in: {}", run.stderr));
    // Side by side: the landing (the upload's POST, a mount from the new
    // repository itself, and PUT), one mount that shows the registry
    // mounts, then 38 at once (within the 48 a far registry starts at) and
    // the tag: about 8 round trips.
    let copying = total - planning;
    assert!(
        copying < 2.5,
        "the copy took {copying:.2}s after {planning:.2}s of planning: mounts waited \
         for one another\n{}",
        run.stderr
    );
}
