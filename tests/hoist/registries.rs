//! Registries that bend the Distribution API, played by a proxy in front of a
//! real docker-registry: what hoist does where a registry refuses or ignores
//! part of the protocol (docs/registries.md).

use std::collections::BTreeMap;

use crate::apply::{config_at, image_with_base};
use crate::support::fault_proxy::{FaultProxy, Reply, Schedule};
use crate::support::personality::{NoCatalog, with_empty_catalog, without_catalog};
use crate::support::personality_writes::{
    MANIFEST_INVALID_BODY, ManifestRefusal, lying_blob_head, repositories_must_exist,
};
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
            .args(["--jobs", "1", "apply", "--report", "report.json"])
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
        // One refusal is enough: the registry is not asked to mount again.
        assert_eq!(mounts, 1, "{status}: {:?}", proxy.seen());
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

const MIB: usize = 1024 * 1024;

/// One image with a `size`-byte layer and a small one, pushed to `staging`.
fn image_with_layer_of(staging: &TestRegistry, size: u64) -> hoist::digest::Digest {
    let mut image = seed::small_image("big", Format::Oci);
    image.layers.push(seed::LayerSpec { size, seed: 77 });
    seed::push(seed::client(staging).as_ref(), "apps/big", "1.0", &image).digest
}

/// `apply` of `apps/big` from `staging` to a target reached through `proxy`;
/// `target_settings` go into the target's `[registries.prod]`.
fn apply_big(
    staging: &TestRegistry,
    proxy: &FaultProxy,
    target_settings: &str,
) -> crate::support::hoist::Run {
    let config = format!(
        "[registries.staging]\nurl = \"{}\"\n\n[registries.prod]\nurl = \"{}\"\n{target_settings}\n\n\
         [[promotion]]\nname = \"big\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/big\"]\n",
        staging.host(),
        proxy.host()
    );
    Hoist::new().config(&config).args(["apply"]).run()
}

/// A request's `Content-Length` (0 without one).
fn body_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let l = l.to_ascii_lowercase();
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// The body lengths of a proxy's requests with this method, by upload session.
fn body_lengths(proxy: &FaultProxy, method: &str) -> Vec<(String, usize)> {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == method)
        .map(|s| {
            let length = s
                .head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let session = s.path.split('?').next().unwrap_or("").to_string();
            (session, length)
        })
        .collect()
}

/// GHCR answers 413 to a `PATCH` or `PUT` body over 4 MiB: the monolithic
/// `PUT` turns into chunks, smaller after each 413 until the registry takes
/// them, and no body over the cap is sent once it is learnt. With a large
/// `upload_chunk_size` configured the same happens from the first chunk.
#[test]
fn bodies_over_a_registry_cap_are_sent_in_smaller_chunks() {
    let staging = TestRegistry::start();
    let digest = image_with_layer_of(&staging, 9 * MIB as u64);
    for configured in ["", "upload_chunk_size = 33554432"] {
        let prod = TestRegistry::start();
        let proxy = FaultProxy::start(prod.host(), Schedule::none());
        proxy.answer_sized(|method, _, length| {
            (matches!(method, "PUT" | "PATCH") && length > 4 * MIB).then(|| Reply::status(413))
        });
        let run = apply_big(&staging, &proxy, configured);
        assert_eq!(run.code, 0, "{configured}: {}", run.stderr);
        assert_eq!(
            prod.read_manifest_digest("apps/big", "1.0"),
            Some(digest.to_string())
        );
        let bodies: Vec<usize> = proxy
            .seen()
            .iter()
            .filter(|s| matches!(s.method.as_str(), "PUT" | "PATCH"))
            .map(|s| body_length(&s.head))
            .collect();
        // Refused at least once; once the cap is learnt, no body over it is
        // sent again, and the blob goes up in bodies under it.
        let last_refused = bodies.iter().rposition(|l| *l > 4 * MIB);
        let after = &bodies[last_refused.map_or(bodies.len(), |i| i + 1)..];
        assert!(last_refused.is_some(), "{configured}: {bodies:?}");
        assert!(
            after.iter().all(|l| *l <= 4 * MIB),
            "{configured}: {bodies:?}"
        );
        assert!(
            after.iter().sum::<usize>() >= 9 * MIB,
            "{configured}: {bodies:?}"
        );
    }
}

