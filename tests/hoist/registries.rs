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
