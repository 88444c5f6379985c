//! `hoist apply` through a fault-injecting proxy in front of real registries:
//! 429s with and without `Retry-After`, 5xx answers, connections reset or
//! closed mid-body, stalled reads and flipped bytes. The end state must be a
//! clean run's, and a corrupted blob must never land under its digest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::apply::{
    CORPUS_RULE, apply, assert_all_tags_complete, config, config_at, seed_corpus,
    slow_apply_under_way, state,
};
use crate::support::fault_proxy::{Fault, FaultProxy, Reply, Schedule, mix};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};
use hoist::manifest::Manifest;

/// Retries enough to outlast the schedule, quick backoff, a short idle
/// timeout so a stalled read is noticed in a second.
const PATIENT: &str = "[settings]\nretries = 10\ntimeout_secs = 1\n\n";

fn every_fault(seed: u64, rate: f64) -> Schedule {
    Schedule {
        seed,
        rate,
        faults: vec![
            Fault::TooManyRequests(Some(1)),
            Fault::TooManyRequests(None),
            Fault::Status(500),
            Fault::Status(502),
            Fault::Status(503),
            Fault::ResetMidBody,
            Fault::Truncate,
            Fault::Stall(Duration::from_secs(3)),
        ],
        path_contains: String::new(),
    }
}

fn through(proxy_staging: &FaultProxy, proxy_prod: &FaultProxy) -> String {
    config_at(
        &[
            ("staging", &proxy_staging.host()),
            ("prod", &proxy_prod.host()),
        ],
        &format!("{PATIENT}{CORPUS_RULE}"),
    )
}

/// `corpus/r00:1.0.0` in `staging`: three layers of 30,000 bytes, one shared.
fn one_image(staging: &TestRegistry) -> Manifest {
    let spec = crate::apply::image_with_base("corpus/r00:0", 3, 1, 30_000);
    seed::push(seed::client(staging).as_ref(), "corpus/r00", "1.0.0", &spec)
}

/// What the corpus rule makes of `one_image`: its version, `1` and `latest`.
fn one_image_promoted(manifest: &Manifest) -> BTreeMap<String, String> {
    ["1.0.0", "1", "latest"]
        .into_iter()
        .map(|tag| (format!("corpus/r00:{tag}"), manifest.digest.to_string()))
        .collect()
}

#[test]
fn apply_through_injected_faults_ends_like_a_clean_run() {
    let staging = TestRegistry::start();
    let reference = TestRegistry::start();
    seed_corpus(&staging, 6, 2, 40_000);
    apply(
        &config(&[("staging", &staging), ("prod", &reference)], CORPUS_RULE),
        &[],
    );

    let mut checked = 0;
    let mut kinds = Vec::new();
    for round in 0..2u64 {
        let target = TestRegistry::start();
        // Round 0: any fault on any request (each kind at least once);
        // round 1: broken bodies on the GETs (manifests, tag lists, blobs),
        // more often.
        let schedule = |seed: u64| match round {
            0 => every_fault(seed, 0.15),
            _ => Schedule {
                faults: vec![
                    Fault::ResetMidBody,
                    Fault::Truncate,
                    Fault::Stall(Duration::from_secs(3)),
                ],
                ..every_fault(seed, 0.3)
            },
        };
        let source_proxy = FaultProxy::start(staging.host(), schedule(11));
        let target_proxy = FaultProxy::start(target.host(), schedule(23));
        let run = Hoist::new()
            .config(&through(&source_proxy, &target_proxy))
            .env("HOIST_RETRY_BASE_MS", "10")
            .args(["apply", "--report", "report.json"])
            .run();
        let injected: Vec<_> = source_proxy
            .seen()
            .into_iter()
            .chain(target_proxy.seen())
            .filter_map(|s| s.fault)
            .collect();
        assert!(
            injected.len() >= 10,
            "round {round}: the schedule injected only {injected:?}"
        );
        kinds.extend(injected);
        let run = run.success();
        let report = run.json_file("report.json");
        assert_eq!(report["summary"]["failed"], 0, "{report:#}");
        assert_eq!(state(&target), state(&reference), "round {round}");
        assert_all_tags_complete(&target);

        // Every retry after a `Retry-After: 1` came at least a second later.
        // Upload starts all share one path per repository, so a POST from
        // another thread, sent before the 429 arrived, proves nothing: only
        // requests whose path names what they ask for are matched.
        for proxy in [&source_proxy, &target_proxy] {
            let seen = proxy.seen();
            for (i, told) in seen.iter().enumerate() {
                if told.fault != Some(Fault::TooManyRequests(Some(1)))
                    || told.path.contains("/blobs/uploads/")
                {
                    continue;
                }
                if let Some(retry) = seen[i + 1..]
                    .iter()
                    .find(|s| s.method == told.method && s.path == told.path)
                {
                    checked += 1;
                    assert!(
                        retry.at >= told.at + Duration::from_millis(950),
                        "{} {} retried {:?} after a Retry-After of 1 s",
                        told.method,
                        told.path,
                        retry.at - told.at
                    );
                }
            }
        }
    }
    assert!(checked > 0, "no retry after a Retry-After was seen");
    for fault in every_fault(0, 0.0).faults {
        assert!(
            kinds.contains(&fault),
            "{fault:?} was never injected: {kinds:?}"
        );
    }
}

