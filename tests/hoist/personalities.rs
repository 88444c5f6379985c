//! More registry personalities (docs/registries.md): Quay's and ACR's own
//! paging, Nexus's content-type rule, a Docker-Hub-like token service. Each
//! is a proxy (or token server) in front of a real docker-registry, and the
//! target is read back from the registry itself.

use crate::support::fault_proxy::{FaultProxy, Reply, Schedule};
use crate::support::paging::{self, Paging};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

const REPOSITORIES: [&str; 5] = ["apps/a", "apps/b", "apps/c", "apps/d", "apps/e"];
const TAGS: [&str; 5] = ["1.0", "1.1", "2.0", "2.1", "latest"];

/// Pushes every tag of [`TAGS`] in every repository of [`REPOSITORIES`]
/// (one image per repository) and returns the digests by repository.
fn seed_listings(registry: &TestRegistry) -> Vec<String> {
    let client = seed::client(registry);
    REPOSITORIES
        .iter()
        .map(|repository| {
            let image = seed::small_image(repository, Format::Oci);
            let mut digest = String::new();
            for tag in TAGS {
                digest = seed::push(client.as_ref(), repository, tag, &image)
                    .digest
                    .to_string();
            }
            digest
        })
        .collect()
}

/// Quay clamps pages and continues them with opaque `next_page` tokens; ACR
/// ignores `n` and pages by its own size with `last=`. Source and target both
/// page that way (pages of 2, so every listing takes several): every
/// repository and tag is found and promoted, the target's tags are read
/// through its pages, and `hoist ls` lists all of them.
#[test]
fn listings_paged_by_the_registry_are_followed_as_given() {
    for paging in [Paging::Quay { size: 2 }, Paging::Acr { size: 2 }] {
        let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
        let digests = seed_listings(&staging);
        let source = FaultProxy::start(staging.host(), Schedule::none());
        paging::page_listings(&source, staging.host(), paging);
        let target = FaultProxy::start(prod.host(), Schedule::none());
        paging::page_listings(&target, prod.host(), paging);
        let config = crate::apply::config_at(
            &[("staging", &source.host()), ("prod", &target.host())],
            "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"apps/*\"]\n",
        );
        let run = Hoist::new().config(&config).args(["apply"]).run();
        assert_eq!(run.code, 0, "{paging:?}: {}", run.stderr);
        for (repository, digest) in REPOSITORIES.iter().zip(&digests) {
            let mut tags = prod.read_tags(repository);
            tags.sort();
            assert_eq!(tags, TAGS, "{paging:?} {repository}");
            assert_eq!(
                prod.read_manifest_digest(repository, "2.1").as_deref(),
                Some(digest.as_str())
            );
        }
        // Three catalog pages of 2 for 5 repositories; each listing went
        // page by page, and no request was refused.
        let seen = source.seen();
        let catalog = seen.iter().filter(|s| s.path.starts_with("/v2/_catalog"));
        assert_eq!(catalog.count(), 3, "{paging:?}: {seen:?}");
        // Once applied, a second plan reads the target's paged tags and
        // finds everything in place.
        let plan = Hoist::new()
            .config(&config)
            .args(["plan", "--detailed-exitcode"])
            .run();
        assert_eq!(plan.code, 0, "{paging:?}: {}{}", plan.stdout, plan.stderr);
        let ls = Hoist::new()
            .args(["ls", &format!("{}/apps/c", source.host())])
            .run()
            .success();
        assert_eq!(ls.lines(), TAGS, "{paging:?}");
    }
}

/// Nexus refuses an upload body sent without `Content-Type:
/// application/octet-stream`. Monolithic and chunked uploads both carry it,
/// so the images land.
#[test]
fn uploads_carry_the_content_type_nexus_requires() {
    for settings in ["", "upload_chunk_size = 2048"] {
        let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
        let client = seed::client(&staging);
        let image = seed::small_image("web", Format::Oci);
        let digest = seed::push(client.as_ref(), "apps/web", "1.0", &image).digest;
        let target = FaultProxy::start(prod.host(), Schedule::none());
        target.answer_seeing(|request| {
            let uploading = request.path.contains("/blobs/uploads/")
                && (request.method == "PATCH" || request.body_len > 0);
            let typed = request.header("content-type") == Some("application/octet-stream");
            (uploading && !typed).then(|| {
                Reply::status(400)
                    .header("Content-Type", "application/json")
                    .body(r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"blob upload invalid: Content-Type must be application/octet-stream"}]}"#)
            })
        });
        let config = format!(
            "[registries.staging]\nurl = \"{}\"\n\n[registries.prod]\nurl = \"{}\"\n{settings}\n\n\
             [[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n\
             repositories = [\"apps/web\"]\n",
            staging.host(),
            target.host()
        );
        let run = Hoist::new().config(&config).args(["apply"]).run();
        assert_eq!(run.code, 0, "{settings}: {}", run.stderr);
        assert_eq!(
            prod.read_manifest_digest("apps/web", "1.0"),
            Some(digest.to_string()),
            "{settings}"
        );
        let seen = target.seen();
        let bodies = seen
            .iter()
            .filter(|s| matches!(s.method.as_str(), "PATCH" | "PUT") && s.path.contains("/blobs/"));
        assert!(bodies.count() > 0, "{settings}: {seen:?}");
        if !settings.is_empty() {
            assert!(
                seen.iter().any(|s| s.method == "PATCH"),
                "{settings}: chunked"
            );
        }
    }
}

/// Docker Hub: bearer tokens from a separate token service for service
/// `registry.docker.io`, anonymous pulls granted, official images under
/// `library/`, no catalog for anonymous callers. Pulling `library/nginx`
/// anonymously asks that service for exactly `repository:library/nginx:pull`
/// and promotes the image; a rule naming the repository never asks for the
/// catalog. (`docker.io/nginx:1.27` → `registry-1.docker.io`, `library/nginx`
/// is the reference and endpoint unit tests' part.)
#[test]
fn a_docker_hub_like_token_service_serves_anonymous_pulls() {
    let staging = TestRegistry::start();
    let image = seed::small_image("nginx", Format::Docker);
    let digest = seed::push(seed::client(&staging).as_ref(), "nginx", "1.27", &image).digest;
    let hub = TestRegistry::builder()
        .token_auth("hubuser", "hubpass")
        .token_service("registry.docker.io")
        .start();
    // Publish into the hub with its credentials (push needs them).
    Hoist::new()
        .config(&format!(
            "[registries.src]\nurl = \"{}\"\n\n[registries.hub]\nurl = \"{}\"\n\
             username_env = \"HUB_USER\"\npassword_env = \"HUB_PASSWORD\"\n",
            staging.host(),
            hub.host()
        ))
        .env("HUB_USER", "hubuser")
        .env("HUB_PASSWORD", "hubpass")
        .args(["promote", "src/nginx:1.27", "hub/library/nginx"])
        .run()
        .success();
    let tokens = hub.token_server().expect("token server");
    let before = tokens.scopes_seen().len();

    // Anonymous, as a pipeline mirroring official images runs.
    let mirror = TestRegistry::start();
    let config = crate::apply::config_at(
        &[("hub", hub.host()), ("mirror", mirror.host())],
        "[[promotion]]\nname = \"official\"\nfrom = \"hub\"\nto = \"mirror\"\n\
         repositories = [\"library/nginx\"]\ntags = [\"1.27\"]\ntarget = \"hub/{path}\"\n",
    );
    let run = Hoist::new().config(&config).args(["apply"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        mirror.read_manifest_digest("hub/library/nginx", "1.27"),
        Some(digest.to_string())
    );
    let scopes = tokens.scopes_seen()[before..].to_vec();
    assert!(
        scopes.iter().all(|s| s == "repository:library/nginx:pull"),
        "{scopes:?}"
    );
    assert!(!scopes.is_empty());
    // One token serves every read of the repository.
    assert_eq!(scopes.len(), 1, "{scopes:?}");

    // `hoist promote` with a reference to the hub's official image, anonymously.
    let run = Hoist::new()
        .args([
            "promote",
            &format!("{}/library/nginx:1.27", hub.host()),
            &format!("{}/again/nginx", mirror.host()),
        ])
        .run()
        .success();
    assert!(run.stdout.contains(&digest.to_string()), "{}", run.stdout);
    assert_eq!(
        mirror.read_manifest_digest("again/nginx", "1.27"),
        Some(digest.to_string())
    );
}

/// GitLab can answer the referrers fallback tag `sha256-<hex>` with the
/// image it names (oras-go issue 1396): that tag is not an artifact attached
/// to the image. The plan skips it with the reason, the image and its real
/// `.sig` land, and the target gets no `sha256-<hex>` tag.
#[test]
fn a_fallback_tag_resolving_to_its_subject_is_not_carried() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let subject = seed::push(
        client.as_ref(),
        "apps/web",
        "1.0",
        &seed::small_image("web", Format::Oci),
    );
    let stem = format!("sha256-{}", subject.digest.hex());
    let signature = format!("{stem}.sig");
    // The tags exist in the registry (GitLab lists them) …
    let sig = seed::push(
        client.as_ref(),
        "apps/web",
        &signature,
        &seed::small_image("sig", Format::Oci),
    );
    seed::push(
        client.as_ref(),
        "apps/web",
        &stem,
        &seed::small_image("referrers", Format::Oci),
    );
    // … but reading `sha256-<hex>` answers with the subject itself.
    let source = FaultProxy::start(staging.host(), Schedule::none());
    let (path, answer) = (format!("/v2/apps/web/manifests/{stem}"), subject.clone());
    source.answer(move |method, asked| {
        (matches!(method, "GET" | "HEAD") && asked == path).then(|| {
            Reply::status(200)
                .header("Content-Type", &answer.media_type)
                .header("Docker-Content-Digest", &answer.digest)
                .body(answer.bytes.clone())
        })
    });
    let config = crate::apply::config_at(
        &[("staging", &source.host()), ("prod", prod.host())],
        "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/web\"]\ntags = [\"1.0\"]\n",
    );
    let plan = Hoist::new().config(&config).args(["plan"]).run().success();
    let skipped = plan
        .stdout
        .lines()
        .find(|l| l.contains(&stem) && !l.contains(".sig"))
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    assert!(skipped.contains("resolves to its subject"), "{skipped}");
    Hoist::new().config(&config).args(["apply"]).run().success();
    assert_eq!(
        prod.read_manifest_digest("apps/web", "1.0"),
        Some(subject.digest.to_string())
    );
    assert_eq!(
        prod.read_manifest_digest("apps/web", &signature),
        Some(sig.digest.to_string())
    );
    let mut tags = prod.read_tags("apps/web");
    tags.sort();
    assert_eq!(tags, ["1.0".to_string(), signature]);
}