/// ECR: a monolithic `PUT` is refused, `OCI-Chunk-Min-Length` is announced
/// when an upload opens, every chunk but the last must reach it, and a
/// `PATCH` answers 201. The blob lands; every chunk but the last of each
/// upload is at least the announced minimum, even with a smaller
/// `upload_chunk_size` configured.
#[test]
fn ecr_upload_rules_are_followed() {
    let min = 5 * MIB;
    for configured in ["", "upload_chunk_size = 1048576"] {
        let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
        let digest = image_with_layer_of(&staging, 12 * MIB as u64);
        let proxy = FaultProxy::start(prod.host(), Schedule::none());
        proxy.answer_sized(|method, path, length| {
            (method == "PUT" && path.contains("digest=") && length > 0).then(|| {
                Reply::status(400).body(r#"{"errors":[{"code":"UNSUPPORTED","message":"monolithic uploads are not supported"}]}"#)
            })
        });
        proxy.rewrite(move |method, _, raw| {
            let text = String::from_utf8_lossy(raw).into_owned();
            let text = match method {
                "POST" => text.replacen("\r\n", &format!("\r\nOCI-Chunk-Min-Length: {min}\r\n"), 1),
                "PATCH" => text.replacen("HTTP/1.1 202 Accepted", "HTTP/1.1 201 Created", 1),
                _ => text,
            };
            *raw = text.into_bytes();
        });
        let run = apply_big(&staging, &proxy, configured);
        assert_eq!(run.code, 0, "{configured}: {}", run.stderr);
        assert_eq!(
            prod.read_manifest_digest("apps/big", "1.0"),
            Some(digest.to_string())
        );
        let patches = body_lengths(&proxy, "PATCH");
        assert!(!patches.is_empty(), "{configured}: chunked");
        let mut by_upload: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (session, length) in patches {
            by_upload.entry(session).or_default().push(length);
        }
        for chunks in by_upload.values() {
            let (_, all_but_last) = chunks.split_last().unwrap();
            assert!(
                all_but_last.iter().all(|l| *l >= min),
                "{configured}: {chunks:?}"
            );
        }
    }
}

/// ECR (and Harbor or GitLab projects): a repository must exist before a
/// push. `apps/api` and `apps/web` exist, `apps/db` does not: planning takes
/// it for an empty repository; its two images fail naming the repository to
/// create, where, and how, after one refused write (the run remembers it);
/// the other images land, and the 404 answered to a mount into `apps/db`
/// does not stop mounts into `apps/web`.
///
/// `apps/db` holds the images of `apps/api`, so each of its blobs lands in
/// `apps/api` first and its first write is a mount.
#[test]
fn a_repository_that_must_be_created_first_fails_its_images_alone() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    // Two base layers in every image, one layer and a config of their own.
    let mut digests = BTreeMap::new();
    for (repositories, tag) in [
        (&["apps/api", "apps/db"][..], "1.0"),
        (&["apps/api", "apps/db"], "2.0"),
        (&["apps/web"], "1.0"),
    ] {
        let spec = image_with_base(&format!("{}:{tag}", repositories[0]), 3, 2, 20_000);
        for repository in repositories {
            let pushed = seed::push(client.as_ref(), repository, tag, &spec);
            digests.insert(format!("{repository}:{tag}"), pushed.digest.to_string());
        }
    }
    let proxy = FaultProxy::start(prod.host(), Schedule::none());
    repositories_must_exist(&proxy, &["apps/api", "apps/web"]);
    let config = config_at(
        &[("staging", staging.host()), ("prod", &proxy.host())],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/*\"]\n",
    );

    // Planning: a tag list answered 404 NAME_UNKNOWN is an empty repository.
    let plan = Hoist::new().config(&config).args(["plan"]).run().success();
    assert!(plan.stdout.contains("apps/db"), "{}", plan.stdout);

    let run = Hoist::new()
        .config(&config)
        .args(["--jobs", "1", "apply", "--report", "report.json"])
        .run()
        .code(1);
    for landed in ["apps/api:1.0", "apps/api:2.0", "apps/web:1.0"] {
        let (repository, tag) = landed.split_once(':').unwrap();
        assert_eq!(
            prod.read_manifest_digest(repository, tag).as_ref(),
            Some(&digests[landed]),
            "{landed}"
        );
    }
    let said = "repository `apps/db` does not exist on `prod`, and this registry does not \
                create repositories on push: create it (ECR: `aws ecr create-repository \
                --repository-name apps/db`; Harbor, GitLab: create the project), then run again";
    assert!(run.stderr.contains(said), "{}", run.stderr);
    let report = run.json_file("report.json");
    let summary = &report["summary"];
    assert_eq!(summary["promoted"], 3, "{summary:#}");
    assert_eq!(summary["failed"], 2, "{summary:#}");
    // The two shared base layers crossed once, into `apps/api`, and were
    // mounted into `apps/web`: the refused mount into `apps/db` was no
    // refusal of mounts.
    assert_eq!(summary["blobs_mounted"], 2, "{summary:#}");
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{report:#}");
    for failure in failures {
        assert_eq!(failure["target"]["repository"], "apps/db", "{failure:#}");
        let error = failure["error"].as_str().unwrap();
        assert!(error.contains(said), "{error}");
        assert!(error.contains("NAME_UNKNOWN"), "{error}");
    }
    // One write to `apps/db`, a mount, found it missing; nothing was sent
    // there again.
    let writes_to_db: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method != "GET" && s.method != "HEAD" && s.path.starts_with("/v2/apps/db/"))
        .collect();
    assert_eq!(writes_to_db.len(), 1, "{writes_to_db:#?}");
    assert!(writes_to_db[0].path.contains("mount="), "{writes_to_db:#?}");
    assert!(prod.read_tags("apps/db").is_empty());
}

/// Artifactory: a blob HEAD says 200 for blobs the registry lacks, so they
/// are not uploaded and the manifest PUT is refused, with
/// `MANIFEST_BLOB_UNKNOWN` or (as Artifactory says it) `MANIFEST_INVALID`.
/// hoist reads the first byte of every blob of the image again
/// (`Range: bytes=0-0`, never a HEAD), uploads what is missing, and the PUT
/// goes through: a single-platform image and an index land byte for byte.
#[test]
fn blobs_a_lying_head_vouched_for_are_found_missing_and_uploaded() {
    for refusal in [ManifestRefusal::BlobUnknown, ManifestRefusal::Invalid] {
        let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
        let client = seed::client(&staging);
        let mut pushed = BTreeMap::new();
        for (name, spec) in [
            ("apps/web", seed::small_image("web", Format::Oci)),
            (
                "apps/multi",
                seed::multi_platform_image("multi", Format::Docker),
            ),
        ] {
            pushed.insert(name, seed::push(client.as_ref(), name, "1.0", &spec));
        }
        // The HEAD lies about every layer (configs are told the truth).
        let mut lies = BTreeMap::new();
        for (name, root) in &pushed {
            for manifest in manifests_of(client.as_ref(), name, root) {
                // The view lists the config first, then the layers.
                for layer in manifest.view().unwrap().blobs.iter().skip(1) {
                    lies.insert(layer.digest.to_string(), layer.size);
                }
            }
        }
        assert!(lies.len() >= 4, "{lies:?}");
        // Each target repository holds an older tag, so its blobs are asked
        // for with a HEAD (a new repository's are taken to be absent).
        let target = seed::client(&prod);
        for name in pushed.keys() {
            let older = seed::small_image(&format!("{name} 0.9"), Format::Oci);
            seed::push(target.as_ref(), name, "0.9", &older);
        }
        let proxy = FaultProxy::start(prod.host(), Schedule::none());
        lying_blob_head(&proxy, lies.clone(), refusal);
        let config = config_at(
            &[("staging", staging.host()), ("prod", &proxy.host())],
            "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/*\"]\n",
        );
        let run = Hoist::new().config(&config).args(["apply"]).run();
        assert_eq!(run.code, 0, "{refusal:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("lacks part of the image"),
            "{refusal:?}: {}",
            run.stderr
        );
        for (name, manifest) in &pushed {
            assert_eq!(
                prod.read_manifest_digest(name, "1.0"),
                Some(manifest.digest.to_string()),
                "{refusal:?}: {name}"
            );
        }
        for digest in lies.keys() {
            assert!(
                prod.blob_data_path(digest).exists(),
                "{refusal:?}: {digest}"
            );
        }
        // The re-check read one byte of each lied-about blob, by GET.
        let seen = proxy.seen();
        for digest in lies.keys() {
            let ranged = seen.iter().any(|s| {
                s.method == "GET"
                    && s.path.ends_with(&format!("/blobs/{digest}"))
                    && s.head.to_ascii_lowercase().contains("range: bytes=0-0")
            });
            assert!(ranged, "{refusal:?}: no ranged GET of {digest}: {seen:#?}");
        }
    }
}

/// A manifest the registry refuses again after the repair (every blob read
/// again, none missing) fails its image with the registry's own words,
/// after exactly one retry, and no tag is written.
#[test]
fn a_manifest_refused_again_after_the_repair_fails_with_the_registrys_message() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let image = seed::small_image("web", Format::Oci);
    seed::push(seed::client(&staging).as_ref(), "apps/web", "1.0", &image);
    let proxy = FaultProxy::start(prod.host(), Schedule::none());
    proxy.answer(|method, path| {
        (method == "PUT" && path.contains("/manifests/"))
            .then(|| Reply::status(400).body(MANIFEST_INVALID_BODY))
    });
    let config = config_at(
        &[("staging", staging.host()), ("prod", &proxy.host())],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"apps/web\"]\n",
    );
    let run = Hoist::new()
        .config(&config)
        .args(["apply", "--report", "report.json"])
        .run()
        .code(1);
    let report = run.json_file("report.json");
    let error = report["failures"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("writing tag 1.0")
            && error.contains("HTTP 400 MANIFEST_INVALID: manifest invalid"),
        "{report:#}"
    );
    let seen = proxy.seen();
    let puts = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.path.contains("/manifests/"))
        .count();
    assert_eq!(puts, 2, "{seen:#?}");
    let ranged = seen
        .iter()
        .filter(|s| s.method == "GET" && s.head.to_ascii_lowercase().contains("range: bytes=0-0"))
        .count();
    assert_eq!(ranged, 3, "a config and two layers read again: {seen:#?}");
    assert!(prod.read_tags("apps/web").is_empty());
}

/// The manifests of an image in `repository`: the children of an index,
/// then the root.
fn manifests_of(
    store: &dyn hoist::registry::Registry,
    repository: &str,
    root: &hoist::manifest::Manifest,
) -> Vec<hoist::manifest::Manifest> {
    let view = root.view().unwrap();
    let mut manifests: Vec<_> = view
        .manifests
        .iter()
        .map(|child| {
            store
                .manifest_get(repository, &child.digest.to_string())
                .unwrap()
        })
        .collect();
    manifests.push(root.clone());
    manifests
}

/// A login for a registry: `(username, password)`, put in the environment
/// as `HUB_USER`/`HUB_PASS`.
const HUB_LOGIN: (&str, &str) = ("hub-user", "hub-pa55");

/// `[registries.NAME]` at `url`, with the hub login when `login`.
fn registry_entry(name: &str, url: &str, login: bool) -> String {
    let credentials = if login {
        "username_env = \"HUB_USER\"\npassword_env = \"HUB_PASS\"\n"
    } else {
        ""
    };
    format!("[registries.{name}]\nurl = \"{url}\"\n{credentials}\n")
}

/// A `[[promotion]]` from `from` to `prod`.
fn promotion(name: &str, from: &str, repositories: &str, target: &str) -> String {
    format!(
        "[[promotion]]\nname = \"{name}\"\nfrom = \"{from}\"\nto = \"prod\"\n\
         repositories = [{repositories}]\ntarget = \"{target}\"\n\n"
    )
}

/// `hoist` with the hub login in its environment.
fn hoist_logged_in(config: &str) -> Hoist {
    Hoist::new()
        .config(config)
        .env("HUB_USER", HUB_LOGIN.0)
        .env("HUB_PASS", HUB_LOGIN.1)
}

/// Puts `team/app:1.0` and `team/other:1.0` into `hub` (through hoist, so
/// a registry wanting a login gets it) and returns `team/app`'s digest.
fn seed_team(hub: &TestRegistry, login: bool) -> String {
    let seeded = TestRegistry::start();
    let client = seed::client(&seeded);
    let mut app = String::new();
    for name in ["app", "other"] {
        let image = seed::small_image(name, Format::Oci);
        let pushed = seed::push(client.as_ref(), &format!("team/{name}"), "1.0", &image);
        if name == "app" {
            app = pushed.digest.to_string();
        }
    }
    let config = format!(
        "{}{}[[promotion]]\nname = \"seed\"\nfrom = \"seeded\"\nto = \"hub\"\nrepositories = [\"team/*\"]\n",
        registry_entry("seeded", seeded.host(), false),
        registry_entry("hub", hub.host(), login),
    );
    hoist_logged_in(&config).args(["apply"]).run().success();
    app
}

/// Docker Hub and GHCR do not list their repositories: `GET /v2/_catalog`
/// answers 404, 401 (even to valid credentials, bearer or basic) or
/// `UNSUPPORTED`. A rule matching that registry's repositories by glob
/// fails, named with the advice to name them; a rule naming a repository on
/// the same registry and a rule on another registry are planned and applied
/// all the same; the run exits 1 and the report names the problem.
#[test]
fn a_registry_without_a_catalog_fails_only_its_glob_rules() {
    let other = TestRegistry::start();
    let db = seed::push(
        seed::client(&other).as_ref(),
        "lib/db",
        "1.0",
        &seed::small_image("db", Format::Oci),
    )
    .digest
    .to_string();
    let token = TestRegistry::builder()
        .token_auth(HUB_LOGIN.0, HUB_LOGIN.1)
        .start();
    let basic = TestRegistry::builder()
        .htpasswd(HUB_LOGIN.0, HUB_LOGIN.1)
        .start();
    let plain = TestRegistry::start();
    let cases = [
        (&plain, false, NoCatalog::NotFound),
        (&plain, false, NoCatalog::Unsupported),
        (&token, true, NoCatalog::docker_hub(&token)),
        (&basic, true, NoCatalog::basic_login_refused()),
        // An anonymous registry asking a login for its catalog only.
        (&plain, false, NoCatalog::basic_login_refused()),
    ];
    for (hub, login, how) in cases {
        let app = seed_team(hub, login);
        let status = how.status();
        let proxy = FaultProxy::start(hub.host(), Schedule::none());
        without_catalog(&proxy, how);
        let prod = TestRegistry::start();
        let config = format!(
            "{}{}{}{}{}{}",
            registry_entry("hub", &proxy.host(), login),
            registry_entry("other", other.host(), false),
            registry_entry("prod", prod.host(), false),
            promotion("apps", "hub", "\"team/*\"", "{path}"),
            promotion("named", "hub", "\"team/app\"", "named/{path}"),
            promotion("libs", "other", "\"lib/*\"", "{path}"),
        );

        let run = hoist_logged_in(&config)
            .args(["apply", "--report", "report.json"])
            .run();

        assert_eq!(run.code, 1, "{status}: {}", run.stderr);
        let said = format!(
            "error: rule `apps`: registry `hub` does not list its repositories (GET /v2/_catalog answered {status}"
        );
        assert!(run.stderr.contains(&said), "{status}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("name them in `repositories`, e.g. [\"team/NAME\"]"),
            "{status}: {}",
            run.stderr
        );
        // The named repository and the other registry's rule landed; the
        // glob rule wrote nothing.
        assert_eq!(
            prod.read_manifest_digest("named/team/app", "1.0"),
            Some(app),
            "{status}"
        );
        assert_eq!(
            prod.read_manifest_digest("lib/db", "1.0"),
            Some(db.clone()),
            "{status}"
        );
        assert_eq!(prod.read_manifest_digest("team/other", "1.0"), None);
        let report = run.json_file("report.json");
        let problems = &report["rule_problems"];
        assert_eq!(problems.as_array().map(Vec::len), Some(1), "{report:#}");
        assert_eq!(problems[0]["rule"], "apps");
        assert_eq!(problems[0]["registry"], "hub");
        assert_eq!(problems[0]["kind"], "no_catalog");
        assert_eq!(problems[0]["severity"], "error");
        assert_eq!(report["summary"]["promoted"], 2, "{report:#}");
        assert_eq!(report["summary"]["failed_rules"], 1, "{report:#}");
        assert!(
            run.stdout.contains("failed rule `apps`") && run.stdout.contains("1 rule not planned"),
            "{status}: {}",
            run.stdout
        );
    }
}

/// Artifact Registry answers the catalog with an empty list: a glob rule
/// there matches nothing, which is said naming the rule, the registry and
/// the count; with nothing listed at all, `plan` (also with
/// `--detailed-exitcode`) and `apply` exit 1, and the rule naming its
/// repository is still applied. In a catalog that lists repositories, a glob
/// matching none is a warning: the exit status stays.
#[test]
fn a_glob_matching_nothing_is_reported_and_an_empty_catalog_fails() {
    let gar = TestRegistry::start();
    let web = seed::push(
        seed::client(&gar).as_ref(),
        "apps/web",
        "1.0",
        &seed::small_image("web", Format::Oci),
    )
    .digest
    .to_string();
    let proxy = FaultProxy::start(gar.host(), Schedule::none());
    with_empty_catalog(&proxy);
    let prod = TestRegistry::start();
    let config = format!(
        "{}{}{}{}",
        registry_entry("gar", &proxy.host(), false),
        registry_entry("prod", prod.host(), false),
        promotion("apps", "gar", "\"apps/*\"", "{path}"),
        promotion("named", "gar", "\"apps/web\"", "named/{path}"),
    );
    let said = "error: rule `apps`: registry `gar` listed no repository at all (GET /v2/_catalog answered an empty list)";

    let plan = Hoist::new()
        .config(&config)
        .args(["plan", "--detailed-exitcode", "--out", "plan.json"])
        .run()
        .code(1);
    assert!(plan.stderr.contains(said), "{}", plan.stderr);
    assert!(plan.stdout.contains("1 rule failed"), "{}", plan.stdout);
    let written = plan.json_file("plan.json");
    assert_eq!(written["rule_problems"][0]["kind"], "empty_catalog");
    assert_eq!(written["summary"]["create"], 1, "{written:#}");

    let apply = Hoist::new()
        .config(&config)
        .args(["apply", "--report", "report.json"])
        .run()
        .code(1);
    assert!(apply.stderr.contains(said), "{}", apply.stderr);
    let report = apply.json_file("report.json");
    assert_eq!(report["rule_problems"][0]["rule"], "apps");
    assert_eq!(report["rule_problems"][0]["severity"], "error");
    assert_eq!(report["summary"]["failed_rules"], 1);
    assert!(
        apply.stdout.contains("1 rule not planned"),
        "{}",
        apply.stdout
    );
    assert_eq!(
        prod.read_manifest_digest("named/apps/web", "1.0"),
        Some(web)
    );
    assert_eq!(prod.read_manifest_digest("apps/web", "1.0"), None);
    // verify cannot vouch for a rule it could not plan.
    let verify = Hoist::new().config(&config).args(["verify"]).run().code(1);
    assert!(verify.stderr.contains(said), "{}", verify.stderr);
    assert!(
        verify.stdout.contains("(1 rule not planned)"),
        "{}",
        verify.stdout
    );
    // The reviewed plan carries the problem: applying it says it again and fails.
    let reviewed = Hoist::new()
        .config(&config)
        .args([
            "apply".as_ref(),
            "--plan".as_ref(),
            plan.dir().join("plan.json").as_os_str(),
        ])
        .run()
        .code(1);
    assert!(reviewed.stderr.contains(said), "{}", reviewed.stderr);

    // The same registry listing its catalog: `tools/*` matches nothing there.
    let config = format!(
        "{}{}{}{}",
        registry_entry("gar", gar.host(), false),
        registry_entry("prod", prod.host(), false),
        promotion("apps", "gar", "\"apps/*\"", "{path}"),
        promotion("tools", "gar", "\"tools/*\"", "{path}"),
    );
    let warned = "warning: rule `tools`: no repository of registry `gar` matches [\"tools/*\"] (its catalog lists 1 repository)";
    let plan = Hoist::new()
        .config(&config)
        .args(["plan", "--detailed-exitcode"])
        .run()
        .code(3);
    assert!(plan.stderr.contains(warned), "{}", plan.stderr);
    let apply = Hoist::new()
        .config(&config)
        .args(["apply", "--report", "report.json"])
        .run()
        .success();
    assert!(apply.stderr.contains(warned), "{}", apply.stderr);
    let report = apply.json_file("report.json");
    assert_eq!(report["rule_problems"][0]["severity"], "warning");
    assert_eq!(report["summary"]["failed_rules"], 0);
    assert_eq!(report["summary"]["promoted"], 1);
}
