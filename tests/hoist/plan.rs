//! `hoist plan`, `hoist check` and `hoist apply --dry-run` against real
//! registries: discovery, tag strategy, dedupe, conflicts, and that planning
//! writes nothing.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::fault_proxy::{FaultProxy, Reply, Schedule};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// A config with `staging` and `prod` registries and the given rules.
fn config(staging: &TestRegistry, prod: &TestRegistry, rules: &str) -> String {
    format!(
        "[registries.staging]\nurl = \"{}\"\n\n[registries.prod]\nurl = \"{}\"\n{rules}",
        staging.host(),
        prod.host()
    )
}

/// Pushes a distinct small image under each tag.
fn push_tags(registry: &TestRegistry, repository: &str, tags: &[&str]) {
    let client = seed::client(registry);
    for tag in tags {
        let spec = seed::small_image(&format!("{repository}:{tag}"), Format::Oci);
        seed::push(client.as_ref(), repository, tag, &spec);
    }
}

/// Pushes the image of `source_repo:source_tag` (same digest) as `repository:tag`.
fn push_same(
    registry: &TestRegistry,
    source_repo: &str,
    source_tag: &str,
    repository: &str,
    tag: &str,
) {
    let spec = seed::small_image(&format!("{source_repo}:{source_tag}"), Format::Oci);
    seed::push(seed::client(registry).as_ref(), repository, tag, &spec);
}

fn plan_json(hoist: Hoist) -> serde_json::Value {
    plan_json_with(hoist, &[])
}

fn plan_json_with(hoist: Hoist, args: &[&str]) -> serde_json::Value {
    let run = hoist
        .args(["plan", "--format", "json"])
        .args(args)
        .run()
        .success();
    serde_json::from_str(&run.stdout).expect("plan JSON")
}

/// `registry/repository:tag -> (action, source tag)`.
fn entries(plan: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    plan["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let t = &e["target"];
            (
                format!(
                    "{}/{}:{}",
                    t["registry"].as_str().unwrap(),
                    t["repository"].as_str().unwrap(),
                    t["tag"].as_str().unwrap()
                ),
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["source"]["tag"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

fn entry(action: &str, source: &str) -> (String, String) {
    (action.to_string(), source.to_string())
}

/// Every file under a directory with its size: a registry's storage, to show
/// nothing was written.
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in read.flatten() {
            let path = item.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let size = item.metadata().map(|m| m.len()).unwrap_or(0);
                files.push((path.display().to_string(), size));
            }
        }
    }
    files.sort();
    files
}

const VERSIONS: [&str; 5] = ["1.0.0", "1.2.0", "1.2.3", "1.10.0", "2.0.0-rc.1"];

const FLOATING_RULE: &str = r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
floating = ["{major}", "{major}.{minor}", "latest"]
"#;

#[test]
fn floating_tags_follow_the_highest_version_of_each_series() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push_tags(&staging, "apps/web", &VERSIONS);

    let plan = plan_json(Hoist::new().config(&config(&staging, &prod, FLOATING_RULE)));
    let got = entries(&plan);
    assert_eq!(got["prod/apps/web:1"], entry("create", "1.10.0"));
    assert_eq!(got["prod/apps/web:1.2"], entry("create", "1.2.3"));
    assert_eq!(got["prod/apps/web:1.10"], entry("create", "1.10.0"));
    assert_eq!(got["prod/apps/web:latest"], entry("create", "1.10.0"));
    assert!(
        !got.keys().any(|k| k.ends_with(":2") || k.ends_with("rc.1")),
        "no prerelease without prerelease = true: {got:?}"
    );
    assert_eq!(got.len(), 4 + 5, "{got:?}");

    let with_prereleases = FLOATING_RULE.replace("floating", "prerelease = true\nfloating");
    let plan = plan_json(Hoist::new().config(&config(&staging, &prod, &with_prereleases)));
    let got = entries(&plan);
    assert_eq!(
        got["prod/apps/web:2.0.0-rc.1"],
        entry("create", "2.0.0-rc.1")
    );
    assert_eq!(got["prod/apps/web:2"], entry("create", "2.0.0-rc.1"));
    assert_eq!(
        got["prod/apps/web:latest"],
        entry("create", "1.10.0"),
        "latest stays the highest stable version"
    );
}

