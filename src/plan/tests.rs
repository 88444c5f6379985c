//! Planning without a network: hand-built inventories through the real rules.

use std::collections::BTreeSet;

use super::test_inventory::{REGISTRIES, add_source, digest, plan, rules, staging, target_has};
use super::*;
use crate::config::LoadedConfig;
use crate::keys::TagKey;
use crate::render::render_table;

/// `tag -> (action, source tag)` for one target repository.
fn tags_of(plan: &Plan, registry: &str, repository: &str) -> Vec<(String, Action, String)> {
    plan.entries
        .iter()
        .filter(|e| e.target.registry == registry && e.target.repository == repository)
        .map(|e| (e.target.tag.clone(), e.action.clone(), e.source.tag.clone()))
        .collect()
}

fn t(tag: &str, action: Action, source: &str) -> (String, Action, String) {
    (tag.to_string(), action, source.to_string())
}

const VERSIONS: [&str; 5] = ["1.0.0", "1.2.0", "1.2.3", "1.10.0", "2.0.0-rc.1"];

const FLOATING: &str = r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
floating = ["{major}", "{major}.{minor}", "latest"]
"#;

#[test]
fn floating_tags_take_the_highest_of_each_series() {
    let plan = plan(&rules(FLOATING), &staging("apps/web", &VERSIONS));
    use Action::Create;
    assert_eq!(
        tags_of(&plan, "prod", "apps/web"),
        [
            t("1.0.0", Create, "1.0.0"),
            t("1.10.0", Create, "1.10.0"),
            t("1.2.0", Create, "1.2.0"),
            t("1.2.3", Create, "1.2.3"),
            t("1", Create, "1.10.0"),
            t("1.0", Create, "1.0.0"),
            t("1.10", Create, "1.10.0"),
            t("1.2", Create, "1.2.3"),
            t("latest", Create, "1.10.0"),
        ]
    );
}

#[test]
fn prereleases_take_floating_tags_only_when_selected() {
    let plan = plan(
        &rules(&FLOATING.replace("floating", "prerelease = true\nfloating")),
        &staging("apps/web", &VERSIONS),
    );
    let tags = tags_of(&plan, "prod", "apps/web");
    assert!(tags.contains(&t("2.0.0-rc.1", Action::Create, "2.0.0-rc.1")));
    assert!(tags.contains(&t("2", Action::Create, "2.0.0-rc.1")));
    assert!(tags.contains(&t("2.0", Action::Create, "2.0.0-rc.1")));
    // `latest` is the highest stable version, prereleases or not.
    assert!(tags.contains(&t("latest", Action::Create, "1.10.0")));
}

#[test]
fn floating_tags_only_move_forward() {
    let mut inventory = staging("apps/web", &VERSIONS);
    target_has(
        &mut inventory,
        "prod",
        "apps/web",
        "1.11.0",
        "elsewhere:1.11.0",
    );
    target_has(&mut inventory, "prod", "apps/web", "1", "elsewhere:1.11.0");
    target_has(&mut inventory, "prod", "apps/web", "1.2", "apps/web:1.2.0");
    let plan = plan(&rules(FLOATING), &inventory);
    let one = plan.entries.iter().find(|e| e.target.tag == "1").unwrap();
    assert!(
        matches!(&one.action, Action::Unchanged { kept_at: Some(at) } if at.contains("1.11.0")),
        "{:?}",
        one.action
    );
    assert!(
        one.remark().unwrap().contains("1.11.0"),
        "{:?}",
        one.remark()
    );
    let minor = plan.entries.iter().find(|e| e.target.tag == "1.2").unwrap();
    assert_eq!(
        (minor.action.clone(), minor.source.tag.as_str()),
        (Action::Update, "1.2.3")
    );
    // Floating tags need no `overwrite = "always"`.
    assert!(
        plan.entries
            .iter()
            .all(|e| !matches!(e.action, Action::Blocked { .. }))
    );
}