#[test]
fn flipped_blob_bytes_never_land_and_a_clean_rerun_completes() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let manifest = one_image(&staging);
    let view = manifest.view().expect("a manifest");
    let victim = view
        .blobs
        .iter()
        .find(|b| b.size == 30_000)
        .expect("a layer")
        .digest
        .to_string();

    // Every GET of one layer comes back with a byte flipped.
    let proxy = FaultProxy::start(
        staging.host(),
        Schedule {
            seed: 5,
            rate: 1.0,
            faults: vec![Fault::FlipByte],
            path_contains: victim.clone(),
        },
    );
    let rules = config_at(
        &[("staging", &proxy.host()), ("prod", prod.host())],
        &format!("[settings]\nretries = 2\n\n{CORPUS_RULE}"),
    );
    let failed = Hoist::new()
        .config(&rules)
        .env("HOIST_RETRY_BASE_MS", "10")
        .args(["apply", "--report", "report.json"])
        .run()
        .code(1);
    let report = failed.json_file("report.json");
    assert!(
        report["summary"]["failed"].as_u64().unwrap() >= 1,
        "{report:#}"
    );
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.fault == Some(Fault::FlipByte)),
        "the proxy flipped a byte"
    );
    assert!(
        state(&prod).is_empty(),
        "no tag on an image with a corrupt blob"
    );
    let data = prod.blob_data_path(&victim);
    if data.exists() {
        let bytes = std::fs::read(&data).unwrap();
        assert_eq!(
            hoist::digest::Digest::sha256_of(&bytes).to_string(),
            victim,
            "corrupted bytes landed under the blob's digest"
        );
    }

    // The network is clean again: the same command completes the image.
    proxy.set_schedule(Schedule::none());
    Hoist::new().config(&rules).args(["apply"]).run().success();
    assert_eq!(state(&prod), one_image_promoted(&manifest));
    assert_all_tags_complete(&prod);
}

#[test]
fn blobs_lost_before_the_manifest_put_are_copied_again() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let manifest = one_image(&staging);
    let view = manifest.view().expect("a manifest");
    let blobs: Vec<_> = view
        .blobs
        .iter()
        .map(|b| prod.blob_data_path(&b.digest.to_string()))
        .collect();

    // Between the blob uploads and the first manifest PUT, the target loses
    // every blob (a garbage collection, a wiped volume).
    let proxy = FaultProxy::start(prod.host(), Schedule::none());
    let mut fired = false;
    proxy.on_request(move |method, path| {
        if method == "PUT" && path.contains("/manifests/") && !fired {
            fired = true;
            for data in &blobs {
                std::fs::remove_file(data).expect("the blob was uploaded");
            }
        }
    });
    let rules = config_at(
        &[("staging", staging.host()), ("prod", &proxy.host())],
        CORPUS_RULE,
    );
    let run = Hoist::new().config(&rules).args(["apply"]).run().success();
    assert!(
        run.stderr.contains("lacks part of the image"),
        "{}",
        run.stderr
    );
    assert_eq!(state(&prod), one_image_promoted(&manifest));
    assert_all_tags_complete(&prod);
}

