//! A registry that serves manifests but no tag list (`tags/list` answers
//! 404 with an empty body, where a missing repository's 404 says
//! `NAME_UNKNOWN`): its repositories are not empty. A target tag already
//! there is found by its own HEAD, never overwritten as new; a re-run writes
//! nothing; `verify` passes; a source repository promotes the tags its rule
//! names or pins, and a rule selecting by glob there fails by name.

use crate::apply::{apply_exiting, config_at};
use crate::support::fault_proxy::{FaultProxy, Schedule};
use crate::support::personality::without_tag_list;
use crate::support::seed;
use crate::support::{Hoist, TestRegistry};

/// Pushes a small image to `repository:tag`; its digest.
fn push(registry: &TestRegistry, repository: &str, tag: &str, label: &str) -> String {
    seed::push_small(registry, repository, tag, label)
        .digest
        .to_string()
}

#[test]
fn a_target_without_a_tag_list_keeps_a_planted_tag_and_reruns_write_nothing() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push(&staging, "apps/x", "1.0.0", "new-1.0.0");
    let released = push(&staging, "apps/x", "1.1.0", "new-1.1.0");
    // Another image already holds 1.0.0 in the target.
    let planted = push(&prod, "apps/x", "1.0.0", "planted");
    let front = FaultProxy::start(prod.host(), Schedule::none());
    without_tag_list(&front);
    let cfg = config_at(
        &[("staging", staging.host()), ("prod", &front.host())],
        "[[promotion]]\nname = \"x\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/x\"]\n",
    );
    let plan = Hoist::new().config(&cfg).args(["plan"]).run().success();
    assert!(
        plan.stdout
            .lines()
            .any(|l| l.contains("! 1.0.0") && l.contains("blocked")),
        "{}",
        plan.stdout
    );
    let report = apply_exiting(&cfg, 1);
    assert_eq!(report["summary"]["promoted"], 1, "{report:#}");
    assert_eq!(report["summary"]["blocked"], 1, "{report:#}");
    assert_eq!(
        prod.read_manifest_digest("apps/x", "1.0.0"),
        Some(planted),
        "the planted tag survives"
    );
    assert_eq!(prod.read_manifest_digest("apps/x", "1.1.0"), Some(released));
    // A re-run finds 1.1.0 by its HEAD: nothing to write.
    let report = apply_exiting(&cfg, 1);
    assert_eq!(report["summary"]["write_requests"], 0, "{report:#}");
    assert_eq!(report["summary"]["unchanged"], 1, "{report:#}");
    // The promoted tag verifies; a rule over it alone plans no change.
    let only = cfg.replace(
        "repositories = [\"apps/x\"]\n",
        "repositories = [\"apps/x\"]\ntags = [\"1.1.0\"]\n",
    );
    let run = Hoist::new().config(&only).args(["verify"]).run().success();
    assert!(
        run.stdout.contains("verified 1 target tag"),
        "{}",
        run.stdout
    );
    Hoist::new()
        .config(&only)
        .args(["plan", "--detailed-exitcode"])
        .run()
        .success();
}

#[test]
fn a_source_without_a_tag_list_promotes_named_and_pinned_tags_and_fails_globs() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let one = push(&staging, "apps/s", "1.0.0", "s-1.0.0");
    let two = push(&staging, "apps/s", "2.0.0", "s-2.0.0");
    let front = FaultProxy::start(staging.host(), Schedule::none());
    without_tag_list(&front);
    let registries = [("staging", front.host()), ("prod", prod.host().to_string())];
    let registries: Vec<(&str, &str)> = registries.iter().map(|(n, h)| (*n, h.as_str())).collect();
    let named = config_at(
        &registries,
        &format!(
            "[[promotion]]\nname = \"named\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/s\"]\ntags = [\"1.0.0\"]\n\n[[promotion]]\nname = \"pinned\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/s\"]\ntarget = \"pinned/s\"\ntags = [\"nothing\"]\npin = {{ \"2.0.0\" = \"{two}\" }}\n"
        ),
    );
    Hoist::new().config(&named).args(["apply"]).run().success();
    assert_eq!(prod.read_manifest_digest("apps/s", "1.0.0"), Some(one));
    assert_eq!(prod.read_manifest_digest("pinned/s", "2.0.0"), Some(two));
    let globbed = config_at(
        &registries,
        "[[promotion]]\nname = \"globbed\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/s\"]\ntags = [\"*.*.*\"]\n",
    );
    for command in ["plan", "apply", "verify"] {
        let run = Hoist::new().config(&globbed).args([command]).run().code(1);
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(
            said.contains("rule `globbed`")
                && said.contains("does not list the tags of `apps/s`")
                && said.contains("cannot be matched in `apps/s` of registry `staging`"),
            "{command}: {said}"
        );
    }
}

#[test]
fn a_missing_source_repository_is_named_with_its_registry() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let source = format!("{}/nosuch:1.0.0", staging.host());
    let target = format!("{}/nosuch", prod.host());
    let run = Hoist::new()
        .args(["promote", &source, &target])
        .run()
        .code(1);
    assert!(!run.stderr.contains("/v2/"), "no URL: {}", run.stderr);
    let run = Hoist::new()
        .args(["ls", &format!("{}/nosuch", staging.host())])
        .run()
        .code(1);
    assert!(
        run.stderr.contains(&format!(
            "repository `nosuch` on {} not found",
            staging.host()
        )),
        "{}",
        run.stderr
    );
}
