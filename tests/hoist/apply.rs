//! `hoist apply`, `hoist promote` and `hoist verify` against real registries:
//! blob dedupe and mounts, fan-out, no-op re-runs, platforms, reviewed plans,
//! Stevedore's worked example, move mode, signature tags, kills and shards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::seed::{self, Format, ImageSpec};
use crate::support::{Hoist, TestRegistry};

/// `[registries.NAME]` for each registry, then the rules.
pub(crate) fn config(registries: &[(&str, &TestRegistry)], rules: &str) -> String {
    let hosts: Vec<(&str, &str)> = registries.iter().map(|(n, r)| (*n, r.host())).collect();
    config_at(&hosts, rules)
}

/// `[registries.NAME]` at each address (a registry or a proxy in front of one), then the rules.
pub(crate) fn config_at(registries: &[(&str, &str)], rules: &str) -> String {
    let mut text = String::new();
    for (name, host) in registries {
        text.push_str(&format!("[registries.{name}]\nurl = \"{host}\"\n\n"));
    }
    text.push_str(rules);
    text
}

/// Runs `apply` with a report, asserts its exit status, and returns the report.
pub(crate) fn apply_exiting(config: &str, code: i32) -> serde_json::Value {
    Hoist::new()
        .config(config)
        .args(["apply", "--report", "report.json"])
        .run()
        .code(code)
        .json_file("report.json")
}

/// Runs `apply` with a report and returns it.
pub(crate) fn apply(config: &str, extra: &[&str]) -> serde_json::Value {
    Hoist::new()
        .config(config)
        .args(["apply", "--report", "report.json"])
        .args(extra)
        .run()
        .success()
        .json_file("report.json")
}

/// Every `repository:tag -> digest` of a registry.
pub(crate) fn state(registry: &TestRegistry) -> BTreeMap<String, String> {
    let client = seed::client(registry);
    let mut state = BTreeMap::new();
    for repository in client.catalog().expect("catalog") {
        let tags = match client.tags(&repository) {
            Ok(tags) => tags,
            Err(e) if e.is_not_found() => continue,
            Err(e) => panic!("tags of {repository}: {e}"),
        };
        for tag in tags {
            if let Some(head) = seed::head(client.as_ref(), &repository, &tag) {
                state.insert(format!("{repository}:{tag}"), head.digest.to_string());
            }
        }
    }
    state
}

/// Every tag of the registry points at an image whose manifests and blobs are all there.
pub(crate) fn assert_all_tags_complete(registry: &TestRegistry) {
    let client = seed::client(registry);
    for (name, digest) in state(registry) {
        let (repository, _) = name.rsplit_once(':').unwrap();
        let mut pending = vec![digest];
        while let Some(digest) = pending.pop() {
            let manifest = client
                .manifest_get(repository, &digest)
                .unwrap_or_else(|e| panic!("{name}: manifest {digest}: {e}"));
            let view = manifest.view().unwrap();
            pending.extend(view.manifests.iter().map(|m| m.digest.to_string()));
            for blob in &view.blobs {
                assert!(
                    client.blob_exists(repository, &blob.digest).unwrap(),
                    "{name} points at an incomplete image: blob {} missing",
                    blob.digest
                );
            }
        }
    }
}

/// An image with `shared` layers common to every image built with this helper.
pub(crate) fn image_with_base(label: &str, layers: usize, shared: usize, size: u64) -> ImageSpec {
    ImageSpec::oci(label, seed::layers(label, layers, shared, size))
}

/// `count` repositories `{prefix}{N}` (N from 0, `width` digits) in
/// `registry`, one tag `1.0.0` each, of `layers` layers of `size` bytes,
/// the first `shared` the same in all (a base image).
pub(crate) fn seed_sharing(
    registry: &TestRegistry,
    prefix: &str,
    (count, width): (usize, usize),
    (layers, shared, size): (usize, usize, u64),
) {
    let client = seed::client(registry);
    for index in 0..count {
        let repository = format!("{prefix}{index:0width$}");
        let spec = image_with_base(&repository, layers, shared, size);
        seed::push(client.as_ref(), &repository, "1.0.0", &spec);
    }
}

