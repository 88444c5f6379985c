//! `hoist docker-promote IMAGE SOURCE TARGET`: JFrog Artifactory's docker
//! promotion (`jf rt docker-promote`) on real registries — a move by
//! default, the whole repository without `--source-tag` — and the refusal
//! to delete a source whose target write failed, for `promote --move` too.

use crate::apply::config_at;
use crate::support::cosign::{Signer, signature_tag};
use crate::support::fault_proxy::{FaultProxy, Reply, Schedule};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// Two registries, named `docker-local` and `docker-prod` in the
/// configuration as a JFrog user's repository keys are.
struct Registries {
    local: TestRegistry,
    prod: TestRegistry,
    config: String,
}

fn registries() -> Registries {
    let (local, prod) = (TestRegistry::start(), TestRegistry::start());
    let config = config_at(
        &[("docker-local", local.host()), ("docker-prod", prod.host())],
        "",
    );
    Registries {
        local,
        prod,
        config,
    }
}

/// Pushes `apps/web:TAG` for each `(tag, label)`: one image per label.
fn push_web(registry: &TestRegistry, tags: &[(&str, &str)]) -> Vec<hoist::manifest::Manifest> {
    let client = seed::client(registry);
    tags.iter()
        .map(|(tag, label)| {
            seed::push(
                client.as_ref(),
                "apps/web",
                tag,
                &seed::small_image(label, Format::Oci),
            )
        })
        .collect()
}

fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags
}

/// `--source-tag`: that tag moves, with its signature; the other tags
/// stay. `--dry-run` first shows the move and writes nothing.
#[test]
fn docker_promote_moves_one_tag_with_its_signature() {
    let r = registries();
    let images = push_web(&r.local, &[("1.0", "one"), ("2.0", "two")]);
    let client = seed::client(&r.local);
    let signature =
        Signer::load("ci").sign(client.as_ref(), "apps/web", &images[0].digest, "x", &[]);
    let line = [
        "docker-promote",
        "apps/web",
        "docker-local",
        "docker-prod",
        "--source-tag",
        "1.0",
    ];

    let dry = Hoist::new()
        .config(&r.config)
        .args(line)
        .args(["-D"])
        .run()
        .success();
    assert!(dry.stdout.contains("(move)"), "{}", dry.stdout);
    assert!(r.prod.read_tags("apps/web").is_empty());
    assert_eq!(r.local.read_tags("apps/web").len(), 3);

    let run = Hoist::new().config(&r.config).args(line).run().success();
    let sig = signature_tag(&images[0].digest);
    assert_eq!(
        sorted(r.prod.read_tags("apps/web")),
        sorted(vec!["1.0".into(), sig.clone()])
    );
    assert_eq!(
        r.prod.read_manifest_digest("apps/web", "1.0"),
        Some(images[0].digest.to_string())
    );
    assert_eq!(
        r.prod.read_manifest_digest("apps/web", &sig),
        Some(signature.digest.to_string())
    );
    assert_eq!(r.local.read_tags("apps/web"), ["2.0"]);
    assert!(
        run.stdout
            .contains(&format!("docker-prod/apps/web:1.0@{}", images[0].digest)),
        "{}",
        run.stdout
    );
}

/// No `--source-tag`: every tag of the repository moves (two tags sharing
/// an image included), and the source repository is left empty.
#[test]
fn docker_promote_moves_a_whole_repository() {
    let r = registries();
    let images = push_web(&r.local, &[("1.0", "one"), ("2.0", "two")]);
    seed::client(&r.local)
        .manifest_put("apps/web", "latest", &images[1])
        .unwrap();
    Hoist::new()
        .config(&r.config)
        .args(["docker-promote", "apps/web", "docker-local", "docker-prod"])
        .run()
        .success();
    assert_eq!(r.prod.read_tags("apps/web"), ["1.0", "2.0", "latest"]);
    for (tag, image) in [
        ("1.0", &images[0]),
        ("2.0", &images[1]),
        ("latest", &images[1]),
    ] {
        assert_eq!(
            r.prod.read_manifest_digest("apps/web", tag),
            Some(image.digest.to_string()),
            "{tag}"
        );
    }
    assert!(r.local.read_tags("apps/web").is_empty());
}

