//! Hostile and broken registries, and bad input from users. A proxy in front
//! of a real `docker-registry` answers some requests itself or edits the
//! registry's answers; each case must end in a clear error for what it
//! touched, no panic, nothing written that should not be, and no request to
//! a host the registry pointed at but does not own.

use std::collections::BTreeMap;

use serde_json::json;

use crate::apply::{assert_all_tags_complete, config_at, state};
use crate::support::fault_proxy::{FaultProxy, Reply, Schedule};
use crate::support::hoist::Run;
use crate::support::registry::blob_data_in;
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};
use hoist::digest::Digest;
use hoist::manifest::{OCI_INDEX, OCI_MANIFEST};

/// Every repository under `corpus/`, every tag, no floating tags.
const ALL_RULE: &str = "[[promotion]]\nname = \"all\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"corpus/*\"]\n";

/// Pushes a small real image as `corpus/NAME:1.0` for each name.
fn seed_repositories(staging: &TestRegistry, names: &[&str]) {
    let client = seed::client(staging);
    for name in names {
        seed::push(
            client.as_ref(),
            &format!("corpus/{name}"),
            "1.0",
            &seed::small_image(name, Format::Oci),
        );
    }
}

/// A manifest as a registry would serve it, HEAD or GET.
fn manifest_reply(bytes: &[u8], media_type: &str) -> Reply {
    Reply::status(200)
        .header("Content-Type", media_type)
        .header("Docker-Content-Digest", Digest::sha256_of(bytes))
        .body(bytes.to_vec())
}

/// An index body listing these children.
fn index_of(children: &[(Digest, usize, &str)]) -> Vec<u8> {
    let manifests: Vec<_> = children
        .iter()
        .map(|(digest, size, media_type)| {
            json!({
                "mediaType": media_type,
                "digest": digest.to_string(),
                "size": size,
                "platform": {"os": "linux", "architecture": "amd64"},
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .unwrap()
}

/// Fails unless no run panicked.
fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "hoist panicked:\n{stderr}"
    );
}

/// Runs `apply` with a report, expecting some image to fail (exit 1) and
/// no panic; returns the run and its report.
fn apply_failing(rules: &str) -> (Run, serde_json::Value) {
    let run = Hoist::new()
        .config(rules)
        .args(["apply", "--report", "report.json"])
        .run()
        .code(1);
    assert_no_panic(&run.stderr);
    let report = run.json_file("report.json");
    (run, report)
}

/// `repository -> error` of the report's failed entries.
fn failures(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "failed")
        .map(|e| {
            (
                e["target"]["repository"].as_str().unwrap().to_string(),
                e["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// What a hostile repository serves: its root manifest and media type, and
/// child manifests by digest.
type Served = (Vec<u8>, String, BTreeMap<String, Vec<u8>>);

#[test]
fn hostile_manifests_fail_their_image_and_nothing_else() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    let cases = [
        "badjson", "huge", "weird", "nested", "cycle", "wide", "mismatch",
    ];
    seed_repositories(&staging, &["ok"]);
    seed_repositories(&staging, &cases);
    let ok_manifest = seed::client(&staging)
        .manifest_get("corpus/ok", "1.0")
        .unwrap();

    // What each hostile repository serves for its tag and any digest: the
    // root manifest, and children by digest.
    let mut served: BTreeMap<&str, Served> = BTreeMap::new();
    let root = |bytes: Vec<u8>, media_type: &str| (bytes, media_type.to_string(), BTreeMap::new());
    served.insert(
        "badjson",
        root(
            br#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [{"#.to_vec(),
            OCI_MANIFEST,
        ),
    );
    let mut huge = serde_json::from_slice::<serde_json::Value>(&ok_manifest.bytes).unwrap();
    huge["annotations"] = json!({ "padding": "x".repeat(5 << 20) });
    served.insert(
        "huge",
        root(serde_json::to_vec(&huge).unwrap(), OCI_MANIFEST),
    );
    let weird = "application/vnd.example.weird.v1+json";
    served.insert(
        "weird",
        root(
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": weird})).unwrap(),
            weird,
        ),
    );
    // Five indexes, each listing the next, all hashing right: deeper than
    // any real image nests.
    let mut chain = BTreeMap::new();
    let mut below = index_of(&[(Digest::sha256_of(b"leaf"), 4, OCI_MANIFEST)]);
    for _ in 0..4 {
        let digest = Digest::sha256_of(&below);
        let above = index_of(&[(digest.clone(), below.len(), OCI_INDEX)]);
        chain.insert(digest.to_string(), below);
        below = above;
    }
    served.insert("nested", (below, OCI_INDEX.into(), chain));
    // A child that lists itself: content addressing makes that impossible,
    // so the registry must serve bytes that do not hash to the digest.
    let looped = Digest::sha256_of(b"a cycle");
    let child = index_of(&[(looped.clone(), 100, OCI_INDEX)]);
    served.insert(
        "cycle",
        (
            index_of(&[(looped.clone(), child.len(), OCI_INDEX)]),
            OCI_INDEX.into(),
            BTreeMap::from([(looped.to_string(), child)]),
        ),
    );
    let thousands: Vec<_> = (0..5000u32)
        .map(|i| (Digest::sha256_of(&i.to_be_bytes()), 500, OCI_MANIFEST))
        .collect();
    served.insert("wide", root(index_of(&thousands), OCI_INDEX));
    // The index names one child; the registry serves another (a real one).
    let named = Digest::sha256_of(b"the child the index names");
    served.insert(
        "mismatch",
        (
            index_of(&[(named.clone(), ok_manifest.bytes.len(), OCI_MANIFEST)]),
            OCI_INDEX.into(),
            BTreeMap::from([(named.to_string(), ok_manifest.bytes.clone())]),
        ),
    );

    let proxy = FaultProxy::start(staging.host(), Schedule::none());
    proxy.answer(move |_, path| {
        let rest = path.strip_prefix("/v2/corpus/")?;
        let (name, reference) = rest.split_once("/manifests/")?;
        let (bytes, media_type, children) = served.get(name)?;
        match children.get(reference) {
            Some(child) => {
                let media_type = serde_json::from_slice::<serde_json::Value>(child)
                    .ok()
                    .and_then(|v| v["mediaType"].as_str().map(str::to_string))
                    .unwrap_or_else(|| OCI_MANIFEST.into());
                Some(manifest_reply(child, &media_type))
            }
            None => Some(manifest_reply(bytes, media_type)),
        }
    });
    let rules = config_at(
        &[("staging", &proxy.host()), ("prod", prod.host())],
        ALL_RULE,
    );
    let (run, report) = apply_failing(&rules);
    assert_eq!(report["summary"]["promoted"], 1, "{report:#}");
    let failed = failures(&report);
    let expected = [
        ("badjson", "invalid manifest JSON"),
        ("huge", "larger than 4194304 bytes"),
        (
            "weird",
            "unsupported manifest media type `application/vnd.example.weird.v1+json`",
        ),
        ("nested", "indexes nested deeper than 3"),
        ("cycle", "served bytes that hash to"),
        ("wide", "index has 5000 children"),
        ("mismatch", "served bytes that hash to"),
    ];
    assert_eq!(failed.len(), expected.len(), "{failed:#?}");
    for (name, message) in expected {
        let error = &failed[&format!("corpus/{name}")];
        assert!(error.contains(message), "corpus/{name}: {error}");
        assert!(
            run.stderr.contains(&format!("corpus/{name}")),
            "{}",
            run.stderr
        );
    }
    // The good image is promoted; nothing of the hostile ones is tagged.
    assert_eq!(
        state(&prod),
        BTreeMap::from([("corpus/ok:1.0".to_string(), ok_manifest.digest.to_string())])
    );
    assert_all_tags_complete(&prod);
    // None of the 5,000 children was asked for.
    let asked = proxy
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/v2/corpus/wide/manifests/sha256:"))
        .filter(|s| {
            !s.path
                .ends_with(&Digest::sha256_of(&index_of(&thousands)).to_string())
        })
        .count();
    assert_eq!(asked, 0, "children of an oversized index were fetched");
}

#[test]
fn pagination_that_loops_or_leaves_the_registry_is_refused() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    seed_repositories(&staging, &["loop", "away"]);
    let elsewhere = FaultProxy::start(staging.host(), Schedule::none());
    let proxy = FaultProxy::start(staging.host(), Schedule::none());
    let other_host = elsewhere.host();
    proxy.answer(move |_, path| {
        let page = || {
            Reply::status(200)
                .header("Content-Type", "application/json")
                .body(r#"{"name":"x","tags":["1.0"]}"#)
        };
        if path.starts_with("/v2/corpus/loop/tags/list") {
            // Every page says the next is the second page: it never ends.
            return Some(page().header(
                "Link",
                r#"</v2/corpus/loop/tags/list?n=1000&last=1.0>; rel="next""#,
            ));
        }
        if path.starts_with("/v2/corpus/away/tags/list") {
            return Some(page().header(
                "Link",
                format!(r#"<http://{other_host}/v2/corpus/away/tags/list?last=1.0>; rel="next""#),
            ));
        }
        None
    });
    let rules = config_at(
        &[("staging", &proxy.host()), ("prod", prod.host())],
        ALL_RULE,
    );
    let run = Hoist::new().config(&rules).args(["plan"]).run().code(1);
    assert_no_panic(&run.stderr);
    assert!(
        run.stderr.contains("pagination loops back"),
        "{}",
        run.stderr
    );
    for name in ["staging/corpus/loop", "staging/corpus/away"] {
        assert!(run.stderr.contains(name), "{}", run.stderr);
    }
    assert!(
        run.stderr
            .contains("pagination link points to another host"),
        "{}",
        run.stderr
    );
    let pages = proxy
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/v2/corpus/loop/tags/list"))
        .count();
    assert_eq!(pages, 2, "the loop is noticed at the first page seen twice");
    Hoist::new().config(&rules).args(["apply"]).run().code(1);
    assert!(state(&prod).is_empty());
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

#[test]
fn an_upload_location_on_another_host_is_refused() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    seed_repositories(&staging, &["app"]);
    let elsewhere = FaultProxy::start(prod.host(), Schedule::none());
    let proxy = FaultProxy::start(prod.host(), Schedule::none());
    let other_host = elsewhere.host();
    proxy.answer(move |method, path| {
        (method == "POST" && path.contains("/blobs/uploads/")).then(|| {
            Reply::status(202).header(
                "Location",
                format!("http://{other_host}/v2/corpus/app/blobs/uploads/3f1b?_state=x"),
            )
        })
    });
    let rules = config_at(
        &[("staging", staging.host()), ("prod", &proxy.host())],
        ALL_RULE,
    );
    let (_, report) = apply_failing(&rules);
    let failed = failures(&report);
    assert!(
        failed["corpus/app"].contains("upload Location points to another host"),
        "{failed:#?}"
    );
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    assert!(state(&prod).is_empty());
}

#[test]
fn a_blob_redirected_to_a_storage_host_is_fetched_without_credentials() {
    const USER: &str = "puller";
    const PASSWORD: &str = "s3cret-pull-password";
    let staging = TestRegistry::builder().htpasswd(USER, PASSWORD).start();
    let prod = TestRegistry::start();
    let login = |url: &str| {
        format!(
            "[registries.staging]\nurl = \"{url}\"\nusername_env = \"S_USER\"\npassword_env = \"S_PASS\"\n\n"
        )
    };
    let logged_in = |text: &str| {
        Hoist::new()
            .config(text)
            .env("S_USER", USER)
            .env("S_PASS", PASSWORD)
    };
    // The image reaches the registry with a login, through hoist itself.
    let seeded = TestRegistry::start();
    seed_repositories(&seeded, &["app"]);
    let manifest = seed::client(&seeded)
        .manifest_get("corpus/app", "1.0")
        .unwrap();
    logged_in(&login(staging.host()))
        .args([
            "promote".to_string(),
            format!("{}/corpus/app:1.0", seeded.host()),
            "staging/corpus/app".to_string(),
        ])
        .run()
        .success();

    // The "storage host" serves blobs from the registry's own files, as a
    // bucket behind a CDN would.
    let storage = FaultProxy::start(staging.host(), Schedule::none());
    let files = staging.storage_dir().to_path_buf();
    storage.answer(move |_, path| {
        let digest = path.strip_prefix("/bucket/")?.split('?').next()?;
        let data = std::fs::read(blob_data_in(&files, digest)).ok()?;
        Some(Reply::status(200).body(data))
    });
    let proxy = FaultProxy::start(staging.host(), Schedule::none());
    let bucket = storage.host();
    proxy.answer(move |method, path| {
        let (_, digest) = path.split_once("/blobs/")?;
        (method == "GET" && digest.starts_with("sha256:")).then(|| {
            Reply::status(307).header(
                "Location",
                format!("http://{bucket}/bucket/{digest}?X-Amz-Signature=abc"),
            )
        })
    });
    let rules = format!(
        "{}[registries.prod]\nurl = \"{}\"\n\n{ALL_RULE}",
        login(&proxy.host()),
        prod.host()
    );
    logged_in(&rules).args(["apply"]).run().success();
    assert_eq!(
        state(&prod),
        BTreeMap::from([("corpus/app:1.0".to_string(), manifest.digest.to_string())])
    );
    assert_all_tags_complete(&prod);
    let redirected: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path.contains("/blobs/sha256:"))
        .collect();
    assert!(!redirected.is_empty() && redirected.iter().all(|s| s.authorized()));
    let fetched = storage.seen();
    assert_eq!(fetched.len(), redirected.len(), "{fetched:?}");
    assert!(
        fetched.iter().all(|s| !s.authorized()),
        "the registry's credentials went to the storage host: {fetched:?}"
    );
}

#[test]
fn a_token_service_answering_garbage_is_an_auth_error() {
    let registry = TestRegistry::builder().token_auth("user", "pass").start();
    let prod = TestRegistry::start();
    let realm = registry.token_server().unwrap().realm();
    let garbage = FaultProxy::start(prod.host(), Schedule::none());
    let proxy = FaultProxy::start(registry.host(), Schedule::none());
    let bad_realm = format!("http://{}/token", garbage.host());
    proxy.rewrite(move |_, _, raw| {
        let text = String::from_utf8_lossy(raw).replace(&realm, &bad_realm);
        *raw = text.into_bytes();
    });
    for (body, says) in [
        (
            "<html><body>502 Bad Gateway</body></html>",
            "answered with invalid JSON",
        ),
        (r#"{"expires_in": 300}"#, "answered without a token"),
        ("", "answered with invalid JSON"),
    ] {
        garbage.answer(move |_, _| Some(Reply::status(200).body(body)));
        let asked = garbage.seen().len();
        let run = Hoist::new()
            .args([
                "promote",
                &format!("{}/corpus/app:1.0", proxy.host()),
                &format!("{}/corpus/app", prod.host()),
            ])
            .run()
            .code(1);
        assert_no_panic(&run.stderr);
        assert!(run.stderr.contains(says), "{body}: {}", run.stderr);
        assert!(run.stderr.contains(&garbage.host()), "{}", run.stderr);
        assert!(garbage.seen().len() > asked, "the token service was asked");
    }
}

#[test]
fn a_token_service_that_is_briefly_unavailable_is_asked_again() {
    let source = TestRegistry::start();
    let manifest = seed::push(
        seed::client(&source).as_ref(),
        "corpus/app",
        "1.0",
        &seed::small_image("token", Format::Oci),
    );
    let target = TestRegistry::builder().token_auth("user", "pass").start();
    let realm = target.token_server().unwrap().realm();
    let token_host = realm["http://".len()..realm.len() - "/token".len()].to_string();
    // The token service answers 503, then 429, then works.
    let flaky = FaultProxy::start(&token_host, Schedule::none());
    let mut refusals = vec![Reply::status(429), Reply::status(503)];
    flaky.answer(move |_, _| refusals.pop());
    let proxy = FaultProxy::start(target.host(), Schedule::none());
    let flaky_realm = format!("http://{}/token", flaky.host());
    proxy.rewrite(move |_, _, raw| {
        let text = String::from_utf8_lossy(raw).replace(&realm, &flaky_realm);
        *raw = text.into_bytes();
    });
    let run = Hoist::new()
        .env("HOIST_RETRY_BASE_MS", "1")
        .env("DST_USER", "user")
        .env("DST_PASS", "pass")
        .config(&format!(
            "[registries.dst]\nurl = \"{}\"\nusername_env = \"DST_USER\"\npassword_env = \"DST_PASS\"\n",
            proxy.host()
        ))
        .args([
            "promote",
            &format!("{}/corpus/app:1.0", source.host()),
            "dst/corpus/app",
        ])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(flaky.seen().len() >= 3, "{:?}", flaky.seen());
    // Read back from the registry's own storage: the tag holds the source's digest.
    let link = target
        .storage_dir()
        .join("docker/registry/v2/repositories/corpus/app/_manifests/tags/1.0/current/link");
    let stored = std::fs::read_to_string(&link).expect("the tag is in the target's storage");
    assert_eq!(stored.trim(), manifest.digest.to_string());
}

#[test]
fn digests_and_names_used_as_paths_stay_inside_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("app");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        repo.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": "sha256:../../../../etc/passwd",
                "size": 100,
                "annotations": {"org.opencontainers.image.ref.name": "1.0"},
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    let target = tempfile::tempdir().unwrap();
    let layout = format!("oci-layout:{}", dir.path().display());
    let to = format!("oci-layout:{}//copy", target.path().display());

    let run = Hoist::new()
        .args(["promote", &format!("{layout}//app:1.0"), &to])
        .run()
        .code(1);
    assert_no_panic(&run.stderr);
    assert!(run.stderr.contains("not a valid digest"), "{}", run.stderr);

    for reference in [
        format!("{layout}//app@sha256:../../etc"),
        format!("{layout}//../../etc:1.0"),
    ] {
        let run = Hoist::new()
            .args(["promote", &reference, &to])
            .run()
            .code(2);
        assert_no_panic(&run.stderr);
    }
    assert_eq!(
        std::fs::read_dir(target.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn bad_input_is_a_diagnostic_exit_2_and_contacts_nothing() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(registry.host(), Schedule::none());
    let good = config_at(
        &[("staging", &proxy.host()), ("prod", &proxy.host())],
        "[[promotion]]\nname = \"all\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"corpus/*\"]\ntarget = \"promoted/{name}\"\n",
    );
    Hoist::new().config(&good).args(["check"]).run().success();
    let expect_2 = |hoist: Hoist, says: &str| {
        let run = hoist.run().code(2);
        assert_no_panic(&run.stderr);
        assert!(
            run.stderr.contains(says),
            "expected `{says}`:\n{}",
            run.stderr
        );
        run
    };

    // Configuration: malformed TOML, a wrong type, an unknown key; each
    // diagnostic points into the file.
    for (text, says) in [
        (
            good.replace("name = \"all\"", "name = \"all"),
            "promotions.toml:",
        ),
        (format!("[settings]\njobs = \"many\"\n\n{good}"), "jobs"),
        (good.replace("target", "targte"), "did you mean `target`"),
    ] {
        for command in ["check", "plan", "apply"] {
            expect_2(Hoist::new().config(&text).args([command]), says);
        }
    }

    // References on the command line.
    for reference in [
        format!("{}/Repo:bad tag", proxy.host()),
        format!("{}/repo:tag@sha256:1234", proxy.host()),
        format!("{}/UPPER/case", proxy.host()),
        String::new(),
    ] {
        expect_2(
            Hoist::new().args(["promote", &reference, &format!("{}/x", proxy.host())]),
            "invalid reference",
        );
    }

    // Reviewed plans: missing, unreadable, not a plan, another format, or
    // made against another configuration. (The registry is empty, so the
    // plan is made and says the rule matched nothing: exit 1.)
    let plan = Hoist::new()
        .config(&config_at(
            &[("staging", registry.host()), ("prod", registry.host())],
            ALL_RULE,
        ))
        .args(["plan", "--format", "json", "--out", "plan.json"])
        .run()
        .code(1);
    let made = std::fs::read_to_string(plan.dir().join("plan.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let unreadable = write("unreadable.json", &made);
    std::fs::set_permissions(
        &unreadable,
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    let mut other_format: serde_json::Value = serde_json::from_str(&made).unwrap();
    other_format["format"] = json!(99);
    let plans = [
        (
            dir.path().join("missing.json").display().to_string(),
            "cannot read",
        ),
        (dir.path().display().to_string(), "cannot read"),
        (write("notes.json", "these are my notes"), "is not a plan"),
        (
            write("v99.json", &other_format.to_string()),
            "plan format 99",
        ),
        // A plan of the previous format is named as such, not as broken.
        (
            write(
                "v1.json",
                r#"{"format": 1, "entries": [{"floating": true}]}"#,
            ),
            "has plan format 1; this hoist reads format 2",
        ),
        (write("made.json", &made), "the plan has registry"),
    ];
    let root_reads_anything = std::fs::read(&unreadable).is_ok();
    for (path, says) in plans
        .iter()
        .map(|(p, s)| (p.as_str(), *s))
        .chain((!root_reads_anything).then_some((unreadable.as_str(), "cannot read")))
    {
        // `good` names the same registries at the proxy's address, not the
        // plan's: the plan belongs to another configuration.
        expect_2(
            Hoist::new().config(&good).args(["apply", "--plan", path]),
            says,
        );
    }
    assert!(
        proxy.seen().is_empty(),
        "bad input contacted a registry: {:?}",
        proxy.seen()
    );
}

/// A target repository that refuses a blob (403 DENIED on its blob
/// requests: a quota, a repository policy) fails its own images only. The
/// base layer all six share lands in the next repository when the first
/// refuses it, and is mounted into the others; a refused mount fails that
/// repository alone.
#[test]
fn a_repository_refusing_a_shared_layer_fails_only_its_own_images() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    crate::apply::seed_sharing(&staging, "quota/app-", (6, 1), (2, 1, 3000));
    let proxy = FaultProxy::start(prod.host(), Schedule::none());
    proxy.answer(|_, path| {
        let denied = ["/v2/quota/app-0/blobs/", "/v2/quota/app-3/blobs/"];
        denied.iter().any(|d| path.starts_with(d)).then(|| {
            Reply::status(403)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"DENIED","message":"storage quota exceeded"}]}"#)
        })
    });
    let rules = config_at(
        &[("staging", staging.host()), ("prod", &proxy.host())],
        "[[promotion]]\nname = \"quota\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"quota/*\"]\n",
    );
    let (run, report) = apply_failing(&rules);
    assert_eq!(report["summary"]["promoted"], 4, "{report:#}");
    let failed = failures(&report);
    assert_eq!(
        failed.keys().collect::<Vec<_>>(),
        ["quota/app-0", "quota/app-3"],
        "{failed:#?}\n{}",
        run.stderr
    );
    for error in failed.values() {
        assert!(error.contains("403"), "{error}");
    }
    let promoted: Vec<String> = state(&prod).into_keys().collect();
    assert_eq!(
        promoted,
        [
            "quota/app-1:1.0.0",
            "quota/app-2:1.0.0",
            "quota/app-4:1.0.0",
            "quota/app-5:1.0.0"
        ]
    );
    assert_all_tags_complete(&prod);
}
