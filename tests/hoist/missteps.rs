//! What a new user gets wrong, and the straight answer hoist gives each:
//! no promotions.toml, a tag and a digest that disagree, a wrong password
//! under a glob rule, a prerelease left out, many mistakes in one file,
//! `--progress always` in a CI log, and an image broken under its tag.

use crate::apply::{apply_exiting, config};
use crate::support::seed;
use crate::support::{Hoist, TestRegistry};

/// Pushes a small image to `repository:tag`; its manifest.
fn push(registry: &TestRegistry, repository: &str, tag: &str) -> hoist::manifest::Manifest {
    seed::push_small(registry, repository, tag, &format!("{repository}-{tag}"))
}

const RULE: &str = "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/*\"]\n";

#[test]
fn apply_without_promotions_toml_stops_as_plan_does() {
    for args in [&["plan"][..], &["apply"], &["apply", "--dry-run"]] {
        let run = Hoist::new().args(args).run().code(2);
        assert_eq!(
            run.stderr.trim_end(),
            "error: no promotions.toml in this directory: pass -c FILE or set HOIST_CONFIG",
            "{args:?}"
        );
        assert!(!run.stdout.contains("Plan:"), "{args:?}: {}", run.stdout);
    }
}

#[test]
fn promote_refuses_a_tag_and_a_digest_that_disagree() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let old = push(&staging, "app", "2.0.0").digest.to_string();
    let new = push(&staging, "app", "2.1.0").digest.to_string();
    let source = format!("{}/app:2.1.0@{old}", staging.host());
    let target = format!("{}/app", prod.host());
    let run = Hoist::new()
        .args(["promote", &source, &target])
        .run()
        .code(2);
    assert!(
        run.stderr
            .contains(&format!("`app:2.1.0` is at {new}, not at {old}")),
        "{}",
        run.stderr
    );
    assert_eq!(prod.read_tags("app"), Vec::<String>::new());
    // Where they agree, the promotion goes ahead.
    let source = format!("{}/app:2.1.0@{new}", staging.host());
    Hoist::new()
        .args(["promote", &source, &target])
        .run()
        .success();
    assert_eq!(prod.read_manifest_digest("app", "2.1.0"), Some(new));
}

#[test]
fn a_wrong_password_under_a_glob_rule_is_the_credentials_error() {
    let staging = TestRegistry::builder()
        .htpasswd("alice", "right-password")
        .start();
    let prod = TestRegistry::start();
    let cfg = format!(
        "[registries.staging]\nurl = \"{}\"\nusername_env = \"S_USER\"\npassword_env = \"S_PASS\"\n\n[registries.prod]\nurl = \"{}\"\n\n{RULE}",
        staging.host(),
        prod.host()
    );
    // The image reaches the login-protected staging through hoist itself.
    push(&prod, "seed/a", "1.0.0");
    Hoist::new()
        .config(&cfg)
        .env("S_USER", "alice")
        .env("S_PASS", "right-password")
        .args(["promote", "prod/seed/a:1.0.0", "staging/apps/a"])
        .run()
        .success();
    for command in ["plan", "verify"] {
        let run = Hoist::new()
            .config(&cfg)
            .env("S_USER", "alice")
            .env("S_PASS", "wrong-password")
            .args([command])
            .run()
            .code(1);
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(
            said.contains(&format!(
                "authentication with {} failed: the registry refused the credentials from",
                staging.host()
            )),
            "{command}: {said}"
        );
        assert!(
            !said.contains("does not list its repositories"),
            "{command}: {said}"
        );
        assert!(!said.contains("wrong-password"), "{said}");
    }
    // The right password plans the rule.
    Hoist::new()
        .config(&cfg)
        .env("S_USER", "alice")
        .env("S_PASS", "right-password")
        .args(["plan"])
        .run()
        .success();
}