#[test]
fn overwrite_never_blocks_a_moved_tag_and_always_updates_it() {
    let mut inventory = staging("apps/web", &["1.0.0", "1.1.0"]);
    target_has(&mut inventory, "prod", "apps/web", "1.0.0", "rebuilt:1.0.0");
    target_has(
        &mut inventory,
        "prod",
        "apps/web",
        "1.1.0",
        "apps/web:1.1.0",
    );
    let rule = r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/*"]
"#;
    let plan = plan(&rules(rule), &inventory);
    let entry = &plan.entries[0];
    assert!(
        entry
            .action
            .blocked_reason()
            .unwrap()
            .contains("overwrite = \"never\"")
    );
    assert_eq!(plan.entries[1].action, Action::UNCHANGED);
    assert!(!plan.has_changes());
    let plan = super::tests::plan(
        &rules(&format!("{rule}overwrite = \"always\"\n")),
        &inventory,
    );
    assert_eq!(plan.entries[0].action, Action::Update);
    assert_eq!(
        plan.entries[0].target.current_digest,
        Some(digest("rebuilt:1.0.0"))
    );
}

#[test]
fn same_digest_from_two_rules_merges() {
    let rules = rules(
        r#"
[[promotion]]
name = "all"
from = "staging"
to = ["prod", "eu"]
repositories = ["**"]

[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
"#,
    );
    let plan = plan(&rules, &staging("apps/web", &["1.0.0"]));
    assert_eq!(plan.entries.len(), 2);
    assert_eq!(plan.entries[0].target.registry, "eu");
    assert_eq!(plan.entries[0].rules, ["all"]);
    assert_eq!(plan.entries[1].rules, ["all", "web"]);
}

#[test]
fn different_digests_for_one_tag_conflict_naming_both_rules() {
    let rules = rules(
        r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
target = "stable/app"

[[promotion]]
name = "api"
from = "staging"
to = "prod"
repositories = ["apps/api"]
target = "stable/app"
"#,
    );
    let mut inventory = staging("apps/web", &["1.0.0"]);
    add_source(&mut inventory, "apps/api", &["1.0.0"]);
    let conflicts = build(&rules, &inventory, BTreeMap::new(), None).unwrap_err();
    assert_eq!(conflicts.len(), 1);
    let problem = conflicts[0].problem();
    assert!(
        problem
            .message
            .contains("rules `api` and `web` write prod/stable/app:1.0.0"),
        "{}",
        problem.message
    );
    let labelled: Vec<String> = problem.labels.iter().map(|l| l.path.to_string()).collect();
    assert_eq!(labelled, ["promotion[0].name", "promotion[1].name"]);
}

#[test]
fn a_floating_tag_named_like_a_source_tag_conflicts() {
    let conflicts = build(
        &rules(FLOATING),
        &staging("apps/web", &["1.0.0", "1.1.0", "latest"]),
        BTreeMap::new(),
        None,
    )
    .unwrap_err();
    assert!(conflicts[0].floating_clash);
    assert!(conflicts[0].problem().help.unwrap().contains("\"!latest\""));
}

#[test]
fn non_versions_are_skipped_by_version_templates_with_a_reason() {
    let rule = r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
tag = "{major}.{minor}"
keep_source_tag = true
"#;
    let plan = plan(&rules(rule), &staging("apps/web", &["1.4.2", "main"]));
    assert_eq!(plan.skipped.len(), 1);
    assert_eq!(plan.skipped[0].tag, "main");
    assert!(plan.skipped[0].reason.contains("needs a semantic version"));
    let tags: BTreeSet<String> = plan.entries.iter().map(|e| e.target.tag.clone()).collect();
    assert_eq!(
        tags,
        BTreeSet::from(["1.4".into(), "1.4.2".into(), "main".into()])
    );
}

#[test]
fn a_pin_mismatch_blocks_only_that_entry() {
    let rule = format!(
        r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
pin = {{ "1.0.0" = "{}", "1.1.0" = "{}" }}
"#,
        digest("apps/web:1.0.0"),
        digest("something else"),
    );
    let plan = plan(&rules(&rule), &staging("apps/web", &["1.0.0", "1.1.0"]));
    assert_eq!(plan.entries[0].action, Action::Create);
    assert!(
        plan.entries[1]
            .action
            .blocked_reason()
            .unwrap()
            .starts_with("pinned to sha256:")
    );
}

#[test]
fn targets_render_names_and_fan_out() {
    let rule = r#"
[[promotion]]
name = "ns"
from = "staging"
to = ["prod", "eu"]
repositories = ["staging/**"]
target = "stable/{name}"
tag = "{tag}-prod"
"#;
    let plan = plan(&rules(rule), &staging("staging/team/web", &["1.0.0"]));
    let targets: Vec<String> = plan
        .entries
        .iter()
        .map(|e| {
            format!(
                "{}/{}:{}",
                e.target.registry, e.target.repository, e.target.tag
            )
        })
        .collect();
    assert_eq!(
        targets,
        ["eu/stable/web:1.0.0-prod", "prod/stable/web:1.0.0-prod"]
    );
}

#[test]
fn estimate_counts_each_blob_once_per_target_registry() {
    let rule = r#"
[[promotion]]
name = "all"
from = "staging"
to = ["prod", "eu"]
repositories = ["apps/*"]
floating = ["latest"]
"#;
    let mut inventory = staging("apps/web", &["1.0.0"]);
    add_source(&mut inventory, "apps/api", &["1.0.0"]);
    let plan = plan(&rules(rule), &inventory);
    let e = &plan.estimate;
    assert!(e.complete);
    // 2 images × 2 registries; `latest` is the same image as 1.0.0.
    assert_eq!(e.images, 4);
    // Per registry: the base layer once, plus each image's own layer.
    assert_eq!(e.unique_blobs, 6);
    assert_eq!(e.blobs_to_copy, 6);
    assert_eq!(e.bytes_to_copy, 2 * (1000 + 10 + 10));
    // The base layer is mounted into the second repository of each registry.
    assert_eq!(e.blobs_to_mount, 2);
}

#[test]
fn shards_split_by_target_repository() {
    let rule = "[[promotion]]\nname = \"all\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"**\"]\n";
    let mut inventory = staging("r0", &["1.0.0", "1.1.0"]);
    for i in 1..20 {
        add_source(&mut inventory, &format!("r{i}"), &["1.0.0", "1.1.0"]);
    }
    let rules = rules(rule);
    let full = plan(&rules, &inventory);
    let mut seen = 0;
    for k in 0..3 {
        let shard = build(
            &rules,
            &inventory,
            BTreeMap::new(),
            Some(Shard { index: k, count: 3 }),
        )
        .unwrap();
        assert_eq!(shard.summary.create, shard.entries.len());
        assert!(
            shard
                .entries
                .iter()
                .all(|e| shard_of(&e.target.repository, 3) == k)
        );
        seen += shard.entries.len();
    }
    assert_eq!(seen, full.entries.len());
}

#[test]
fn table_snapshot() {
    let rule = r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
tags = ["*", "!latest"]
floating = ["{major}", "latest"]

[[promotion]]
name = "web-eu"
from = "staging"
to = "eu"
repositories = ["apps/web"]
tag = "{major}.{minor}.{patch}"
"#;
    let mut inventory = staging("apps/web", &["1.0.0", "1.1.0", "2.0.0", "main", "latest"]);
    target_has(
        &mut inventory,
        "prod",
        "apps/web",
        "1.0.0",
        "apps/web:1.0.0",
    );
    target_has(&mut inventory, "prod", "apps/web", "1.1.0", "rebuilt:1.1.0");
    target_has(&mut inventory, "prod", "apps/web", "1", "apps/web:1.0.0");
    target_has(
        &mut inventory,
        "prod",
        "apps/web",
        "latest",
        "apps/web:1.0.0",
    );
    let plan = plan(&rules(rule), &inventory);
    insta::assert_snapshot!(render_table(&plan));
}

#[test]
fn conflict_diagnostic_snapshot() {
    let text = format!(
        r#"{REGISTRIES}
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
target = "stable/app"

[[promotion]]
name = "api"
from = "staging"
to = "prod"
repositories = ["apps/api"]
target = "stable/app"
"#
    );
    let loaded = LoadedConfig::parse("promotions.toml", &text).unwrap();
    let (rules, _) = RuleSet::compile(&loaded.config);
    let mut inventory = staging("apps/web", &["1.0.0"]);
    add_source(&mut inventory, "apps/api", &["1.0.0"]);
    let conflicts = build(&rules, &inventory, BTreeMap::new(), None).unwrap_err();
    let error = loaded
        .validate(conflicts.iter().map(Conflict::problem).collect())
        .unwrap_err();
    insta::assert_snapshot!(crate::report::render_diagnostic(&error).unwrap());
}

#[test]
fn a_floating_tag_fed_by_two_rules_follows_the_highest_version() {
    let rules = rules(
        r#"
[[promotion]]
name = "hotfixes"
from = "staging"
to = "prod"
repositories = ["apps/web"]
semver = "<2"
floating = ["latest"]

[[promotion]]
name = "releases"
from = "staging"
to = "prod"
repositories = ["apps/web"]
semver = ">=2"
floating = ["latest"]
"#,
    );
    let plan = plan(&rules, &staging("apps/web", &["1.9.0", "2.1.0"]));
    let latest = plan
        .entries
        .iter()
        .find(|e| e.target.tag == "latest")
        .unwrap();
    assert_eq!(
        (latest.source.tag.as_str(), latest.rules.clone()),
        ("2.1.0", vec!["releases".to_string()])
    );
}

#[test]
fn forward_only_recognises_a_newer_source_version_at_the_current_digest() {
    let rule = r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
tags = ["1.2.0"]
tag = "{tag}-prod"
floating = ["latest"]
"#;
    // Only 1.2.0 is selected now, but prod's `latest` already follows 1.3.0,
    // which staging still has.
    let mut inventory = staging("apps/web", &["1.2.0", "1.3.0"]);
    target_has(
        &mut inventory,
        "prod",
        "apps/web",
        "latest",
        "apps/web:1.3.0",
    );
    target_has(
        &mut inventory,
        "prod",
        "apps/web",
        "1.3.0-prod",
        "apps/web:1.3.0",
    );
    let plan = plan(&rules(rule), &inventory);
    let latest = plan
        .entries
        .iter()
        .find(|e| e.target.tag == "latest")
        .unwrap();
    assert!(
        matches!(latest.action, Action::Unchanged { .. }),
        "{:?}",
        latest.action
    );
}

/// GitLab answers the referrers fallback tag `sha256-<hex>` with the subject
/// image itself: such a tag is not an artifact attached to the image, so it
/// is skipped with the reason, while a real `.sig` beside it is carried.
#[test]
fn an_attached_tag_resolving_to_its_subject_is_skipped_with_a_reason() {
    let rules = rules(
        "[[promotion]]\nname = \"web\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/web\"]\ntags = [\"1.0.0\"]\n",
    );
    let subject = digest("apps/web:1.0.0");
    let stem = format!("sha256-{}", subject.hex());
    let signature = format!("{stem}.sig");
    let mut inventory = staging("apps/web", &["1.0.0", &stem, &signature]);
    let subject_head = inventory.source_heads[&TagKey::new("staging", "apps/web", "1.0.0")].clone();
    inventory
        .source_heads
        .insert(TagKey::new("staging", "apps/web", &stem), subject_head);
    let plan = plan(&rules, &inventory);
    let tags: Vec<String> = tags_of(&plan, "prod", "apps/web")
        .into_iter()
        .map(|(tag, _, _)| tag)
        .collect();
    assert_eq!(tags, ["1.0.0", signature.as_str()]);
    let [skipped] = plan.skipped.as_slice() else {
        panic!("{:?}", plan.skipped);
    };
    assert_eq!(skipped.tag, stem);
    assert!(
        skipped.reason.contains("resolves to its subject"),
        "{}",
        skipped.reason
    );
}