#[test]
fn cold_apply_copies_each_blob_once_per_target_and_mounts_the_rest() {
    let staging = TestRegistry::start();
    let prod_us = TestRegistry::start();
    let prod_eu = TestRegistry::start();
    let client = seed::client(&staging);
    for app in ["a", "b", "c"] {
        // Two base layers shared by all three, two of their own, and a config.
        let spec = image_with_base(&format!("apps/{app}"), 4, 2, 40_000);
        seed::push(client.as_ref(), &format!("apps/{app}"), "1.0.0", &spec);
    }
    let cfg = config(
        &[("staging", &staging), ("us", &prod_us), ("eu", &prod_eu)],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = [\"us\", \"eu\"]\nrepositories = [\"apps/*\"]\n",
    );

    let report = apply(&cfg, &[]);
    let summary = &report["summary"];
    assert_eq!(summary["promoted"], 6, "{summary:#}");
    // Per target: 3 configs + 2 shared + 6 own layers cross the network once;
    // the shared layers are mounted into the two other repositories.
    assert_eq!(summary["blobs_copied"], 22, "{summary:#}");
    assert_eq!(summary["blobs_mounted"], 8, "{summary:#}");
    let layer_bytes = 2 * (2 + 6) * 40_000;
    let bytes = summary["bytes_copied"].as_u64().unwrap();
    assert!(
        bytes > layer_bytes && bytes < layer_bytes + 20_000,
        "each shared layer crossed once per target: {bytes} bytes"
    );
    assert_eq!(state(&prod_us), state(&prod_eu));
    assert_eq!(state(&prod_us).len(), 3);
    assert_all_tags_complete(&prod_us);
    Hoist::new().config(&cfg).args(["verify"]).run().success();

    // An immediate re-run: all unchanged, nothing written.
    let report = apply(&cfg, &[]);
    let summary = &report["summary"];
    assert_eq!(summary["unchanged"], 6, "{summary:#}");
    assert_eq!(summary["promoted"], 0, "{summary:#}");
    assert_eq!(summary["write_requests"], 0, "no PUT or POST: {summary:#}");

    // A blob removed from a target's storage: verify names it and fails.
    let layer = client
        .manifest_get("apps/b", "1.0.0")
        .unwrap()
        .view()
        .unwrap()
        .blobs[3]
        .digest
        .to_string();
    std::fs::remove_file(prod_eu.blob_data_path(&layer)).expect("remove blob data");
    let run = Hoist::new().config(&cfg).args(["verify"]).run().code(1);
    assert!(run.stdout.contains("eu/apps/b:1.0.0"), "{}", run.stdout);
    assert!(run.stdout.contains(&layer[..19]), "{}", run.stdout);
    assert!(!run.stdout.contains("us/apps"), "{}", run.stdout);
}

#[test]
fn same_registry_namespace_promotion_moves_no_bytes() {
    let registry = TestRegistry::start();
    let spec = image_with_base("ns", 3, 0, 30_000);
    let manifest = seed::push(
        seed::client(&registry).as_ref(),
        "staging/app",
        "2.0.0",
        &spec,
    );
    let cfg = config(
        &[("reg", &registry)],
        "[[promotion]]\nname = \"stable\"\nfrom = \"reg\"\nto = \"reg\"\nrepositories = [\"staging/*\"]\ntarget = \"stable/{name}\"\n",
    );
    let report = apply(&cfg, &[]);
    let summary = &report["summary"];
    assert_eq!(summary["bytes_copied"], 0, "{summary:#}");
    assert_eq!(summary["blobs_copied"], 0, "{summary:#}");
    assert_eq!(
        summary["blobs_mounted"], 4,
        "config and 3 layers: {summary:#}"
    );
    let head = seed::head(seed::client(&registry).as_ref(), "stable/app", "2.0.0").unwrap();
    assert_eq!(head.digest, manifest.digest);
}

#[test]
fn multi_arch_index_verbatim_and_filtered_to_one_platform() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let index = seed::push(
        seed::client(&staging).as_ref(),
        "apps/multi",
        "1.0.0",
        &seed::multi_platform_image("multi", Format::Oci),
    );
    let children = index.view().unwrap().manifests;
    let cfg = config(
        &[("staging", &staging), ("prod", &prod)],
        r#"
[[promotion]]
name = "all"
from = "staging"
to = "prod"
repositories = ["apps/multi"]
target = "all/{name}"

[[promotion]]
name = "amd64"
from = "staging"
to = "prod"
repositories = ["apps/multi"]
target = "amd64/{name}"
platforms = ["linux/amd64"]
"#,
    );
    let plan = Hoist::new()
        .config(&cfg)
        .args(["plan", "--format", "json"])
        .run()
        .success();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let filtered = plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"]["repository"] == "amd64/multi")
        .expect("filtered entry");
    let new_digest = filtered["target"]["digest"]
        .as_str()
        .expect("new digest stated")
        .to_string();
    assert_ne!(new_digest, index.digest.to_string());

    let report = apply(&cfg, &[]);
    assert_eq!(report["summary"]["promoted"], 2);
    let target = seed::client(&prod);
    let verbatim = target.manifest_get("all/multi", "1.0.0").unwrap();
    assert_eq!(verbatim.bytes, index.bytes, "index copied byte for byte");
    let amd = target.manifest_get("amd64/multi", "1.0.0").unwrap();
    assert_eq!(amd.digest.to_string(), new_digest);
    let kept = amd.view().unwrap().manifests;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].platform.as_ref().unwrap().architecture, "amd64");
    let arm = children
        .iter()
        .find(|c| c.platform.as_ref().unwrap().architecture == "arm64")
        .unwrap();
    assert_eq!(
        seed::head(target.as_ref(), "amd64/multi", &arm.digest.to_string()),
        None
    );
    assert!(seed::head(target.as_ref(), "all/multi", &arm.digest.to_string()).is_some());
    assert_all_tags_complete(&prod);
    Hoist::new().config(&cfg).args(["verify"]).run().success();
}