#[test]
fn tags_the_globs_match_but_the_rule_leaves_out_are_skipped_with_why() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push(&staging, "apps/p", "1.0.0");
    push(&staging, "apps/p", "1.2.0-rc.1");
    push(&staging, "apps/p", "0.9.0");
    push(&staging, "apps/p", "nightly");
    let cfg = config(
        &[("staging", &staging), ("prod", &prod)],
        &format!("{RULE}tags = [\"*\"]\nlatest = 1\n"),
    );
    let run = Hoist::new()
        .config(&cfg)
        .args(["plan", "--out", "plan.json"])
        .run()
        .success();
    assert!(
        run.stdout
            .contains("Plan: 1 to create, 0 to update, 0 unchanged, 0 blocked, 3 skipped."),
        "{}",
        run.stdout
    );
    let plan = run.json_file("plan.json");
    let reasons: Vec<(String, String)> = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["tag"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |tag: &str| {
        reasons
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{tag} not skipped: {reasons:?}"))
    };
    assert_eq!(
        reason("1.2.0-rc.1"),
        "a prerelease, and the rule has prerelease = false"
    );
    assert_eq!(
        reason("0.9.0"),
        "older than the 1 highest versions `latest = 1` keeps"
    );
    assert_eq!(
        reason("nightly"),
        "not a version, and the rule selects versions (`semver` or `latest`)"
    );
}

#[test]
fn check_reports_every_mistake_in_one_pass() {
    let text = "[registries.staging]\nurl = \"ftp://127.0.0.1:1\"\n\n[registries.prod]\nurl = \"http://127.0.0.1:2\"\ncolour = \"red\"\n\n\
        [[promotion]]\nname = \"a\"\nfrom = \"nosuch\"\nto = [\"prod\", \"other\"]\nrepositories = [\"apps/[*\"]\nsemver = \">>1\"\ntarget = \"x/{bogus}\"\nplatforms = [\"linux\"]\n\n\
        [[promotion]]\nname = \"b\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"b/*\"]\nlatest = 0\nmode = \"teleport\"\n";
    let run = Hoist::new().config(text).args(["check"]).run().code(2);
    let mistakes = [
        "unsupported scheme `ftp`",
        "unknown key `colour`",
        "no registry named `nosuch`",
        "no registry named `other`",
        "bad glob `apps/[*`",
        "bad semver requirement",
        "unknown template variable `bogus`",
        "`linux` is not a platform",
        "`latest` must be at least 1",
        "unknown variant `teleport`",
    ];
    for mistake in mistakes {
        assert!(run.stderr.contains(mistake), "{mistake}: {}", run.stderr);
    }
    assert!(
        run.stderr.contains(&format!("{} problems", mistakes.len())),
        "{}",
        run.stderr
    );
}

#[test]
fn progress_always_without_a_terminal_prints_steady_plain_lines() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push(&staging, "apps/g", "1.0.0");
    let cfg = config(&[("staging", &staging), ("prod", &prod)], RULE);
    // The tests' stderr is a pipe, as a CI log's is.
    let run = Hoist::new()
        .config(&cfg)
        .env("HOIST_PROGRESS_INTERVAL_MS", "20")
        .args(["apply", "--progress", "always"])
        .run()
        .success();
    assert!(
        run.stderr.contains("promoted prod/apps/g@"),
        "never prints less than `never`: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("progress: 0/1 images, 0 B of ~"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_repair_mends_an_image_broken_under_its_tag() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let manifest = push(&staging, "apps/r", "1.0.0");
    let cfg = config(&[("staging", &staging), ("prod", &prod)], RULE);
    Hoist::new().config(&cfg).args(["apply"]).run().success();
    // A layer disappears from under the promoted tag.
    let layer = manifest.view().unwrap().blobs[1].digest.to_string();
    let url = format!("{}/v2/apps/r/blobs/{layer}", prod.url());
    let deleted = prod.http_agent().delete(&url).call().unwrap();
    assert_eq!(deleted.status().as_u16(), 202);
    let run = Hoist::new().config(&cfg).args(["verify"]).run().code(1);
    assert!(run.stdout.contains("is missing"), "{}", run.stdout);
    // `apply` sees the tag at the right digest and leaves it.
    let report = apply_exiting(&cfg, 0);
    assert_eq!(report["summary"]["unchanged"], 1, "{report:#}");
    let run = Hoist::new()
        .config(&cfg)
        .args(["verify", "--repair"])
        .run()
        .success();
    assert!(
        run.stderr.contains("repaired prod/apps/r:1.0.0"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("verified 1 target tag: every one points at a complete image"),
        "{}",
        run.stdout
    );
    Hoist::new().config(&cfg).args(["verify"]).run().success();
}