#[test]
fn a_target_wiped_between_runs_is_filled_again() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    seed_corpus(&staging, 3, 2, 10_000);
    let rules = config(&[("staging", &staging), ("prod", &prod)], CORPUS_RULE);
    apply(&rules, &[]);
    let complete = state(&prod);
    assert_eq!(complete.len(), 3 * 4, "2 versions, `1` and `latest` each");

    // The volume is lost; the registry keeps running on an empty one.
    std::fs::remove_dir_all(prod.storage_dir().join("docker")).expect("wipe the storage");
    assert!(state(&prod).is_empty());

    let report = apply(&rules, &[]);
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert_eq!(state(&prod), complete);
    assert_all_tags_complete(&prod);
    Hoist::new().config(&rules).args(["verify"]).run().success();
}

/// `hoist verify` of the corpus in `target`: the tags it reports, each
/// only as missing. Any other problem (a tag at an incomplete image, a
/// wrong digest) fails the test.
fn verify_finds_only_missing_tags(staging: &TestRegistry, target: &TestRegistry) -> usize {
    let run = Hoist::new()
        .config(&config(
            &[("staging", staging), ("prod", target)],
            CORPUS_RULE,
        ))
        .args(["verify"])
        .run();
    let problems: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("prod/"))
        .collect();
    assert_eq!(run.code, i32::from(!problems.is_empty()), "{}", run.stdout);
    for line in &problems {
        assert!(line.ends_with(": missing"), "{}", run.stdout);
    }
    problems.len()
}