#[test]
fn a_floating_tag_already_ahead_in_the_target_is_kept() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push_tags(&staging, "apps/web", &VERSIONS);
    // The target already has 1.11.0 (promoted from elsewhere), and `1` on it.
    push_same(&prod, "hotfix", "1.11.0", "apps/web", "1.11.0");
    push_same(&prod, "hotfix", "1.11.0", "apps/web", "1");

    let run = Hoist::new()
        .config(&config(&staging, &prod, FLOATING_RULE))
        .args(["plan"])
        .run()
        .success();
    let line = run
        .lines()
        .into_iter()
        .find(|l| l.trim_start().starts_with("= 1 "))
        .unwrap_or_else(|| panic!("`1` unchanged in\n{}", run.stdout));
    assert!(
        line.contains("1.11.0"),
        "the reason names the newer version: {line}"
    );
    assert!(run.stdout.contains("+ 1.2 "), "{}", run.stdout);
}

#[test]
fn overwrite_never_blocks_and_detailed_exitcode_reports_pending_changes() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push_tags(&staging, "apps/web", &["1.0.0", "1.1.0"]);
    // prod's 1.0.0 is another image than staging's.
    push_same(&prod, "rebuilt", "1.0.0", "apps/web", "1.0.0");
    let rules = "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/*\"]\n";

    let run = Hoist::new()
        .config(&config(&staging, &prod, rules))
        .args(["plan", "--detailed-exitcode"])
        .run()
        .code(3);
    assert!(run.stdout.contains("! 1.0.0"), "{}", run.stdout);
    assert!(
        run.stdout.contains("overwrite = \"never\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("+ 1.1.0"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("Plan: 1 to create, 0 to update, 0 unchanged, 1 blocked"),
        "{}",
        run.stdout
    );

    let always = format!("{rules}overwrite = \"always\"\n");
    let plan = plan_json(Hoist::new().config(&config(&staging, &prod, &always)));
    assert_eq!(
        entries(&plan)["prod/apps/web:1.0.0"],
        entry("update", "1.0.0")
    );

    // Once prod holds what staging has, there is nothing to do: exit 0.
    push_same(&prod, "apps/web", "1.1.0", "apps/web", "1.1.0");
    push_same(&prod, "apps/web", "1.0.0", "apps/web", "1.0.0");
    let run = Hoist::new()
        .config(&config(&staging, &prod, rules))
        .args(["plan", "--detailed-exitcode"])
        .run()
        .success();
    assert!(
        run.stdout
            .contains("Plan: 0 to create, 0 to update, 2 unchanged"),
        "{}",
        run.stdout
    );
}

#[test]
fn overlapping_rules_merge_and_conflicting_rules_are_refused() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push_tags(&staging, "apps/web", &["1.0.0"]);
    push_tags(&staging, "apps/api", &["1.0.0"]);
    let merging = r#"
[[promotion]]
name = "everything"
from = "staging"
to = "prod"
repositories = ["**"]

[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
"#;
    let plan = plan_json(Hoist::new().config(&config(&staging, &prod, merging)));
    let web = plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"]["repository"] == "apps/web")
        .expect("apps/web entry");
    assert_eq!(web["rules"], serde_json::json!(["everything", "web"]));
    assert_eq!(plan["summary"]["create"], 2);

    let conflicting = r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
target = "stable/app"

[[promotion]]
name = "api"
from = "staging"
to = "prod"
repositories = ["apps/api"]
target = "stable/app"
"#;
    let storage = snapshot(prod.storage_dir());
    let run = Hoist::new()
        .config(&config(&staging, &prod, conflicting))
        .args(["apply", "--dry-run"])
        .run()
        .code(2);
    assert!(
        run.stderr
            .contains("conflict: rules `api` and `web` write prod/stable/app:1.0.0"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("promotions.toml:"),
        "points into the file: {}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("wants staging/apps/").count(),
        2,
        "both rules labelled: {}",
        run.stderr
    );
    assert_eq!(snapshot(prod.storage_dir()), storage);
}

#[test]
fn a_catalog_of_several_pages_is_planned_whole() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let repos: Vec<String> = (0..7).map(|i| format!("apps/svc-{i}")).collect();
    for repo in &repos {
        push_tags(&staging, repo, &["1.0.0"]);
    }
    push_tags(&staging, "apps/experimental-x", &["1.0.0"]);
    let rules = r#"
[[promotion]]
name = "apps"
from = "staging"
to = "prod"
repositories = ["apps/*", "!apps/experimental-*"]
target = "stable/{name}"
"#;
    let plan = plan_json(
        Hoist::new()
            .config(&config(&staging, &prod, rules))
            .env("HOIST_PAGE_SIZE", "3"),
    );
    let targets: Vec<String> = entries(&plan).into_keys().collect();
    let expected: Vec<String> = (0..7)
        .map(|i| format!("prod/stable/svc-{i}:1.0.0"))
        .collect();
    assert_eq!(targets, expected);
}

