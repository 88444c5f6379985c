//! Fewer bytes and requests (issue 17): layers a target already holds from
//! an earlier run are mounted into new repositories, not uploaded again,
//! and planning reads a manifest it will copy with one GET.

use crate::apply::{apply, config_at, seed_sharing};
use crate::support::fault_proxy::{FaultProxy, Schedule};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// Bytes of each layer; each image has two shared base layers and one of its own.
const LAYER: u64 = 64 * 1024;

#[test]
fn a_second_run_mounts_base_layers_from_repositories_of_the_first() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    seed_sharing(&staging, "apps/r", (20, 2), (3, 2, LAYER));
    let config = |repositories: &str| {
        config_at(
            &[("staging", staging.host()), ("prod", prod.host())],
            &format!(
                "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n\
                 repositories = [{repositories}]\n"
            ),
        )
    };
    let first: Vec<String> = (0..10).map(|i| format!("\"apps/r{i:02}\"")).collect();
    let first = apply(&config(&first.join(", ")), &[]);
    assert_eq!(first["summary"]["promoted"], 10, "{first:#}");

    // The ten again (unchanged) and ten new repositories.
    let second = apply(&config("\"apps/*\""), &[]);
    let summary = &second["summary"];
    assert_eq!(summary["promoted"], 10, "{summary:#}");
    assert_eq!(summary["unchanged"], 10, "{summary:#}");
    // Only each new image's own layer and config cross the network; the
    // two base layers are mounted into each of the ten new repositories.
    assert_eq!(summary["blobs_copied"], 20, "{summary:#}");
    assert_eq!(summary["blobs_mounted"], 20, "{summary:#}");
    let bytes = summary["bytes_copied"].as_u64().unwrap();
    assert!(
        (10 * LAYER..10 * LAYER + 20_000).contains(&bytes),
        "no base-layer bytes uploaded: {bytes}"
    );
}

/// A target repository that held no tag when planned is taken to lack
/// every blob: each upload there opens with a mount from the repository
/// itself (one POST, which a registry that mounts answers with the blob if
/// it is there after all), never a HEAD first. A layer an interrupted run
/// left in one of them is found by that mount and not sent again.
#[test]
fn uploads_into_new_repositories_open_with_a_mount_not_a_head() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    seed_sharing(&staging, "apps/r", (3, 1), (3, 1, LAYER));
    // What an interrupted run left: apps/r0's own last layer, no tag.
    let (source, target) = (seed::client(&staging), seed::client(&prod));
    let manifest = source.manifest_get("apps/r0", "1.0.0").expect("manifest");
    let left = manifest.view().unwrap().blobs.last().unwrap().clone();
    let mut blob = source
        .blob_get("apps/r0", &left.digest, left.size)
        .expect("blob");
    target
        .blob_put("apps/r0", &left.digest, left.size, &mut blob, None)
        .expect("left behind");
    let proxy = FaultProxy::start(prod.host(), Schedule::none());
    let config = config_at(
        &[("staging", staging.host()), ("prod", &proxy.host())],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/*\"]\n",
    );
    let plan = |config: &str| {
        let run = Hoist::new()
            .config(config)
            .args(["plan", "--out", "plan.json"]);
        run.run().success().json_file("plan.json")
    };
    let repositories = |plan: &serde_json::Value| plan["new_repositories"].clone();
    let new: Vec<serde_json::Value> = (0..3)
        .map(|i| serde_json::json!({"registry": "prod", "repository": format!("apps/r{i}")}))
        .collect();
    assert_eq!(repositories(&plan(&config)), serde_json::json!(new));

    let summary = apply(&config, &[])["summary"].clone();
    assert_eq!(summary["promoted"], 3, "{summary:#}");
    // A base layer, then two layers and a config of each image's own: 10
    // blobs. The base crosses once and is mounted twice; the layer left is
    // found there.
    assert_eq!(summary["blobs_present"], 1, "{summary:#}");
    assert_eq!(summary["blobs_mounted"], 2, "{summary:#}");
    assert_eq!(summary["blobs_copied"], 9, "{summary:#}");
    let blob_heads = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "HEAD" && s.path.contains("/blobs/"))
        .count();
    assert_eq!(blob_heads, 0, "no blob HEAD into a new repository");
    crate::apply::assert_all_tags_complete(&prod);
    // Once written, they are new no more.
    assert_eq!(repositories(&plan(&config)), serde_json::Value::Null);
}

/// A source tag whose target tag is absent is resolved with the GET its
/// copy needs anyway, not a HEAD first (issue 17): planning into an empty
/// target reads each manifest once and HEADs none; once the target has
/// the tags, planning HEADs them (a GET counts as a pull on some
/// registries) and GETs none.
#[test]
fn planning_gets_manifests_it_will_copy_and_heads_the_rest() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    for repository in ["apps/a", "apps/b", "apps/c"] {
        for tag in ["1.0.0", "1.1.0"] {
            let label = format!("{repository}:{tag}");
            seed::push(
                client.as_ref(),
                repository,
                tag,
                &seed::small_image(&label, Format::Oci),
            );
        }
    }
    let proxy = FaultProxy::start(staging.host(), Schedule::none());
    let config = config_at(
        &[("staging", &proxy.host()), ("prod", prod.host())],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/*\"]\n",
    );
    let manifest_reads = |proxy: &FaultProxy, method: &str| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.method == method && s.path.contains("/manifests/"))
            .count()
    };
    Hoist::new().config(&config).args(["plan"]).run().success();
    assert_eq!(manifest_reads(&proxy, "HEAD"), 0);
    assert_eq!(manifest_reads(&proxy, "GET"), 6);

    Hoist::new().config(&config).args(["apply"]).run().success();
    let before = (
        manifest_reads(&proxy, "HEAD"),
        manifest_reads(&proxy, "GET"),
    );
    Hoist::new().config(&config).args(["plan"]).run().success();
    let after = (
        manifest_reads(&proxy, "HEAD"),
        manifest_reads(&proxy, "GET"),
    );
    assert_eq!((after.0 - before.0, after.1 - before.1), (6, 0));
}

/// Target repositories are listed beside their source's tags, before the
/// rule's tag selection is known; one that no selected tag writes to is
/// left out of the plan, so a target refusing to list it (403, as some
/// registries answer for a repository that does not exist) fails nothing.
#[test]
fn a_target_listing_no_selected_tag_needs_fails_nothing() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    for (repository, tag) in [("apps/a", "1.0.0"), ("apps/b", "2.0.0")] {
        let image = seed::small_image(&format!("{repository}:{tag}"), Format::Oci);
        seed::push(client.as_ref(), repository, tag, &image);
    }
    let proxy = FaultProxy::start(prod.host(), Schedule::none());
    proxy.answer(|method, path| {
        (method == "GET" && path.starts_with("/v2/apps/b/tags/list"))
            .then(|| crate::support::fault_proxy::Reply::status(403))
    });
    let config = config_at(
        &[("staging", staging.host()), ("prod", &proxy.host())],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/*\"]\ntags = [\"1.*\"]\n",
    );
    let run = Hoist::new().config(&config).args(["plan"]).run().success();
    assert!(run.stdout.contains("apps/a"), "{}", run.stdout);
    assert!(!run.stdout.contains("apps/b"), "{}", run.stdout);
}
