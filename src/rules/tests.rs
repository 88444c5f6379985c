use super::*;

fn rule(toml_rule: &str) -> Rule {
    let text = format!(
        "[registries.s]\nurl = \"oci-layout:s\"\n[registries.p]\nurl = \"oci-layout:p\"\n[[promotion]]\nname = \"r\"\nfrom = \"s\"\nto = \"p\"\nrepositories = [\"**\"]\n{toml_rule}"
    );
    let config: Config = toml::from_str(&text).unwrap();
    let (rules, problems) = RuleSet::compile(&config);
    assert!(problems.is_empty(), "{problems:?}");
    rules.rules.into_iter().next().unwrap()
}

fn selected(rule: &Rule, tags: &[&str]) -> Vec<String> {
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    rule.selection
        .select_tags(&tags)
        .into_iter()
        .map(|s| s.tag)
        .collect()
}

const TAGS: [&str; 8] = [
    "1.0.0",
    "1.2.0",
    "v1.2.3",
    "1.10.0",
    "2.0.0-rc.1",
    "latest",
    "main",
    "sha-abc",
];

#[test]
fn globs_select_tags_of_any_kind() {
    let r = rule("tags = [\"*\", \"!sha-*\"]");
    assert_eq!(
        selected(&r, &TAGS),
        ["1.0.0", "1.10.0", "1.2.0", "latest", "main", "v1.2.3"]
    );
}

/// Signature, attestation, SBOM and referrers fallback tags are never
/// selected as ordinary tags, not even by `*` or a pin: they follow
/// their subject. Look-alikes are ordinary tags.
#[test]
fn attached_tags_are_never_selected() {
    let hex = "ab".repeat(32);
    let attached = [
        format!("sha256-{hex}.sig"),
        format!("sha256-{hex}.att"),
        format!("sha256-{hex}.sbom"),
        format!("sha256-{hex}"),
        format!("sha512-{}", "0f".repeat(64)),
        format!("sha512-{}", "0f".repeat(32)),
    ];
    let alike = [
        format!("sha256-{}.sig", &hex[1..]),
        format!("sha256-{}", hex.to_uppercase()),
        format!("sha256-{hex}.sig2"),
        format!("sha512-{}.sig", "0f".repeat(32)),
        "sha-abc".to_string(),
    ];
    for tag in &attached {
        assert!(is_attached_tag(tag), "{tag}");
    }
    for tag in &alike {
        assert!(!is_attached_tag(tag), "{tag}");
    }
    let all: Vec<&str> = attached.iter().chain(&alike).map(String::as_str).collect();
    let mut expected: Vec<&str> = alike.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(selected(&rule("tags = [\"*\"]"), &all), expected);
    let pinned = rule(&format!(
        "tags = [\"none\"]\npin = {{ \"{}\" = \"sha256:{hex}\" }}",
        attached[0]
    ));
    assert_eq!(selected(&pinned, &all), Vec::<&str>::new());
}

#[test]
fn prereleases_only_when_asked() {
    let r = rule("prerelease = true\ntags = [\"*.*.*\"]");
    assert_eq!(
        selected(&r, &TAGS),
        ["1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "v1.2.3"]
    );
}

#[test]
fn semver_requirement_keeps_versions_only() {
    let r = rule("semver = \">=1.2, <2\"");
    assert_eq!(selected(&r, &TAGS), ["1.10.0", "1.2.0", "v1.2.3"]);
}

#[test]
fn latest_keeps_the_highest_n() {
    let r = rule("latest = 2\nprerelease = true");
    assert_eq!(selected(&r, &TAGS), ["1.10.0", "2.0.0-rc.1"]);
    let r = rule("latest = 2");
    assert_eq!(selected(&r, &TAGS), ["1.10.0", "v1.2.3"]);
}

#[test]
fn pinned_tags_are_always_selected() {
    let pin = format!(
        "tags = [\"1.*\"]\npin = {{ \"main\" = \"sha256:{}\" }}",
        "a".repeat(64)
    );
    let r = rule(&pin);
    assert_eq!(selected(&r, &TAGS), ["1.0.0", "1.10.0", "1.2.0", "main"]);
}

#[test]
fn only_narrows_by_name() {
    let mut text = String::from("[registries.s]\nurl = \"x.io\"\n");
    for name in ["apps", "tools", "base"] {
        text.push_str(&format!(
            "[[promotion]]\nname = \"{name}\"\nfrom = \"s\"\nto = \"s\"\nrepositories = [\"{name}/*\"]\n"
        ));
    }
    let (rules, problems) = RuleSet::compile(&toml::from_str::<Config>(&text).unwrap());
    assert!(problems.is_empty(), "{problems:?}");
    let names =
        |set: &RuleSet| -> Vec<String> { set.rules.iter().map(|r| r.name.clone()).collect() };

    // Named out of order, kept in file order; the unnamed rule is dropped.
    let narrowed = rules.clone().only(&["base".into(), "apps".into()]).unwrap();
    assert_eq!(names(&narrowed), ["apps", "base"]);
    assert_eq!(narrowed.get("tools").map(|r| &r.name), None);
    assert_eq!(
        narrowed.get("base").map(|r| r.index),
        Some(2),
        "a kept rule keeps its position in the file, for diagnostics"
    );

    // No names: every rule.
    assert_eq!(
        names(&rules.clone().only(&[]).unwrap()),
        ["apps", "tools", "base"]
    );

    let err = rules.only(&["apps".into(), "aps".into()]).unwrap_err();
    assert_eq!(err.to_string(), "no rule named `aps`: did you mean `apps`?");
}