#[test]
fn planning_and_dry_runs_leave_every_target_untouched() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push_tags(&staging, "apps/web", &VERSIONS);
    push_same(&prod, "apps/web", "1.0.0", "apps/web", "1.0.0");
    let before_catalog = seed::client(&prod).catalog().expect("catalog");
    let before = snapshot(prod.storage_dir());
    let staging_before = snapshot(staging.storage_dir());

    let hoist = || Hoist::new().config(&config(&staging, &prod, FLOATING_RULE));
    let run = hoist().args(["plan", "--out", "plan.json"]).run().success();
    let written = run.json_file("plan.json");
    assert_eq!(written["summary"]["unchanged"], 1);
    assert_eq!(written["format"], 2);
    let entries = written["entries"].as_array().expect("entries");
    let floating = entries
        .iter()
        .filter(|e| e["role"]["kind"] == "floating")
        .count();
    assert!(floating > 0 && entries.iter().all(|e| e["role"]["kind"].is_string()));
    let dry = hoist().args(["apply", "--dry-run"]).run().success();
    assert_eq!(dry.stdout, run.stdout, "apply --dry-run prints the plan");

    assert_eq!(
        seed::client(&prod).catalog().expect("catalog"),
        before_catalog
    );
    assert_eq!(snapshot(prod.storage_dir()), before);
    assert_eq!(snapshot(staging.storage_dir()), staging_before);
}

#[test]
fn rule_and_shard_narrow_the_plan() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    for i in 0..6 {
        push_tags(&staging, &format!("apps/svc-{i}"), &["1.0.0"]);
    }
    push_tags(&staging, "tools/debug", &["0.1.0"]);
    let rules = r#"
[[promotion]]
name = "apps"
from = "staging"
to = "prod"
repositories = ["apps/*"]

[[promotion]]
name = "tools"
from = "staging"
to = "prod"
repositories = ["tools/*"]
"#;
    let hoist = || Hoist::new().config(&config(&staging, &prod, rules));
    let tools = plan_json_with(hoist(), &["--rule", "tools"]);
    assert_eq!(
        entries(&tools).into_keys().collect::<Vec<_>>(),
        ["prod/tools/debug:0.1.0"]
    );

    let mut union = Vec::new();
    for k in 0..3 {
        let shard = plan_json_with(hoist(), &["--shard", &format!("{k}/3")]);
        union.extend(entries(&shard).into_keys());
    }
    union.sort();
    let whole: Vec<String> = entries(&plan_json(hoist())).into_keys().collect();
    assert_eq!(union, whole, "the shards partition the plan");

    let run = hoist().args(["plan", "--rule", "tols"]).run().code(2);
    assert!(
        run.stderr.contains("did you mean `tools`?"),
        "{}",
        run.stderr
    );
    let run = hoist().args(["plan", "--shard", "3/3"]).run().code(2);
    assert!(run.stderr.contains("K counts from 0"), "{}", run.stderr);
}

