//! `prune` (issue 32): target tags a rule owns and its source no longer
//! selects are plan entries (`-`) first, deleted last on apply, capped,
//! refused when they moved since review, proven by records with
//! `prune = "recorded"`, and never deleted with a neighbour on a registry
//! that deletes by digest only (Distribution, as here).

use hoist::manifest::Manifest;
use serde_json::Value;

use crate::apply::config_at;
use crate::support::seed;
use crate::support::{Hoist, TestRegistry};

/// staging → prod for `apps/web`, pruning, with `extra` settings.
fn pruning(staging: &TestRegistry, prod: &TestRegistry, extra: &str) -> String {
    config_at(
        &[("staging", staging.host()), ("prod", prod.host())],
        &format!(
            "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"apps/web\"]\nprune = true\n{extra}"
        ),
    )
}

/// Pushes one image per tag (each its own digest).
fn versions(registry: &TestRegistry, tags: &[&str]) -> Vec<Manifest> {
    tags.iter()
        .map(|tag| seed::push_small(registry, "apps/web", tag, tag))
        .collect()
}

/// Deletes a source tag the way Distribution can: its manifest by digest.
fn delete(registry: &TestRegistry, image: &Manifest) {
    seed::client(registry)
        .manifest_delete("apps/web", &image.digest)
        .unwrap();
}

fn plan_json(config: &str) -> Value {
    let run = Hoist::new()
        .config(config)
        .args(["plan", "--format", "json"])
        .run()
        .success();
    serde_json::from_str(&run.stdout).unwrap()
}

/// The plan's entries with action `prune`, as `tag: reason`.
fn prunes(plan: &Value) -> Vec<String> {
    plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "prune")
        .map(|e| {
            format!(
                "{}: {}",
                e["target"]["tag"].as_str().unwrap(),
                e["reason"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_source_tag_deleted_is_pruned_from_the_target_and_the_rest_untouched() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let images = versions(&staging, &["1.0.0", "1.1.0", "1.2.0"]);
    let config = pruning(&staging, &prod, "floating = [\"{major}\"]\n");
    Hoist::new().config(&config).args(["apply"]).run().success();
    assert_eq!(prod.read_tags("apps/web"), ["1", "1.0.0", "1.1.0", "1.2.0"]);
    delete(&staging, &images[0]);

    let plan = plan_json(&config);
    assert_eq!(
        prunes(&plan),
        ["1.0.0: its source tag staging/apps/web:1.0.0 is gone"]
    );
    assert_eq!(plan["summary"]["prune"], 1);
    let table = Hoist::new()
        .config(&config)
        .args(["plan", "--detailed-exitcode"])
        .run()
        .code(3);
    let line = table.stdout.lines().find(|l| l.contains("1.0.0 ")).unwrap();
    assert!(line.trim_start().starts_with("- 1.0.0"), "{}", table.stdout);
    assert!(table.stdout.contains("1 to prune"), "{}", table.stdout);
    let markdown = Hoist::new()
        .config(&config)
        .args(["plan", "--format", "markdown"])
        .run()
        .success();
    assert!(markdown.stdout.contains("➖ prune"), "{}", markdown.stdout);

    let run = Hoist::new()
        .config(&config)
        .args(["apply", "--report", "report.json"])
        .run()
        .success();
    assert_eq!(run.json_file("report.json")["summary"]["pruned"], 1);
    assert_eq!(prod.read_tags("apps/web"), ["1", "1.1.0", "1.2.0"]);
    assert_eq!(
        prod.read_manifest_digest("apps/web", "1.2.0"),
        Some(images[2].digest.to_string())
    );
    Hoist::new()
        .config(&config)
        .args(["plan", "--detailed-exitcode"])
        .run()
        .code(0);
}

#[test]
fn latest_two_prunes_the_oldest_version_and_keeps_the_floating_tags() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    versions(&staging, &["1.0.0", "1.1.0"]);
    let config = pruning(
        &staging,
        &prod,
        "latest = 2\nfloating = [\"{major}\", \"latest\"]\n",
    );
    Hoist::new().config(&config).args(["apply"]).run().success();
    let newest = versions(&staging, &["1.2.0"]).remove(0);

    let plan = plan_json(&config);
    assert_eq!(
        prunes(&plan),
        [
            "1.0.0: its source tag staging/apps/web:1.0.0 is no longer selected: older than the 2 highest versions `latest = 2` keeps"
        ]
    );
    Hoist::new().config(&config).args(["apply"]).run().success();
    assert_eq!(
        prod.read_tags("apps/web"),
        ["1", "1.1.0", "1.2.0", "latest"]
    );
    for floating in ["1", "latest"] {
        assert_eq!(
            prod.read_manifest_digest("apps/web", floating),
            Some(newest.digest.to_string()),
            "{floating}"
        );
    }
}

#[test]
fn a_tag_another_rule_writes_is_not_pruned() {
    let (staging, archive, prod) = (
        TestRegistry::start(),
        TestRegistry::start(),
        TestRegistry::start(),
    );
    let images = versions(&staging, &["1.0.0", "1.1.0"]);
    seed::push_small(&archive, "apps/web", "1.0.0", "1.0.0");
    let mut config = pruning(&staging, &prod, "");
    config.push_str(&format!(
        "\n[registries.archive]\nurl = \"{}\"\n\n[[promotion]]\nname = \"archive\"\nfrom = \"archive\"\nto = \"prod\"\nrepositories = [\"apps/web\"]\n",
        archive.host()
    ));
    Hoist::new().config(&config).args(["apply"]).run().success();
    delete(&staging, &images[0]);

    assert!(prunes(&plan_json(&config)).is_empty());
    Hoist::new().config(&config).args(["apply"]).run().success();
    assert_eq!(prod.read_tags("apps/web"), ["1.0.0", "1.1.0"]);
}

#[test]
fn the_cap_blocks_a_mass_delete() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let images = versions(&staging, &["1.0.0", "1.1.0", "1.2.0"]);
    let config = pruning(&staging, &prod, "max_prune = 1\n");
    Hoist::new().config(&config).args(["apply"]).run().success();
    delete(&staging, &images[0]);
    delete(&staging, &images[1]);

    let run = Hoist::new().config(&config).args(["apply"]).run().code(1);
    let blocked: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("above max_prune = 1"))
        .collect();
    assert_eq!(blocked.len(), 4, "{}", run.stdout);
    assert!(
        blocked[0].contains("none of rule `web` is pruned"),
        "{}",
        blocked[0]
    );
    assert_eq!(prod.read_tags("apps/web"), ["1.0.0", "1.1.0", "1.2.0"]);

    let share = pruning(&staging, &prod, "max_prune = \"70%\"\n");
    Hoist::new().config(&share).args(["apply"]).run().success();
    assert_eq!(prod.read_tags("apps/web"), ["1.2.0"]);
}