#[test]
fn kills_at_seeded_moments_leave_only_complete_images_and_a_rerun_converges() {
    let staging = TestRegistry::start();
    let reference = TestRegistry::start();
    seed_corpus(&staging, 12, 3, 40_000);
    // Indexes too, so a kill can fall between the children and their index.
    let client = seed::client(&staging);
    for name in ["corpus/multi-a", "corpus/multi-b"] {
        let spec = seed::multi_platform_image(name, Format::Oci);
        seed::push(client.as_ref(), name, "2.0.0", &spec);
    }
    let through = |proxy: &FaultProxy| {
        config_at(
            &[("staging", staging.host()), ("prod", &proxy.host())],
            CORPUS_RULE,
        )
    };
    // An uninterrupted run, counted: how many requests the target gets.
    let counting = FaultProxy::start(reference.host(), Schedule::none());
    apply(&through(&counting), &[]);
    let seen = counting.seen();
    let is_manifest_put =
        |method: &str, path: &str| method == "PUT" && path.contains("/manifests/");
    let first_put = 1 + seen
        .iter()
        .position(|s| is_manifest_put(&s.method, &s.path))
        .expect("a manifest PUT") as u64;
    let puts = seen
        .iter()
        .filter(|s| is_manifest_put(&s.method, &s.path))
        .count() as u64;
    let all = state(&reference).len();

    // Each seed kills the same apply, into a fresh target, as the target is
    // about to receive a seeded request: three before any manifest is written
    // (planning, blob copies), two among the manifest and tag writes (past
    // the 4 child manifests, before the last floating tag).
    let mut missing = Vec::new();
    let moments = [3u64, 17, 29]
        .map(|seed| (seed, Moment::Request(1 + mix(seed) % first_put)))
        .into_iter()
        .chain([41u64, 53].map(|seed| (seed, Moment::ManifestPut(6 + mix(seed) % (puts - 6)))));
    for (seed, moment) in moments {
        let killed = TestRegistry::start();
        let proxy = FaultProxy::start(killed.host(), Schedule::none());
        let pid = Arc::new(AtomicU32::new(0));
        let (mut requests, mut manifest_puts) = (0, 0);
        // Once hoist is killed, requests it sent that had not reached the
        // registry yet never do: the kill came before they left.
        let dead = Arc::new(AtomicBool::new(false));
        let hoist_pid = pid.clone();
        let killing = dead.clone();
        proxy.on_request(move |method, path| {
            let put = is_manifest_put(method, path);
            requests += 1;
            manifest_puts += u64::from(put);
            let now = match moment {
                // The k-th request, or the first manifest PUT if sooner.
                Moment::Request(k) => requests == k || (put && manifest_puts == 1),
                Moment::ManifestPut(k) => put && manifest_puts == k,
            };
            if now && !killing.swap(true, Ordering::SeqCst) {
                let pid = loop {
                    match hoist_pid.load(Ordering::SeqCst) {
                        0 => std::thread::yield_now(),
                        pid => break pid,
                    }
                };
                // SAFETY: sends a signal to the child this test spawned.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        });
        proxy.answer(move |_, _| dead.load(Ordering::SeqCst).then(|| Reply::status(503)));
        let mut run = Hoist::new()
            .config(&through(&proxy))
            .args(["apply"])
            .spawn();
        pid.store(run.child.id(), Ordering::SeqCst);
        assert_eq!(run.wait(), None, "seed {seed}: killed at {moment:?}");
        assert_all_tags_complete(&killed);
        missing.push(verify_finds_only_missing_tags(&staging, &killed));

        apply(
            &config(&[("staging", &staging), ("prod", &killed)], CORPUS_RULE),
            &[],
        );
        assert_eq!(state(&killed), state(&reference), "seed {seed}");
        assert_all_tags_complete(&killed);
        assert_eq!(verify_finds_only_missing_tags(&staging, &killed), 0);
    }
    assert!(
        missing[..3].iter().all(|&m| m == all) && missing[3..].iter().all(|&m| m > 0 && m < all),
        "kills fell before the first tag, then in the middle of the tags: {missing:?} of {all} tags missing"
    );
}

/// When a kill test's SIGKILL comes: at the target's k-th request, or its
/// k-th manifest PUT.
#[derive(Clone, Copy, Debug)]
enum Moment {
    Request(u64),
    ManifestPut(u64),
}

#[test]
fn a_target_registry_restarted_mid_run_is_waited_for() {
    let staging = TestRegistry::start();
    let mut restarted = TestRegistry::start();
    let reference = TestRegistry::start();
    seed_corpus(&staging, 24, 3, 60_000);
    let rules =
        |registry: &TestRegistry| config(&[("staging", &staging), ("prod", registry)], CORPUS_RULE);
    apply(&rules(&reference), &[]);

    let mut run = slow_apply_under_way(&staging, &restarted, &["--report", "report.json"]);
    // The registry crashes and is back 1.5 s later, with hoist sending
    // about 150 requests a second to it.
    let promoted = |run: &crate::support::hoist::Spawned| run.stderr().matches("promoted ").count();
    restarted.crash_and_restart_after(Duration::from_millis(1500));
    // hoist was at work before the crash and is still running after it.
    assert!(run.child.try_wait().unwrap().is_none(), "{}", run.stderr());
    let during = promoted(&run);
    assert_eq!(run.wait(), Some(0), "{}", run.stderr());
    assert!(
        promoted(&run) > during,
        "images were promoted after the restart: {} before it, {} in all",
        during,
        promoted(&run)
    );
    let report = run.json_file("report.json");
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert_eq!(state(&restarted), state(&reference));
    assert_all_tags_complete(&restarted);
    Hoist::new()
        .config(&rules(&restarted))
        .args(["verify"])
        .run()
        .success();
    let rerun = apply(&rules(&restarted), &[]);
    assert_eq!(rerun["summary"]["promoted"], 0, "{rerun:#}");
}

/// A target that never answers is given up once, after one request's
/// retries, not once per request: with one thread, six repositories'
/// target listings would each wait through every retry in turn.
#[test]
fn an_unreachable_target_is_given_up_once_not_once_per_request() {
    let staging = TestRegistry::start();
    let client = seed::client(&staging);
    for index in 0..6 {
        let repository = format!("gone/app-{index}");
        let image = seed::small_image(&format!("{repository}:1.0.0"), Format::Oci);
        seed::push(client.as_ref(), &repository, "1.0.0", &image);
    }
    // A loopback port nobody listens on: every connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let config = config_at(
        &[
            ("staging", staging.host()),
            ("prod", &format!("http://{closed}")),
        ],
        "[[promotion]]\nname = \"gone\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"gone/*\"]\n",
    );
    // Four retries from 200 ms: one request's retries take 1.5 to 4.5 s.
    let started = std::time::Instant::now();
    let run = Hoist::new()
        .config(&config)
        .env("HOIST_RETRY_BASE_MS", "200")
        .args(["--jobs", "1", "plan"])
        .run()
        .code(1);
    let took = started.elapsed();
    for index in 0..6 {
        let listing = format!("listing tags of prod/gone/app-{index}");
        assert!(run.stderr.contains(&listing), "{}", run.stderr);
    }
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    assert!(
        took < Duration::from_secs(9),
        "took {took:?}: the retries were waited through more than once"
    );
}
