//! A move never destroys the only copy: `mode = "move"`, `promote --move`
//! and `docker-promote` whose target is their own source, under one name,
//! two names of one registry, or a load balancer's (a proxy in front of
//! the same registry, which no name resolution can see through); a
//! registry that deletes every tag of a digest at once; a no-op re-run.
//! Each asserts the registry's final state: the source image is still
//! there wherever the move did not complete.

use crate::apply::{apply_exiting, config, config_at};
use crate::support::fault_proxy::{FaultProxy, Schedule};
use crate::support::personality_writes::deletes_every_tag_of_a_digest;
use crate::support::seed;
use crate::support::{Hoist, TestRegistry};

/// Pushes a small image to `repository:tag`; its digest.
fn push(registry: &TestRegistry, repository: &str, tag: &str) -> String {
    let label = format!("{repository}-{tag}");
    seed::push_small(registry, repository, tag, &label)
        .digest
        .to_string()
}

/// A move rule from `from` to `to` over `repositories`, with extra lines.
fn move_rule(from: &str, to: &str, repositories: &str, extra: &str) -> String {
    format!(
        "[[promotion]]\nname = \"a\"\nfrom = \"{from}\"\nto = [\"{to}\"]\nrepositories = [\"{repositories}\"]\nmode = \"move\"\n{extra}"
    )
}

/// A move rule from `registry` to itself behind a second address (a load
/// balancer's: names cannot tell), with extra lines; the proxy lives as
/// long as the test keeps it.
fn moving_through_a_balancer(registry: &TestRegistry, extra: &str) -> (FaultProxy, String) {
    let balancer = FaultProxy::start(registry.host(), Schedule::none());
    let cfg = config_at(
        &[("s", registry.host()), ("t", &balancer.host())],
        &move_rule("s", "t", "selfmv/*", extra),
    );
    (balancer, cfg)
}

#[test]
fn check_refuses_a_move_rule_onto_its_own_source_and_apply_leaves_it() {
    let registry = TestRegistry::start();
    let digest = push(&registry, "selfmv/a", "1.0.0");
    let cfg = config(&[("s", &registry)], &move_rule("s", "s", "selfmv/*", ""));
    for command in ["check", "apply"] {
        let run = Hoist::new().config(&cfg).args([command]).run().code(2);
        let stderr = run.stderr;
        assert!(
            stderr.contains("rule `a` moves tags onto themselves"),
            "{stderr}"
        );
        assert!(
            stderr.contains("promotions.toml:9:8]"),
            "points at `mode`: {stderr}"
        );
        assert!(stderr.contains("a move onto its own source"), "{stderr}");
    }
    assert_eq!(
        registry.read_manifest_digest("selfmv/a", "1.0.0"),
        Some(digest)
    );
}