/// `--copy` keeps the source; within one registry, into another
/// repository (`--target-docker-image`), the blobs are mounted: no byte moves.
#[test]
fn docker_promote_copy_keeps_the_source_and_mounts_within_one_registry() {
    let registry = TestRegistry::start();
    let images = push_web(&registry, &[("1.0", "one"), ("2.0", "two")]);
    let run = Hoist::new()
        .args([
            "docker-promote",
            "apps/web",
            registry.host(),
            registry.host(),
            "--target-docker-image",
            "stable/web",
            "--copy=true",
            "--report",
            "report.json",
        ])
        .run()
        .success();
    assert_eq!(registry.read_tags("apps/web"), ["1.0", "2.0"]);
    assert_eq!(registry.read_tags("stable/web"), ["1.0", "2.0"]);
    for (tag, image) in [("1.0", &images[0]), ("2.0", &images[1])] {
        assert_eq!(
            registry.read_manifest_digest("stable/web", tag),
            Some(image.digest.to_string())
        );
    }
    let report = run.json_file("report.json");
    assert_eq!(report["summary"]["bytes_copied"], 0, "{report:#}");
    assert!(
        report["summary"]["blobs_mounted"].as_u64() > Some(0),
        "{report:#}"
    );
}

/// `--target-docker-image` and `--target-tag` rename the repository and the
/// tag in the target (a release candidate becomes the release); the moved
/// source tag is gone.
#[test]
fn docker_promote_renames_the_repository_and_the_tag() {
    let r = registries();
    let images = push_web(&r.local, &[("1.0-rc.1", "rc"), ("0.9", "old")]);
    let run = Hoist::new()
        .config(&r.config)
        .args([
            "docker-promote",
            "apps/web",
            "docker-local",
            "docker-prod",
            "--source-tag",
            "1.0-rc.1",
            "--target-docker-image",
            "stable/web",
            "--target-tag",
            "1.0",
        ])
        .run()
        .success();
    assert_eq!(r.prod.read_tags("stable/web"), ["1.0"]);
    assert!(r.prod.read_tags("apps/web").is_empty());
    assert_eq!(
        r.prod.read_manifest_digest("stable/web", "1.0"),
        Some(images[0].digest.to_string())
    );
    assert_eq!(r.local.read_tags("apps/web"), ["0.9"]);
    assert!(
        run.stdout
            .contains(&format!("docker-prod/stable/web:1.0@{}", images[0].digest)),
        "{}",
        run.stdout
    );
}

/// A proxy in front of `registry` that refuses every manifest `PUT`, as a
/// registry whose repository is read-only (or full) does.
fn refusing_manifest_writes(registry: &TestRegistry) -> FaultProxy {
    let proxy = FaultProxy::start(registry.host(), Schedule::none());
    proxy.answer(|method, path| {
        (method == "PUT" && path.contains("/manifests/")).then(|| {
            Reply::status(403)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DENIED","message":"repository is read-only"}]}"#)
        })
    });
    proxy
}

/// The target does not end up holding the image: the move is refused, the
/// source tag stays where it was, and the run fails saying why.
#[test]
fn docker_promote_keeps_the_source_when_the_target_write_fails() {
    let (local, prod) = (TestRegistry::start(), TestRegistry::start());
    let images = push_web(&local, &[("1.0", "one")]);
    let proxy = refusing_manifest_writes(&prod);
    let run = Hoist::new()
        .args([
            "docker-promote",
            "apps/web",
            local.host(),
            &proxy.host(),
            "--source-tag",
            "1.0",
        ])
        .run();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_refused_and_kept(&run, &local, &prod, &images[0]);
}

