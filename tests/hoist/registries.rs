//! Registries that bend the Distribution API, played by a proxy in front of a
//! real docker-registry: what hoist does where a registry refuses or ignores
//! part of the protocol (docs/registries.md).

use crate::apply::config_at;
use crate::support::fault_proxy::{FaultProxy, Reply, Schedule};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// Harbor, Artifact Registry, Nexus and ECR without BLOB_MOUNTING refuse a
/// cross-repository mount with one of these statuses: each refused mount
/// becomes an upload, and every image lands.
#[test]
fn a_refused_mount_falls_back_to_an_upload() {
    for status in [401, 403, 404, 405] {
        let registry = TestRegistry::start();
        let client = seed::client(&registry);
        let mut digests = Vec::new();
        for name in ["web", "api"] {
            let image = seed::small_image(name, Format::Oci);
            digests.push(
                seed::push(client.as_ref(), &format!("staging/{name}"), "1.0", &image).digest,
            );
        }
        let proxy = FaultProxy::start(registry.host(), Schedule::none());
        proxy.answer(move |method, path| {
            (method == "POST" && path.contains("mount=")).then(|| Reply::status(status))
        });
        let rules = "[[promotion]]\nname = \"stable\"\nfrom = \"reg\"\nto = \"reg\"\n\
                     repositories = [\"staging/*\"]\ntarget = \"stable/{name}\"\n";
        let run = Hoist::new()
            .config(&config_at(&[("reg", &proxy.host())], rules))
            .args(["apply", "--report", "report.json"])
            .run();
        assert_eq!(run.code, 0, "{status}: {}", run.stderr);
        let report = run.json_file("report.json");
        let summary = &report["summary"];
        assert_eq!(summary["promoted"], 2, "{status}: {summary:#}");
        assert_eq!(summary["blobs_mounted"], 0, "{status}: {summary:#}");
        assert!(summary["blobs_copied"].as_u64().unwrap() > 0, "{summary:#}");
        let mounts = proxy
            .seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path.contains("mount="))
            .count();
        assert!(mounts > 0, "{status}: a mount was tried");
        // Read back from the registry itself, not through the proxy.
        for (name, digest) in ["web", "api"].iter().zip(&digests) {
            let stored = registry.read_manifest_digest(&format!("stable/{name}"), "1.0");
            assert_eq!(
                stored.as_deref(),
                Some(digest.to_string().as_str()),
                "{status}"
            );
        }
    }
}

/// Artifactory and Nexus serve the API under a path
/// (`/artifactory/api/docker/REPO-KEY/v2/…`, `/repository/NAME/v2/…`), and
/// their `Location` and `Link` headers carry it: a `url` with that path works
/// for listing (pages of one entry, so every `Link` is followed), reading,
/// uploading (each `Location`) and tagging.
#[test]
fn a_registry_under_a_path_prefix_works_for_every_request() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    let mut digests = Vec::new();
    for name in ["web", "api", "db"] {
        let image = seed::small_image(name, Format::Oci);
        digests.push(seed::push(client.as_ref(), &format!("apps/{name}"), "1.0", &image).digest);
    }
    let source = FaultProxy::start(staging.host(), Schedule::none());
    source.serve_under("/artifactory/api/docker/docker-staging");
    let target = FaultProxy::start(prod.host(), Schedule::none());
    target.serve_under("/repository/docker-hosted");
    let config = format!(
        "[registries.staging]\nurl = \"http://{}/artifactory/api/docker/docker-staging\"\n\n\
         [registries.prod]\nurl = \"http://{}/repository/docker-hosted/\"\n\n\
         [[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/*\"]\n",
        source.host(),
        target.host()
    );
    let run = Hoist::new()
        .config(&config)
        .env("HOIST_PAGE_SIZE", "1")
        .args(["apply"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (name, digest) in ["web", "api", "db"].iter().zip(&digests) {
        let stored = prod.read_manifest_digest(&format!("apps/{name}"), "1.0");
        assert_eq!(
            stored.as_deref(),
            Some(digest.to_string().as_str()),
            "{name}"
        );
    }
    // Every request went below the prefix (the proxy answers 404 to others),
    // and the catalog took one page per repository.
    let catalog_pages = source
        .seen()
        .iter()
        .filter(|s| s.path.contains("/v2/_catalog"))
        .count();
    assert_eq!(catalog_pages, 3, "{:?}", source.seen());
    // `hoist ls URL` lists the catalog; `URL//REPOSITORY` the tags.
    let url = format!(
        "http://{}/artifactory/api/docker/docker-staging",
        source.host()
    );
    let ls = Hoist::new().args(["ls", &url]).run().success();
    assert_eq!(
        ls.stdout.lines().collect::<Vec<_>>(),
        ["apps/api", "apps/db", "apps/web"]
    );
    let ls = Hoist::new()
        .args(["ls", &format!("{url}//apps/web")])
        .run()
        .success();
    assert_eq!(ls.stdout.trim(), "1.0");
}