#[test]
fn a_reviewed_prune_is_refused_when_the_target_tag_moved_since() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let images = versions(&staging, &["1.0.0", "1.1.0"]);
    let config = pruning(&staging, &prod, "");
    Hoist::new().config(&config).args(["apply"]).run().success();
    delete(&staging, &images[0]);
    let reviewed = tempfile::tempdir().unwrap();
    let plan = reviewed.path().join("plan.json");
    let plan = plan.to_str().unwrap();
    Hoist::new()
        .config(&config)
        .args(["plan", "--out", plan])
        .run()
        .success();
    let hotfix = seed::push_small(&prod, "apps/web", "1.0.0", "hotfix");

    let run = Hoist::new()
        .config(&config)
        .args(["apply", "--plan", plan])
        .run()
        .code(1);
    assert!(
        run.stdout.contains("changed since planning")
            || run.stderr.contains("changed since planning"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(
        prod.read_manifest_digest("apps/web", "1.0.0"),
        Some(hotfix.digest.to_string())
    );
}

#[test]
fn a_digest_shared_with_a_tag_the_rule_does_not_own_is_kept() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let images = versions(&staging, &["1.0.0", "1.1.0"]);
    let config = pruning(&staging, &prod, "tags = [\"1.*\"]\n");
    Hoist::new().config(&config).args(["apply"]).run().success();
    // Someone tagged prod's 1.0.0 `stable` by hand.
    let client = seed::client(&prod);
    let held = client.manifest_get("apps/web", "1.0.0").unwrap();
    client.manifest_put("apps/web", "stable", &held).unwrap();
    delete(&staging, &images[0]);

    assert_eq!(prunes(&plan_json(&config)).len(), 1);
    let run = Hoist::new().config(&config).args(["apply"]).run().success();
    assert!(
        run.stderr.contains("stable also points at its image")
            || run.stdout.contains("stable also points at its image"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(prod.read_tags("apps/web"), ["1.0.0", "1.1.0", "stable"]);
}

#[test]
fn prune_settings_that_would_delete_by_surprise_are_refused() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    for (extra, says) in [
        (
            "mode = \"move\"\n",
            "`prune` on a rule with mode = \"move\"",
        ),
        (
            "tag = \"v{major}\"\n",
            "`prune` needs a tag template that names its source tag",
        ),
        ("max_prune = \"lots\"\n", "`lots` is not a share"),
    ] {
        let run = Hoist::new()
            .config(&pruning(&staging, &prod, extra))
            .args(["plan"])
            .run()
            .code(2);
        assert!(run.stderr.contains(says), "{extra}: {}", run.stderr);
    }
    let recorded = pruning(&staging, &prod, "").replace("prune = true", "prune = \"recorded\"");
    let run = Hoist::new().config(&recorded).args(["plan"]).run().code(2);
    assert!(
        run.stderr.contains("needs `require_record`"),
        "{}",
        run.stderr
    );
}

#[test]
fn prune_recorded_leaves_a_tag_another_tool_pushed() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let images = versions(&staging, &["1.0.0", "1.1.0"]);
    let fixture = |name: &str| {
        format!(
            "{}/tests/fixtures/cosign/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    };
    let config = format!(
        "[settings]\nrecord = {{ key = \"{}\" }}\n\n{}",
        fixture("ci.key.pem"),
        pruning(
            &staging,
            &prod,
            &format!(
                "require_record = {{ keys = [\"{}\"] }}\n",
                fixture("ci.pub")
            ),
        )
        .replace("prune = true", "prune = \"recorded\"")
    );
    Hoist::new().config(&config).args(["apply"]).run().success();
    // 0.9.0 reached prod some other way: the rule's selection takes it, no
    // record says the rule put it there.
    seed::push_small(&prod, "apps/web", "0.9.0", "by hand");
    delete(&staging, &images[0]);

    let plan = plan_json(&config);
    assert_eq!(
        prunes(&plan),
        ["1.0.0: its source tag staging/apps/web:1.0.0 is gone"]
    );
    let left: Vec<&str> = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["reason"].as_str())
        .filter(|r| r.contains("carries no promotion record of rule `web`"))
        .collect();
    assert_eq!(left.len(), 1, "{plan:#}");
    assert!(left[0].contains("prod/apps/web:0.9.0"), "{}", left[0]);
    Hoist::new().config(&config).args(["apply"]).run().success();
    let mut tags = prod.read_tags("apps/web");
    tags.retain(|t| !t.starts_with("sha256-"));
    assert_eq!(tags, ["0.9.0", "1.1.0"]);
}