#[test]
fn check_validates_offline_and_reports_every_problem() {
    // Nothing listens on port 9: `check` must not try.
    let good = r#"
[registries.staging]
url = "127.0.0.1:9"

[[promotion]]
name = "apps"
from = "staging"
to = "staging"
repositories = ["apps/*"]
target = "stable/{name}"
"#;
    let run = Hoist::new().config(good).args(["check"]).run().success();
    assert!(
        run.stderr
            .contains("ok (1 registry, 1 rule; jobs 48, retries 4, timeout 60s)"),
        "{}",
        run.stderr
    );

    let bad = r#"
[registries.staging]
url = "127.0.0.1:9"

[[promotion]]
name = "apps"
from = "staging"
to = "prod"
repositories = ["apps/[x"]
tgas = ["*"]
floating = ["{majr}"]
"#;
    let run = Hoist::new().config(bad).args(["check"]).run().code(2);
    for expected in [
        "4 problems",
        "no registry named `prod`",
        "bad glob `apps/[x`",
        "unknown key `tgas`",
        "did you mean `tags`?",
        "unknown template variable `majr`",
        "promotions.toml:8:6",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing `{expected}` in\n{}",
            run.stderr
        );
    }
    // `plan` refuses the same file before contacting anything.
    Hoist::new().config(bad).args(["plan"]).run().code(2);
}

/// `[settings]` lines, environment variables, flags, and what `check` says:
/// ok with the effective setting it prints, or an error containing the text.
type SettingsCase<'a> = (
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [&'a str],
    Result<&'a str, &'a str>,
);

#[test]
fn settings_layer_file_then_environment_then_flags() {
    // `retries` (no flag): a registry that always answers 503 gets one
    // request plus one per retry, counted by the proxy in front of it.
    let proxy = FaultProxy::start("127.0.0.1:9", Schedule::none());
    proxy.answer(|_, _| Some(Reply::status(503)));
    let registry = format!("[registries.s]\nurl = \"{}\"\n", proxy.host());
    let attempts = |settings: &str, env: &[(&str, &str)]| {
        let before = proxy.seen().len();
        let run = Hoist::new()
            .config(&format!("{settings}\n{registry}"))
            .env("HOIST_RETRY_BASE_MS", "1")
            .envs(env)
            .args(["ls", "s"])
            .run()
            .code(1);
        assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
        proxy.seen().len() - before
    };
    assert_eq!(attempts("", &[]), 1 + 4, "built-in default");
    assert_eq!(attempts("[settings]\nretries = 1", &[]), 1 + 1, "file");
    assert_eq!(
        attempts("[settings]\nretries = 1", &[("HOIST_RETRIES", "2")]),
        1 + 2,
        "environment over file"
    );

    // `jobs` and `timeout_secs`: a 0 is refused wherever it comes from, so
    // whether a run starts shows which layer's value won. (A 0 in the file
    // is refused by the file's own diagnostics, before any layering.)
    let must_be_positive = |key| format!("settings: `{key}` must be at least 1");
    let jobs_error = must_be_positive("jobs");
    let timeout_error = must_be_positive("timeout_secs");
    let cases: [SettingsCase; 10] = [
        (
            "jobs = 0",
            &[("HOIST_JOBS", "2")],
            &[],
            Err("promotions.toml:2:8"),
        ),
        ("jobs = 4", &[("HOIST_JOBS", "0")], &[], Err(&jobs_error)),
        (
            "jobs = 4",
            &[("HOIST_JOBS", "0")],
            &["--jobs", "2"],
            Ok("jobs 2,"),
        ),
        (
            "jobs = 4",
            &[("HOIST_JOBS", "many")],
            &[],
            Err("HOIST_JOBS"),
        ),
        (
            "jobs = 4",
            &[("HOIST_JOBS", "many")],
            &["--jobs", "2"],
            Ok("jobs 2,"),
        ),
        ("jobs = 4", &[], &["--jobs", "0"], Err(&jobs_error)),
        ("timeout_secs = 5", &[], &[], Ok("timeout 5s")),
        ("jobs = 4", &[], &[], Ok("jobs 4,")),
        ("jobs = 4", &[("HOIST_JOBS", "3")], &[], Ok("jobs 3,")),
        (
            "timeout_secs = 5",
            &[("HOIST_TIMEOUT_SECS", "0")],
            &[],
            Err(&timeout_error),
        ),
    ];
    for (settings, env, flags, expected) in cases {
        let run = Hoist::new()
            .config(&format!("[settings]\n{settings}\n{registry}"))
            .envs(env)
            .args(flags)
            .args(["check"])
            .run();
        let case = format!("{settings} {env:?} {flags:?}");
        match expected {
            Ok(effective) => {
                assert_eq!(run.code, 0, "{case}: {}", run.stderr);
                assert!(run.stderr.contains(": ok ("), "{case}: {}", run.stderr);
                assert!(run.stderr.contains(effective), "{case}: {}", run.stderr);
            }
            Err(message) => {
                assert_eq!(run.code, 2, "{case}: {}", run.stderr);
                assert!(run.stderr.contains(message), "{case}: {}", run.stderr);
            }
        }
    }
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for item in std::fs::read_dir(from).expect("read directory") {
        let item = item.expect("directory entry");
        let target = to.join(item.file_name());
        if item.file_type().expect("file type").is_dir() {
            copy_tree(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).expect("copy file");
        }
    }
}