#[test]
fn a_rule_moving_between_two_names_of_one_registry_is_blocked() {
    let registry = TestRegistry::start();
    let digest = push(&registry, "selfmv/b", "1.0.0");
    let port = registry.host().rsplit_once(':').unwrap().1;
    let alias = format!("localhost:{port}");
    let cfg = config_at(
        &[("s", registry.host()), ("t", &alias)],
        &move_rule("s", "t", "selfmv/*", ""),
    );
    let plan = Hoist::new().config(&cfg).args(["plan"]).run().success();
    let expected = format!(
        "a move onto its own source: `s` and `t` are one registry (both reach {})",
        registry.host()
    );
    assert!(plan.stdout.contains(&expected), "{}", plan.stdout);
    let report = apply_exiting(&cfg, 1);
    assert_eq!(report["summary"]["blocked"], 1, "{report:#}");
    assert_eq!(report["moved"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["summary"]["write_requests"], 0, "{report:#}");
    assert_eq!(
        registry.read_manifest_digest("selfmv/b", "1.0.0"),
        Some(digest)
    );
}

#[test]
fn a_rule_moving_onto_its_source_through_a_load_balancer_is_undone() {
    let registry = TestRegistry::start();
    let digest = push(&registry, "selfmv/c", "1.0.0");
    let (_balancer, cfg) = moving_through_a_balancer(&registry, "");
    let report = apply_exiting(&cfg, 1);
    assert_eq!(report["moved"], serde_json::json!([]), "{report:#}");
    let failure = report["failures"][0]["error"].as_str().unwrap_or_default();
    let expected = format!(
        "the move was undone: once s/selfmv/c:1.0.0 was deleted, its copy t/selfmv/c:1.0.0 was gone (the target is the source under another name?); the source tag was put back at {} from the manifest hoist held",
        &digest[..19]
    );
    assert!(failure.contains(&expected), "{failure}\n{report:#}");
    assert_eq!(
        registry.read_manifest_digest("selfmv/c", "1.0.0"),
        Some(digest)
    );
}

#[test]
fn promote_move_and_docker_promote_refuse_one_registry_under_two_names() {
    let registry = TestRegistry::start();
    let w = push(&registry, "selfmv/w", "1.0.0");
    let z = push(&registry, "selfmv/z", "1.0.0");
    let port = registry.host().rsplit_once(':').unwrap().1;
    let alias = format!("localhost:{port}");
    let source = format!("{}/selfmv/w:1.0.0", registry.host());
    let target = format!("{alias}/selfmv/w");
    let run = Hoist::new()
        .args(["promote", &source, &target, "--move"])
        .run()
        .code(2);
    let expected = format!(
        "the target is the source itself: `{}` and `{alias}` are one registry (both reach {}), so moving `selfmv/w:1.0.0` would delete the tag it writes",
        registry.host(),
        registry.host()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    let run = Hoist::new()
        .args(["docker-promote", "selfmv/z", registry.host(), &alias])
        .run()
        .code(2);
    assert!(
        run.stderr.contains("the target is the source itself")
            && run.stderr.contains("are one registry"),
        "{}",
        run.stderr
    );
    assert_eq!(registry.read_manifest_digest("selfmv/w", "1.0.0"), Some(w));
    assert_eq!(registry.read_manifest_digest("selfmv/z", "1.0.0"), Some(z));
}

#[test]
fn promote_move_and_docker_promote_through_a_load_balancer_keep_the_source() {
    let registry = TestRegistry::start();
    let w = push(&registry, "selfmv/w", "1.0.0");
    let z = push(&registry, "selfmv/z", "1.0.0");
    let balancer = FaultProxy::start(registry.host(), Schedule::none());
    let source = format!("{}/selfmv/w:1.0.0", registry.host());
    let target = format!("{}/selfmv/w", balancer.host());
    let run = Hoist::new()
        .args(["promote", &source, &target, "--move"])
        .run()
        .code(1);
    assert!(
        run.stdout.contains("the move was undone"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let run = Hoist::new()
        .args([
            "docker-promote",
            "selfmv/z",
            registry.host(),
            &balancer.host(),
        ])
        .run()
        .code(1);
    assert!(
        run.stdout.contains("the move was undone"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(registry.read_manifest_digest("selfmv/w", "1.0.0"), Some(w));
    assert_eq!(registry.read_manifest_digest("selfmv/z", "1.0.0"), Some(z));
}

#[test]
fn a_registry_deleting_every_tag_of_a_digest_takes_no_copy_with_it() {
    let registry = TestRegistry::start();
    let digest = push(&registry, "selfmv/d", "1.0.0");
    // A second tag of the same image, moved too.
    let client = seed::client(&registry);
    let manifest = client.manifest_get("selfmv/d", "1.0.0").unwrap();
    client.manifest_put("selfmv/d", "1.0", &manifest).unwrap();
    // The source deletes by tag, and with it every tag of the image; the
    // target is the same repository of the same registry, renamed.
    let harbor = FaultProxy::start(registry.host(), Schedule::none());
    deletes_every_tag_of_a_digest(&harbor, registry.http_agent(), registry.url());
    let cfg = config_at(
        &[("s", &harbor.host()), ("t", registry.host())],
        &move_rule("s", "t", "selfmv/*", "tag = \"prod-{tag}\"\n"),
    );
    let report = apply_exiting(&cfg, 1);
    let failure = report["failures"][0]["error"].as_str().unwrap_or_default();
    assert!(
        failure.contains("once s/selfmv/d:1.0 was deleted, its copy t/selfmv/d:prod-1.0 was gone"),
        "{report:#}"
    );
    assert_eq!(report["moved"], serde_json::json!([]), "{report:#}");
    for tag in ["1.0.0", "1.0", "prod-1.0.0", "prod-1.0"] {
        assert_eq!(
            registry.read_manifest_digest("selfmv/d", tag).as_ref(),
            Some(&digest),
            "{tag}"
        );
    }
}

#[test]
fn distribution_deleting_by_digest_keeps_a_tag_another_tag_shares() {
    // Distribution deletes by digest only, every tag of the manifest with
    // it: a renamed copy in the source repository keeps the source.
    let registry = TestRegistry::start();
    let digest = push(&registry, "selfmv/e", "1.0.0");
    let (_balancer, cfg) = moving_through_a_balancer(&registry, "tag = \"prod-{tag}\"\n");
    let report = apply_exiting(&cfg, 0);
    assert_eq!(report["moved"], serde_json::json!([]), "{report:#}");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap_or_default()
            .contains("prod-1.0.0 still points at"),
        "{report:#}"
    );
    assert_eq!(
        registry.read_manifest_digest("selfmv/e", "1.0.0").as_ref(),
        Some(&digest)
    );
    assert_eq!(
        registry.read_manifest_digest("selfmv/e", "prod-1.0.0"),
        Some(digest)
    );
}

#[test]
fn a_no_op_rerun_of_a_move_sends_no_write() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let digest = push(&staging, "mv/k", "1.0.0");
    // Another tag of the same image keeps 1.0.0 in the source.
    let client = seed::client(&staging);
    let manifest = client.manifest_get("mv/k", "1.0.0").unwrap();
    client.manifest_put("mv/k", "keep", &manifest).unwrap();
    let cfg = config(
        &[("staging", &staging), ("prod", &prod)],
        &move_rule("staging", "prod", "mv/*", "tags = [\"*.*.*\"]\n"),
    );
    Hoist::new().config(&cfg).args(["apply"]).run().success();
    let report = apply_exiting(&cfg, 0);
    assert_eq!(report["summary"]["unchanged"], 1, "{report:#}");
    assert_eq!(report["summary"]["write_requests"], 0, "{report:#}");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap_or_default()
            .contains("keep also points at its image"),
        "{report:#}"
    );
    assert_eq!(staging.read_manifest_digest("mv/k", "1.0.0"), Some(digest));
}