#[test]
fn apply_plan_refuses_entries_whose_source_moved() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let client = seed::client(&staging);
    seed::push(
        client.as_ref(),
        "apps/a",
        "1.0.0",
        &seed::small_image("a1", Format::Oci),
    );
    let b = seed::push(
        client.as_ref(),
        "apps/b",
        "1.0.0",
        &seed::small_image("b1", Format::Oci),
    );
    let cfg = config(
        &[("staging", &staging), ("prod", &prod)],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/*\"]\n",
    );
    let reviewed = tempfile::tempdir().unwrap();
    let plan_path = reviewed.path().join("plan.json");
    Hoist::new()
        .config(&cfg)
        .args(["plan", "--out"])
        .args([&plan_path])
        .run()
        .success();

    // Someone re-pushes apps/a:1.0.0 after the review.
    seed::push(
        client.as_ref(),
        "apps/a",
        "1.0.0",
        &seed::small_image("a2", Format::Oci),
    );

    let run = Hoist::new()
        .config(&cfg)
        .args(["apply", "--plan"])
        .args([&plan_path])
        .args(["--report", "report.json"])
        .run()
        .code(1);
    assert!(
        run.stdout.contains("refused prod/apps/a:1.0.0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("moved since planning"),
        "{}",
        run.stdout
    );
    let report = run.json_file("report.json");
    assert_eq!(report["summary"]["refused"], 1);
    assert_eq!(report["summary"]["promoted"], 1);
    assert_eq!(report["failures"][0]["status"], "refused");
    let target = seed::client(&prod);
    assert_eq!(seed::head(target.as_ref(), "apps/a", "1.0.0"), None);
    assert_eq!(
        seed::head(target.as_ref(), "apps/b", "1.0.0")
            .unwrap()
            .digest,
        b.digest
    );
}

#[test]
fn stevedore_worked_example_writes_exactly_four_tags() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let manifest = seed::push(
        seed::client(&source).as_ref(),
        "app1",
        "0.1.0-base2.4.6",
        &seed::small_image("app1", Format::Docker),
    );
    let image = format!("{}/app1:0.1.0-base2.4.6", source.host());
    let stevedore = |extra: &[&str]| {
        Hoist::new()
            .args([
                "promote",
                &image,
                "--promote-image-registry-host",
                target.host(),
            ])
            .args([
                "--promote-image-tag",
                "latest",
                "--force-promote-source-image",
                "--enable-semver-tags",
            ])
            .args(extra)
            .run()
            .success()
    };
    // The dry run reads both registries and shows the plan, writing nothing.
    let run = stevedore(&["--dry-run"]);
    assert!(run.stdout.contains("+ 0.1.0-base2.4.6"), "{}", run.stdout);
    assert!(
        seed::client(&target).catalog().unwrap().is_empty(),
        "dry run wrote nothing"
    );

    stevedore(&[]);
    let mut expected = BTreeMap::new();
    for tag in ["0.1", "0.1.0", "0.1.0-base2.4.6", "latest"] {
        expected.insert(format!("app1:{tag}"), manifest.digest.to_string());
    }
    assert_eq!(state(&target), expected);
}

#[test]
fn move_mode_deletes_source_tags_that_nothing_else_uses() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let client = seed::client(&staging);
    let one = seed::push(
        client.as_ref(),
        "apps/m",
        "1.0.0",
        &seed::small_image("m1", Format::Oci),
    );
    let two = seed::push(
        client.as_ref(),
        "apps/m",
        "2.0.0",
        &seed::small_image("m2", Format::Oci),
    );
    // Another tag on 1.0.0's image, outside the rule.
    client.manifest_put("apps/m", "keep", &one).unwrap();
    let cfg = config(
        &[("staging", &staging), ("prod", &prod)],
        "[[promotion]]\nname = \"release\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/m\"]\ntags = [\"*.*.*\"]\nmode = \"move\"\n",
    );
    let run = Hoist::new()
        .config(&cfg)
        .args(["apply", "--report", "report.json"])
        .run()
        .success();
    let target = seed::client(&prod);
    assert_eq!(
        seed::head(target.as_ref(), "apps/m", "1.0.0")
            .unwrap()
            .digest,
        one.digest
    );
    assert_eq!(
        seed::head(target.as_ref(), "apps/m", "2.0.0")
            .unwrap()
            .digest,
        two.digest
    );
    // 2.0.0 is gone from the source; 1.0.0 stays, since `keep` shares its image.
    assert_eq!(seed::head(client.as_ref(), "apps/m", "2.0.0"), None);
    assert!(seed::head(client.as_ref(), "apps/m", "1.0.0").is_some());
    assert!(seed::head(client.as_ref(), "apps/m", "keep").is_some());
    let report = run.json_file("report.json");
    assert_eq!(report["moved"], serde_json::json!(["staging/apps/m:2.0.0"]));
    assert!(
        report["notes"][0].as_str().unwrap().contains("keep"),
        "{report:#}"
    );
}

#[test]
fn cosign_signature_tags_travel_with_their_image() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let client = seed::client(&staging);
    let image = seed::push(
        client.as_ref(),
        "apps/s",
        "1.0.0",
        &seed::small_image("s", Format::Oci),
    );
    let other = seed::push(
        client.as_ref(),
        "apps/s",
        "dev",
        &seed::small_image("s-dev", Format::Oci),
    );
    let sig_tag = format!("{}.sig", image.digest.to_string().replace(':', "-"));
    let other_sig = format!("{}.sig", other.digest.to_string().replace(':', "-"));
    let sig = seed::push(
        client.as_ref(),
        "apps/s",
        &sig_tag,
        &seed::small_image("sig", Format::Oci),
    );
    seed::push(
        client.as_ref(),
        "apps/s",
        &other_sig,
        &seed::small_image("sig2", Format::Oci),
    );
    let cfg = config(
        &[("staging", &staging), ("prod", &prod)],
        "[[promotion]]\nname = \"signed\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/s\"]\ntags = [\"1.*\"]\nreferrers = true\n",
    );
    apply(&cfg, &[]);
    let mut expected = BTreeMap::new();
    expected.insert("apps/s:1.0.0".to_string(), image.digest.to_string());
    expected.insert(format!("apps/s:{sig_tag}"), sig.digest.to_string());
    assert_eq!(state(&prod), expected);
}

/// `count` repositories with `tags` versions each, sharing a base layer.
pub(crate) fn seed_corpus(registry: &TestRegistry, count: usize, tags: usize, size: u64) {
    let client = seed::client(registry);
    for r in 0..count {
        for t in 0..tags {
            let repository = format!("corpus/r{r:02}");
            let spec = image_with_base(&format!("{repository}:{t}"), 3, 1, size);
            seed::push(client.as_ref(), &repository, &format!("1.{t}.0"), &spec);
        }
    }
}

pub(crate) const CORPUS_RULE: &str = "[[promotion]]\nname = \"corpus\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"corpus/*\"]\nfloating = [\"{major}\", \"latest\"]\n";

/// `apply` of the corpus from `staging` into `target`, rate-limited so it
/// takes seconds, returned once it has promoted a few images: a run to
/// interrupt in the middle.
pub(crate) fn slow_apply_under_way(
    staging: &TestRegistry,
    target: &TestRegistry,
    extra: &[&str],
) -> crate::support::hoist::Spawned {
    let slow = format!(
        "{}[registries.prod]\nurl = \"{}\"\nrequests_per_second = 150\n\n{CORPUS_RULE}",
        config(&[("staging", staging)], ""),
        target.host()
    );
    let mut run = Hoist::new()
        .config(&slow)
        .args(["apply", "--jobs", "4"])
        .args(extra)
        .spawn();
    let started = Instant::now();
    while run.stderr().matches("promoted ").count() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress: {}",
            run.stderr()
        );
        assert!(
            run.child.try_wait().unwrap().is_none(),
            "finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run
}

#[test]
fn killed_apply_leaves_only_complete_images_and_a_rerun_finishes() {
    let staging = TestRegistry::start();
    let killed = TestRegistry::start();
    let reference = TestRegistry::start();
    seed_corpus(&staging, 24, 3, 60_000);
    let mut run = slow_apply_under_way(&staging, &killed, &[]);
    run.child.kill().expect("SIGKILL");
    assert_eq!(run.wait(), None, "killed by a signal");
    let partial = state(&killed);
    assert!(
        !partial.is_empty(),
        "some tags were written before the kill"
    );
    assert_all_tags_complete(&killed);

    let fast =
        |registry: &TestRegistry| config(&[("staging", &staging), ("prod", registry)], CORPUS_RULE);
    apply(&fast(&killed), &[]);
    apply(&fast(&reference), &[]);
    let finished = state(&killed);
    assert_eq!(
        finished.len(),
        24 * 5,
        "3 versions, `1` and `latest` per repository"
    );
    assert_eq!(finished, state(&reference));
    assert!(
        partial.len() < finished.len(),
        "the kill came before the end"
    );
    assert_all_tags_complete(&killed);
}

#[test]
fn sigterm_finishes_work_in_flight_writes_the_report_and_exits_143() {
    let staging = TestRegistry::start();
    let stopped = TestRegistry::start();
    let reference = TestRegistry::start();
    seed_corpus(&staging, 24, 3, 60_000);
    let mut run = slow_apply_under_way(&staging, &stopped, &["--report", "report.json"]);
    run.signal("TERM");
    assert_eq!(run.wait(), Some(143), "{}", run.stderr());
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(said.contains("stopped by SIGTERM"), "{said}");

    // The report says what was done and what was not started.
    let report = run.json_file("report.json");
    let summary = &report["summary"];
    let promoted = summary["promoted"].as_u64().unwrap();
    assert!(promoted >= 5, "{summary:#}");
    assert!(summary["failed"].as_u64().unwrap() > 0, "{summary:#}");
    let entries = report["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .filter(|e| e["status"] == "failed")
            .all(|e| e["error"]
                .as_str()
                .unwrap_or("")
                .contains("stopped by SIGTERM")),
        "every entry not done was stopped, not broken: {report:#}"
    );
    let partial = state(&stopped);
    assert_eq!(
        partial.len() as u64,
        promoted,
        "every promoted entry is in the target, nothing else"
    );
    assert_all_tags_complete(&stopped);

    let fast =
        |registry: &TestRegistry| config(&[("staging", &staging), ("prod", registry)], CORPUS_RULE);
    apply(&fast(&stopped), &[]);
    apply(&fast(&reference), &[]);
    assert_eq!(state(&stopped), state(&reference));
}

#[test]
fn three_shards_in_parallel_equal_one_unsharded_run() {
    let staging = TestRegistry::start();
    let sharded = TestRegistry::start();
    let whole = TestRegistry::start();
    seed_corpus(&staging, 12, 2, 2_000);
    let cfg =
        |registry: &TestRegistry| config(&[("staging", &staging), ("prod", registry)], CORPUS_RULE);
    let mut runs: Vec<_> = (0..3)
        .map(|k| {
            Hoist::new()
                .config(&cfg(&sharded))
                .args([
                    "apply",
                    "--shard",
                    &format!("{k}/3"),
                    "--report",
                    "report.json",
                ])
                .spawn()
        })
        .collect();
    for run in &mut runs {
        assert_eq!(run.wait(), Some(0), "{}", run.stderr());
    }
    // The same split through the Indexed Job environment.
    let planned: usize = (0..3)
        .map(|k| {
            let run = Hoist::new()
                .config(&cfg(&sharded))
                .env("JOB_COMPLETION_INDEX", k.to_string())
                .env("HOIST_SHARD_COUNT", "3")
                .args(["plan", "--shard-from-env", "--format", "json"])
                .run()
                .success();
            let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            assert_eq!(plan["summary"]["create"], 0, "shard {k} is done");
            plan["entries"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(planned, 12 * 4, "the shards cover every entry once");
    apply(&cfg(&whole), &[]);
    assert_eq!(state(&sharded), state(&whole));
    assert_eq!(state(&whole).len(), 12 * 4);
}

#[test]
fn readme_first_command_applies_the_embedded_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let hoist = Hoist::new();
    let dir = hoist.dir().to_path_buf();
    std::fs::copy(
        format!("{root}/promotions.toml"),
        dir.join("promotions.toml"),
    )
    .unwrap();
    let status = std::process::Command::new("cp")
        .args(["-r", &format!("{root}/examples"), dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    // `cargo run --release -- apply` in the repository, here without cargo.
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        command
            .current_dir(&dir)
            .args(args)
            .env("HOIST_PROGRESS", "never");
        for key in ["HOIST_CONFIG", "HOIST_JOBS", "HOIST_SHARD"] {
            command.env_remove(key);
        }
        command.output().unwrap()
    };
    let first = run(&["apply"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.contains("14 tags promoted"), "{out}");
    let second = run(&["apply"]);
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("0 tags promoted, 14 unchanged"), "{out}");
    assert!(run(&["verify"]).status.success());
    drop(hoist);
}