#[test]
fn the_top_level_promotions_toml_plans_against_the_example_store() {
    // A fresh copy: the file's `oci-layout:` paths are relative to it, so
    // `out/prod` starts empty whatever was run in the checkout.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        root.join("promotions.toml"),
        copy.path().join("promotions.toml"),
    )
    .expect("copy promotions.toml");
    copy_tree(
        &root.join("examples/staging"),
        &copy.path().join("examples/staging"),
    );
    let config = copy.path().join("promotions.toml").display().to_string();
    let hoist = || Hoist::new().args(["-c", &config]);

    let run = hoist()
        .args(["plan", "--detailed-exitcode", "--format", "json"])
        .run()
        .code(3);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON");
    let create = |tag: &str| entry("create", tag);
    assert_eq!(
        entries(&plan),
        BTreeMap::from([
            ("prod/apps/api:2.0.0".to_string(), create("2.0.0")),
            ("prod/apps/api:2.1.0".to_string(), create("2.1.0")),
            ("prod/apps/api:2.0".to_string(), create("2.0.0")),
            ("prod/apps/api:2.1".to_string(), create("2.1.0")),
            ("prod/apps/api:latest".to_string(), create("2.1.0")),
            ("prod/apps/web:1.0.0".to_string(), create("1.0.0")),
            ("prod/apps/web:1.1.0".to_string(), create("1.1.0")),
            ("prod/apps/web:1.0".to_string(), create("1.0.0")),
            ("prod/apps/web:1.1".to_string(), create("1.1.0")),
            ("prod/apps/web:latest".to_string(), create("1.1.0")),
            ("prod/apps/worker:1.0.0".to_string(), create("1.0.0")),
            ("prod/apps/worker:1.0".to_string(), create("1.0.0")),
            ("prod/apps/worker:latest".to_string(), create("1.0.0")),
            ("prod/tools/debug:0.3.0".to_string(), create("0.3.0")),
        ])
    );

    hoist().args(["apply"]).run().success();
    // Every target tag now holds its source's digest.
    let staging = seed::layout(&copy.path().join("examples/staging"));
    let prod = seed::layout(&copy.path().join("out/prod"));
    for e in plan["entries"].as_array().expect("entries") {
        let (source, target) = (&e["source"], &e["target"]);
        let text = |v: &serde_json::Value| v.as_str().expect("string").to_string();
        assert_eq!(
            seed::head(
                prod.as_ref(),
                &text(&target["repository"]),
                &text(&target["tag"])
            )
            .map(|h| h.digest),
            seed::head(
                staging.as_ref(),
                &text(&source["repository"]),
                &text(&source["tag"])
            )
            .map(|h| h.digest),
            "{e}"
        );
    }

    let run = hoist().args(["plan", "--detailed-exitcode"]).run().code(0);
    assert!(
        run.stdout
            .contains("Plan: 0 to create, 0 to update, 14 unchanged, 0 blocked"),
        "{}",
        run.stdout
    );
}

#[test]
fn every_example_config_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut checked = 0;
    for item in std::fs::read_dir(dir).expect("examples/") {
        let path = item.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            Hoist::new()
                .args(["-c", &path.display().to_string(), "check"])
                .env("STAGING_USER", "u")
                .run()
                .success();
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "examples/ has the nightly, release-day and namespace configs"
    );
}