/// `promote --move` keeps its source the same way when the target write fails.
#[test]
fn promote_move_keeps_the_source_when_the_target_write_fails() {
    let (local, prod) = (TestRegistry::start(), TestRegistry::start());
    let images = push_web(&local, &[("1.0", "one")]);
    let proxy = refusing_manifest_writes(&prod);
    let run = Hoist::new()
        .args([
            "promote",
            &format!("{}/apps/web:1.0", local.host()),
            &format!("{}/apps/web", proxy.host()),
            "--move",
        ])
        .run();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_refused_and_kept(&run, &local, &prod, &images[0]);
}

/// The source still has `apps/web:1.0` at `image`, the target has no tag,
/// and the output says that the write failed and the source tag was kept.
fn assert_refused_and_kept(
    run: &crate::support::hoist::Run,
    local: &TestRegistry,
    prod: &TestRegistry,
    image: &hoist::manifest::Manifest,
) {
    assert_eq!(
        local.read_manifest_digest("apps/web", "1.0"),
        Some(image.digest.to_string())
    );
    assert_eq!(local.read_tags("apps/web"), ["1.0"]);
    assert!(prod.read_tags("apps/web").is_empty());
    let shown = format!("{}{}", run.stdout, run.stderr);
    assert!(shown.contains("403") || shown.contains("DENIED"), "{shown}");
    assert!(
        shown.contains("kept")
            && shown.contains("apps/web:1.0")
            && shown.contains("not every target has it"),
        "{shown}"
    );
}

/// Artifactory serves each repository key under its own path: SOURCE and
/// TARGET given as those URLs work, every request going below the path; a
/// `jf` line's `--flag=value` spellings and `--server-id` are accepted.
#[test]
fn docker_promote_takes_artifactory_repository_urls() {
    let (local, prod) = (TestRegistry::start(), TestRegistry::start());
    let images = push_web(&local, &[("1.0", "one"), ("2.0", "two")]);
    let source = FaultProxy::start(local.host(), Schedule::none());
    source.serve_under("/artifactory/api/docker/docker-local");
    let target = FaultProxy::start(prod.host(), Schedule::none());
    target.serve_under("/artifactory/api/docker/docker-prod");
    let source_url = format!(
        "http://{}/artifactory/api/docker/docker-local",
        source.host()
    );
    let target_url = format!(
        "http://{}/artifactory/api/docker/docker-prod",
        target.host()
    );
    let run = Hoist::new()
        .args([
            "docker-promote",
            "apps/web",
            &source_url,
            &target_url,
            "--source-tag=2.0",
            "--copy=false",
            "--server-id=my-artifactory",
        ])
        .run()
        .success();
    assert_eq!(prod.read_tags("apps/web"), ["2.0"]);
    assert_eq!(
        prod.read_manifest_digest("apps/web", "2.0"),
        Some(images[1].digest.to_string())
    );
    assert_eq!(local.read_tags("apps/web"), ["1.0"]);
    assert!(
        run.stdout
            .contains(&format!("{target_url}//apps/web:2.0@{}", images[1].digest)),
        "{}",
        run.stdout
    );
    // The proxies answer 404 to requests outside their prefix: the source
    // tag was deleted below it, once the target had the image.
    assert!(
        source.seen().iter().any(|s| s.method == "DELETE"),
        "{:?}",
        source.seen()
    );
}

/// Mistakes in the command line are usage errors (exit 2) that say what to
/// change, before any registry is contacted.
#[test]
fn docker_promote_usage_errors_say_what_to_change() {
    let cases: [(&[&str], &str); 3] = [
        (&["--target-tag", "1.0"], "--source-tag"),
        (
            &["--source-tag", "1.0", "--target-tag", "1.0"],
            "the source itself",
        ),
        (&["--target-docker-image", "web:1.0"], "--target-tag"),
    ];
    for (extra, expected) in cases {
        let run = Hoist::new()
            .args(["docker-promote", "apps/web", "127.0.0.1:1", "127.0.0.1:1"])
            .args(extra)
            .run();
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{extra:?}: {}", run.stderr);
    }
}
