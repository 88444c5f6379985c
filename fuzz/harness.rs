//! What each fuzz target checks, shared by the `cargo fuzz` targets in
//! `fuzz_targets/` and by the regression test that replays the inputs in
//! `fuzz/regressions/` and `fuzz/seeds/` (`tests/hoist/fuzz_inputs.rs`).
//!
//! Beyond "no panic", each states a property the parser must keep.

#![allow(dead_code)] // each fuzz binary uses one target

use hoist::config::LoadedConfig;
use hoist::digest::Digest;
use hoist::manifest::{self, Manifest};
use hoist::platform::Platform;
use hoist::reference::{self, Reference};
use hoist::registry::distribution::{link, tokens};
use hoist::rules::RuleSet;

/// A target's check of one input.
pub type Check = fn(&[u8]);

/// The targets, by name: what `cargo fuzz run NAME` runs.
pub const TARGETS: [(&str, Check); 5] = [
    ("reference", reference),
    ("www_authenticate", www_authenticate),
    ("link", link),
    ("manifest", manifest),
    ("config", config),
];

/// Image references: whatever parses prints back to itself and parses again
/// to the same reference.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let named = |name: &str| name == "staging" || name == "prod";
    if let Ok(parsed) = Reference::parse(text, &named) {
        let printed = parsed.to_string();
        let again = Reference::parse(&printed, &named).unwrap_or_else(|e| {
            panic!("`{text}` printed as `{printed}`, which does not parse: {e}")
        });
        assert_eq!(again, parsed, "`{text}` printed as `{printed}`");
    }
    let _ = reference::parse_listing(text, &named);
}

/// `WWW-Authenticate` values: a Bearer challenge, written out again with
/// every parameter quoted, parses back to the same challenge.
pub fn www_authenticate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(challenge) = tokens::parse_challenge(text) else {
        return;
    };
    let tokens::Challenge::Bearer {
        realm,
        service,
        scope,
    } = &challenge
    else {
        return;
    };
    let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let mut again = format!("Bearer realm={}", quote(realm));
    for (key, value) in [("service", service), ("scope", scope)] {
        if let Some(value) = value {
            again.push_str(&format!(",{key}={}", quote(value)));
        }
    }
    assert_eq!(
        tokens::parse_challenge(&again).as_ref(),
        Some(&challenge),
        "`{text}` written as `{again}`"
    );
}

/// `Link` and `Location` handling: the first line is a header, the second
/// the URL it came from. Resolving and taking the origin never panic; a
/// query value is escaped to unreserved characters and `%XX`, and decodes
/// back to itself.
pub fn link(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (header, base) = text
        .split_once('\n')
        .unwrap_or((text, "https://reg.example/v2/"));
    if let Some(next) = link::next_link(header) {
        let resolved = link::resolve(base, &next);
        let _ = link::origin(&resolved);
    }
    let resolved = link::resolve(base, header);
    let _ = link::origin(&resolved);
    let _ = link::with_query(base, "digest", header);
    let encoded = link::percent_encode(header);
    assert_eq!(
        percent_decode(&encoded).as_deref(),
        Some(header.as_bytes()),
        "`{header}` encoded as `{encoded}`"
    );
}

/// Undoes percent-encoding; `None` for anything but unreserved characters
/// and well-formed `%XX`.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes = text.bytes();
    let mut decoded = Vec::new();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                decoded.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => decoded.push(b),
            _ => return None,
        }
    }
    Some(decoded)
}

/// Manifest bytes, the first byte choosing the `Content-Type` a registry
/// sent: what is accepted keeps its bytes and their digest, and a platform
/// filter of an index keeps exactly the children of that platform.
pub fn manifest(data: &[u8]) {
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let content_type = [
        None,
        Some(manifest::OCI_MANIFEST),
        Some(manifest::OCI_INDEX),
        Some(manifest::DOCKER_MANIFEST),
        Some(manifest::DOCKER_MANIFEST_LIST),
        Some("application/json"),
        Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
        Some("text/html"),
    ][usize::from(choice) % 8];
    let Ok(parsed) = Manifest::from_bytes(bytes.to_vec(), content_type) else {
        return;
    };
    assert_eq!(parsed.bytes, bytes, "bytes kept as served");
    assert_eq!(parsed.digest, Digest::sha256_of(bytes));
    let Ok(view) = parsed.view() else {
        return;
    };
    if !parsed.is_index() {
        assert!(view.manifests.is_empty());
        return;
    }
    let amd64 = |m: &manifest::Descriptor| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
    };
    let wanted = view.manifests.iter().filter(|m| amd64(m)).count();
    let linux_amd64: Platform = "linux/amd64".parse().expect("a platform");
    match manifest::filter_index(&parsed, &[linux_amd64]) {
        Ok(filtered) => {
            let kept = filtered.view().expect("a filtered index parses");
            assert!(kept.manifests.iter().all(amd64), "kept another platform");
            assert_eq!(kept.manifests.len(), wanted, "dropped a linux/amd64 child");
            assert_eq!(filtered.digest, Digest::sha256_of(&filtered.bytes));
        }
        // Filtering rewrites the JSON: an index that holds what a JSON value
        // cannot (a lone surrogate escape in a field hoist skips) is refused.
        Err(e) => assert!(
            wanted == 0 || serde_json::from_slice::<serde_json::Value>(bytes).is_err(),
            "refused an index with linux/amd64: {e}"
        ),
    }
}

/// `promotions.toml`: parsing, compiling the rules and rendering the
/// diagnostics never panic; a valid configuration's rules select tags from
/// those offered, each at most once.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = match LoadedConfig::parse("promotions.toml", text) {
        Ok(loaded) => loaded,
        Err(e) => {
            hoist::report::render_diagnostic(&e);
            return;
        }
    };
    let (rules, problems) = RuleSet::compile(&loaded.config);
    if let Err(e) = loaded.validate(problems) {
        hoist::report::render_diagnostic(&e);
        return;
    }
    let tags: Vec<String> = [
        "1.0.0",
        "v1.2.3",
        "2.0.0-rc.1",
        "1.4.2+build.7",
        "latest",
        "main",
        "0.0.1",
        "v10",
        "1.2",
        "sha256-0123.sig",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for rule in &rules.rules {
        let selected = rule.selection.select_tags(&tags);
        let mut names: Vec<&str> = selected.iter().map(|s| s.tag.as_str()).collect();
        assert!(
            names.iter().all(|n| tags.iter().any(|t| t == n)),
            "{names:?}"
        );
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a tag selected twice");
        let _ = rule.naming.target_repository("apps/web");
        let _ = rule.naming.target_repository("a");
    }
}
