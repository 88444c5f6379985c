//! OCI 1.1 referrers (issue 15 point 10): SBOMs and signatures pushed with a
//! `subject`, listed by a registry's referrers API, travel with their image.
//! The API is played by a proxy in front of docker-registry
//! (tests/support/referrers_api.rs); a target without it gets the
//! referrers fallback tag `sha256-<hex>` the distribution spec describes.

use std::collections::BTreeSet;
use std::sync::Arc;

use hoist::manifest::Manifest;
use hoist::registry::Registry;
use serde_json::Value;

use crate::apply::config_at;
use crate::support::artifacts::{
    COSIGN_SIGNATURE, SPDX, add_to_fallback_index, attach_sbom, attach_signature, fallback_tag,
    read_fallback_index, read_manifest_json,
};
use crate::support::cosign::Signer;
use crate::support::fault_proxy::{FaultProxy, Schedule};
use crate::support::referrers_api::{OCI_INDEX, ReferrersApi};
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// A registry with the referrers API: docker-registry behind the proxy
/// that plays it, and a client that pushes through the proxy.
struct WithApi {
    registry: TestRegistry,
    proxy: FaultProxy,
    api: ReferrersApi,
    client: Arc<dyn Registry>,
}

impl WithApi {
    fn start() -> WithApi {
        let registry = TestRegistry::start();
        let proxy = FaultProxy::start(registry.host(), Schedule::none());
        let api = ReferrersApi::serve(&proxy);
        let client = seed::client_at(&proxy.host());
        WithApi {
            registry,
            proxy,
            api,
            client,
        }
    }

    /// The digests the API lists for `subject` in `apps/web`.
    fn listed(&self, subject: &Manifest) -> BTreeSet<String> {
        digests(&self.api.listing("apps/web", &subject.digest.to_string()))
    }
}

/// A source with the API holding `apps/web:1.0`.
fn source_with_image() -> (WithApi, Manifest) {
    let source = WithApi::start();
    let image = seed::push(
        source.client.as_ref(),
        "apps/web",
        "1.0",
        &seed::small_image("web", Format::Oci),
    );
    (source, image)
}

/// One rule from `staging` (at `source`) to every `(name, host)` target.
fn rule(source: &str, targets: &[(&str, &str)], extra: &str) -> String {
    let mut registries = vec![("staging", source)];
    registries.extend_from_slice(targets);
    let names: Vec<String> = targets.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    config_at(
        &registries,
        &format!(
            "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = [{}]\n\
             repositories = [\"apps/web\"]\n{extra}",
            names.join(", ")
        ),
    )
}

/// The `digest` of each descriptor.
fn digests(descriptors: &[Value]) -> BTreeSet<String> {
    descriptors
        .iter()
        .map(|d| d["digest"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Descriptors in digest order, for comparing listings made in any order.
fn as_set(mut descriptors: Vec<Value>) -> Vec<Value> {
    descriptors.sort_by_key(|d| d["digest"].as_str().unwrap_or_default().to_string());
    descriptors
}

/// The manifest's `subject` digest, read from the registry without hoist.
fn subject_in(registry: &TestRegistry, referrer: &Manifest) -> String {
    let manifest = read_manifest_json(registry, "apps/web", &referrer.digest)
        .unwrap_or_else(|| panic!("{} is not in the target", referrer.digest));
    manifest["subject"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A source that lists referrers in pages (one a page here): every page
/// is followed, and all three referrers travel.
#[test]
fn referrers_listed_in_pages_all_travel() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(registry.host(), Schedule::none());
    let api = ReferrersApi::serve_in_pages(&proxy, 1);
    let client = seed::client_at(&proxy.host());
    let image = seed::push(
        client.as_ref(),
        "apps/web",
        "1.0",
        &seed::small_image("web", Format::Oci),
    );
    let mut attached = vec![attach_sbom(client.as_ref(), "apps/web", &image)];
    for signer in ["ci", "other"] {
        let signer = Signer::load(signer);
        attached.push(attach_signature(
            &signer,
            client.as_ref(),
            "apps/web",
            &image,
        ));
    }
    assert_eq!(api.listing("apps/web", &image.digest.to_string()).len(), 3);
    let prod = TestRegistry::start();
    let config = rule(&proxy.host(), &[("prod", prod.host())], "");

    Hoist::new().config(&config).args(["apply"]).run().success();

    let listed = read_fallback_index(&prod, "apps/web", &image.digest).expect("fallback index");
    let expected: BTreeSet<String> = attached.iter().map(|m| m.digest.to_string()).collect();
    assert_eq!(digests(&listed), expected);
    let paged = proxy
        .seen()
        .iter()
        .filter(|s| s.path.contains("/referrers/") && s.path.contains("page="))
        .count();
    assert_eq!(paged, 2, "pages 2 and 3 asked for by their links");
}

/// An SBOM and a signature pushed to a source with the API land in a
/// target without it by digest, with their subject, and the target gets
/// the fallback tag `sha256-<hex>` of the image: an image index listing
/// both as the source's API lists them. A second run writes nothing.
#[test]
fn referrers_reach_a_target_without_the_api_under_the_fallback_tag() {
    let (source, image) = source_with_image();
    let client = source.client.as_ref();
    let sbom = attach_sbom(client, "apps/web", &image);
    let signature = attach_signature(&Signer::load("ci"), client, "apps/web", &image);
    assert_eq!(source.registry.read_tags("apps/web"), ["1.0"]);
    let prod = TestRegistry::start();
    let config = rule(&source.proxy.host(), &[("prod", prod.host())], "");

    let run = Hoist::new().config(&config).args(["apply"]).run().success();

    let image_digest = image.digest.to_string();
    assert_eq!(
        prod.read_manifest_digest("apps/web", "1.0"),
        Some(image_digest.clone())
    );
    for referrer in [&sbom, &signature] {
        assert_eq!(subject_in(&prod, referrer), image_digest);
    }
    let tag = fallback_tag(&image.digest);
    let listed = read_fallback_index(&prod, "apps/web", &image.digest)
        .unwrap_or_else(|| panic!("no {tag} in {:?}", prod.read_tags("apps/web")));
    let of_signature = listed
        .iter()
        .find(|d| d["digest"] == signature.digest.to_string());
    assert_eq!(
        of_signature.map(|d| &d["artifactType"]),
        Some(&Value::from(COSIGN_SIGNATURE))
    );
    assert_eq!(
        as_set(listed),
        as_set(source.api.listing("apps/web", &image_digest))
    );
    assert_eq!(prod.read_tags("apps/web"), ["1.0".to_string(), tag.clone()]);
    let said = format!(
        "copied 2 referrers of prod/apps/web@{}; listed under {tag}",
        image.digest.short()
    );
    assert!(run.stderr.contains(&said), "{}", run.stderr);

    let index = prod.read_manifest_digest("apps/web", &tag);
    let again = Hoist::new().config(&config).args(["apply"]).run().success();
    assert_eq!(prod.read_manifest_digest("apps/web", &tag), index);
    assert!(!again.stderr.contains("warning"), "{}", again.stderr);
    assert!(!again.stderr.contains("copied"), "{}", again.stderr);
}

/// The target's fallback index already lists a referrer pushed there (a
/// signature made in prod): a referrer that reaches the source after the
/// image was promoted travels on the next run, and the index is updated,
/// not overwritten: prod's own entry stays as it was.
#[test]
fn a_fallback_index_in_the_target_is_updated_not_overwritten() {
    let (source, image) = source_with_image();
    let sbom = attach_sbom(source.client.as_ref(), "apps/web", &image);
    let prod = TestRegistry::start();
    let config = rule(&source.proxy.host(), &[("prod", prod.host())], "");
    Hoist::new().config(&config).args(["apply"]).run().success();
    let prod_client = seed::client(&prod);
    let prod_signature = attach_signature(
        &Signer::load("other"),
        prod_client.as_ref(),
        "apps/web",
        &image,
    );
    add_to_fallback_index(prod_client.as_ref(), "apps/web", &prod_signature);
    let before = read_fallback_index(&prod, "apps/web", &image.digest).expect("fallback index");
    assert_eq!(before.len(), 2);

    let signature = attach_signature(
        &Signer::load("ci"),
        source.client.as_ref(),
        "apps/web",
        &image,
    );
    Hoist::new().config(&config).args(["apply"]).run().success();

    assert_eq!(subject_in(&prod, &signature), image.digest.to_string());
    let after = read_fallback_index(&prod, "apps/web", &image.digest).expect("fallback index");
    let expected: BTreeSet<String> = [&sbom, &prod_signature, &signature]
        .iter()
        .map(|m| m.digest.to_string())
        .collect();
    assert_eq!(digests(&after), expected);
    for entry in &before {
        assert!(after.contains(entry), "{entry} was dropped: {after:?}");
    }
}

/// A target with the API indexes the referrers itself: they land with
/// their `subject`, its API lists them as the source's does (filtered by
/// `artifactType` when asked), and no fallback tag is written.
#[test]
fn a_target_with_the_api_gets_referrers_and_no_fallback_tag() {
    let (source, image) = source_with_image();
    let client = source.client.as_ref();
    let sbom = attach_sbom(client, "apps/web", &image);
    attach_signature(&Signer::load("ci"), client, "apps/web", &image);
    let prod = WithApi::start();
    let config = rule(&source.proxy.host(), &[("prod", &prod.proxy.host())], "");

    Hoist::new().config(&config).args(["apply"]).run().success();

    let image_digest = image.digest.to_string();
    assert_eq!(prod.registry.read_tags("apps/web"), ["1.0"]);
    assert_eq!(
        as_set(prod.api.listing("apps/web", &image_digest)),
        as_set(source.api.listing("apps/web", &image_digest))
    );
    for digest in prod.listed(&image) {
        let digest = digest.parse().expect("digest");
        let manifest = read_manifest_json(&prod.registry, "apps/web", &digest).expect("stored");
        assert_eq!(manifest["subject"]["digest"], image_digest.as_str());
    }
    let url = format!(
        "http://{}/v2/apps/web/referrers/{image_digest}?artifactType=application%2Fspdx%2Bjson",
        prod.proxy.host()
    );
    let mut response = prod.registry.http_agent().get(&url).call().expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    let filtered = response.headers().get("oci-filters-applied").cloned();
    assert_eq!(
        filtered.as_ref().and_then(|h| h.to_str().ok()),
        Some("artifactType")
    );
    let listing: Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON");
    assert_eq!(listing["mediaType"], OCI_INDEX);
    let manifests = listing["manifests"].as_array().expect("manifests");
    assert_eq!(
        digests(manifests),
        BTreeSet::from([sbom.digest.to_string()])
    );
    assert_eq!(manifests[0]["artifactType"], SPDX);
}

/// A signature of an SBOM of an image: both travel, to a target without
/// the API (a fallback tag for the image listing the SBOM, one for the SBOM
/// listing the signature) and to one with it (its API lists each level).
#[test]
fn a_signature_of_an_sbom_of_an_image_travels_whole() {
    let (source, image) = source_with_image();
    let client = source.client.as_ref();
    let sbom = attach_sbom(client, "apps/web", &image);
    let signature = attach_signature(&Signer::load("ci"), client, "apps/web", &sbom);
    let prod = TestRegistry::start();
    let mirror = WithApi::start();
    let config = rule(
        &source.proxy.host(),
        &[("prod", prod.host()), ("mirror", &mirror.proxy.host())],
        "",
    );

    Hoist::new().config(&config).args(["apply"]).run().success();

    assert_eq!(subject_in(&prod, &sbom), image.digest.to_string());
    assert_eq!(subject_in(&prod, &signature), sbom.digest.to_string());
    let of_image = read_fallback_index(&prod, "apps/web", &image.digest).expect("image's index");
    assert_eq!(
        digests(&of_image),
        BTreeSet::from([sbom.digest.to_string()])
    );
    let of_sbom = read_fallback_index(&prod, "apps/web", &sbom.digest).expect("SBOM's index");
    assert_eq!(
        digests(&of_sbom),
        BTreeSet::from([signature.digest.to_string()])
    );
    assert_eq!(
        mirror.listed(&image),
        BTreeSet::from([sbom.digest.to_string()])
    );
    assert_eq!(
        mirror.listed(&sbom),
        BTreeSet::from([signature.digest.to_string()])
    );
    assert_eq!(mirror.registry.read_tags("apps/web"), ["1.0"]);
    assert_eq!(
        read_manifest_json(&mirror.registry, "apps/web", &signature.digest).expect("stored")["subject"]
            ["digest"],
        sbom.digest.to_string().as_str()
    );
}

/// `referrers = false` copies none, and `hoist promote --no-referrers`
/// neither, while `hoist promote` carries them by default.
#[test]
fn referrers_off_copies_no_referrer() {
    let (source, image) = source_with_image();
    let sbom = attach_sbom(source.client.as_ref(), "apps/web", &image);
    let prod = TestRegistry::start();
    let config = rule(
        &source.proxy.host(),
        &[("prod", prod.host())],
        "referrers = false\n",
    );
    Hoist::new().config(&config).args(["apply"]).run().success();
    assert_eq!(prod.read_tags("apps/web"), ["1.0"]);
    assert_eq!(read_manifest_json(&prod, "apps/web", &sbom.digest), None);

    let from = format!("{}/apps/web:1.0", source.proxy.host());
    Hoist::new()
        .args([
            "promote",
            &from,
            &format!("{}/bare/web", prod.host()),
            "--no-referrers",
        ])
        .run()
        .success();
    assert_eq!(prod.read_tags("bare/web"), ["1.0"]);
    assert_eq!(read_manifest_json(&prod, "bare/web", &sbom.digest), None);
    Hoist::new()
        .args(["promote", &from, &format!("{}/stable/web", prod.host())])
        .run()
        .success();
    assert_eq!(
        prod.read_tags("stable/web"),
        ["1.0".to_string(), fallback_tag(&image.digest)]
    );
    assert!(read_manifest_json(&prod, "stable/web", &sbom.digest).is_some());
}

/// A gate reads signatures among the referrers too (`cosign sign
/// --registry-referrers-mode=oci-1-1`): an image whose only signature is a
/// referrer by the trusted key is promoted; one with only an SBOM, or a
/// referrer signature by another key, is blocked.
#[test]
fn a_gate_accepts_a_signature_among_the_referrers() {
    let (source, signed) = source_with_image();
    let client = source.client.as_ref();
    attach_signature(&Signer::load("ci"), client, "apps/web", &signed);
    let mut others = Vec::new();
    for tag in ["2.0", "3.0"] {
        let image = seed::push(
            client,
            "apps/web",
            tag,
            &seed::small_image(tag, Format::Oci),
        );
        others.push(image);
    }
    attach_sbom(client, "apps/web", &others[0]);
    attach_signature(&Signer::load("other"), client, "apps/web", &others[1]);
    let prod = TestRegistry::start();
    let key = Signer::load("ci").public_key;
    let gate = format!("require_signature = {{ keys = [\"{}\"] }}\n", key.display());
    let config = rule(&source.proxy.host(), &[("prod", prod.host())], &gate);

    let run = Hoist::new().config(&config).args(["apply"]).run().code(1);
    for (tag, why) in [
        ("2.0", "not signed"),
        (
            "3.0",
            "signed, but not by any key in require_signature.keys",
        ),
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains(&format!("blocked prod/apps/web:{tag}")))
            .unwrap_or_else(|| panic!("{tag} not blocked: {}", run.stdout));
        assert!(line.contains(why), "{tag}: {line}");
    }
    assert_eq!(
        prod.read_manifest_digest("apps/web", "1.0"),
        Some(signed.digest.to_string())
    );
    for tag in ["2.0", "3.0"] {
        assert_eq!(prod.read_manifest_digest("apps/web", tag), None, "{tag}");
    }
}
