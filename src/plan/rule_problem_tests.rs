//! Rule problems from hand-built inventories: which rules are reported, how
//! much it matters, what the message says, and how the plan shows them.

use std::collections::BTreeMap;

use super::*;
use crate::config::LoadedConfig;
use crate::keys::RepositoryKey;
use crate::plan::build;
use crate::render::render_table;

const REGISTRIES: &str = r#"
[registries.hub]
url = "oci-layout:hub"
[registries.prod]
url = "oci-layout:prod"
"#;

fn rules(promotions: &str) -> RuleSet {
    let loaded =
        LoadedConfig::parse("promotions.toml", &format!("{REGISTRIES}{promotions}")).unwrap();
    let (rules, problems) = RuleSet::compile(&loaded.config);
    assert!(problems.is_empty(), "{problems:?}");
    rules
}

fn rule(name: &str, repositories: &str) -> String {
    format!(
        "[[promotion]]\nname = \"{name}\"\nfrom = \"hub\"\nto = \"prod\"\nrepositories = [{repositories}]\n"
    )
}

/// An inventory of `hub` whose catalog gave `catalog` and which holds
/// `repositories` (the catalog's, or the names rules spell out), each with
/// no tags.
fn hub(catalog: CatalogListing, repositories: &[&str]) -> Inventory {
    let mut inventory = Inventory::default();
    inventory.catalogs.insert("hub".into(), catalog);
    inventory.repositories.insert(
        "hub".into(),
        repositories.iter().map(|r| r.to_string()).collect(),
    );
    for repository in repositories {
        inventory
            .source_tags
            .insert(RepositoryKey::new("hub", repository), Some(Vec::new()));
    }
    inventory
}

fn refused(status: u16, code: Option<&str>) -> CatalogListing {
    CatalogListing::Refused(CatalogRefusal {
        status,
        code: code.map(str::to_string),
    })
}

fn problems(rules: &RuleSet, inventory: &Inventory) -> Vec<(String, RuleProblemKind, Severity)> {
    rule_problems(rules, inventory)
        .into_iter()
        .map(|p| (p.rule, p.kind, p.severity))
        .collect()
}

fn p(rule: &str, kind: RuleProblemKind) -> (String, RuleProblemKind, Severity) {
    (rule.to_string(), kind, kind.severity())
}

#[test]
fn a_registry_without_a_catalog_fails_its_glob_rules_only() {
    let rules = rules(&format!(
        "{}{}{}",
        rule("apps", "\"team/*\""),
        rule("named", "\"team/app\""),
        rule("mixed", "\"team/app\", \"tools/**\""),
    ));
    let inventory = hub(refused(404, None), &["team/app"]);

    assert_eq!(
        problems(&rules, &inventory),
        [
            p("apps", RuleProblemKind::NoCatalog),
            p("mixed", RuleProblemKind::NoCatalog)
        ]
    );
    // A failed rule matches nothing, not even a name another rule spells out.
    assert!(matched_repositories(&rules.rules[0], &inventory).is_empty());
    assert!(matched_repositories(&rules.rules[2], &inventory).is_empty());
    assert_eq!(
        matched_repositories(&rules.rules[1], &inventory),
        ["team/app"]
    );
    // An empty catalog is taken for a registry that does not list: the same.
    let empty = hub(CatalogListing::Listed(0), &["team/app"]);
    assert_eq!(
        problems(&rules, &empty),
        [
            p("apps", RuleProblemKind::EmptyCatalog),
            p("mixed", RuleProblemKind::EmptyCatalog)
        ]
    );
    assert!(matched_repositories(&rules.rules[0], &empty).is_empty());
    assert_eq!(matched_repositories(&rules.rules[1], &empty), ["team/app"]);
}

#[test]
fn the_message_names_rule_registry_answer_and_what_to_write() {
    let rules = rules(&rule("apps", "\"team/*\", \"!team/old\""));
    let message = |listing| rule_problems(&rules, &hub(listing, &[]))[0].to_string();

    assert_eq!(
        message(refused(404, None)),
        "error: rule `apps`: registry `hub` does not list its repositories (GET /v2/_catalog answered 404): name them in `repositories`, e.g. [\"team/NAME\"]"
    );
    assert_eq!(
        message(refused(400, Some("UNSUPPORTED"))),
        "error: rule `apps`: registry `hub` does not list its repositories (GET /v2/_catalog answered 400 UNSUPPORTED): name them in `repositories`, e.g. [\"team/NAME\"]"
    );
    // A 401 may be missing credentials as much as a registry without a catalog.
    assert_eq!(
        message(refused(401, None)),
        "error: rule `apps`: registry `hub` does not list its repositories (GET /v2/_catalog answered 401: it may list none, or none to the credentials sent, or want a login where none is configured): name them in `repositories`, e.g. [\"team/NAME\"]"
    );
    assert_eq!(
        message(CatalogListing::Listed(0)),
        "error: rule `apps`: registry `hub` listed no repository at all (GET /v2/_catalog answered an empty list), so [\"team/*\", \"!team/old\"] matches nothing; a registry that lists none may not list its repositories: name them in `repositories`, e.g. [\"team/NAME\"]"
    );
}

#[test]
fn globs_matching_nothing_in_a_catalog_are_a_warning_and_in_an_empty_one_an_error() {
    let rules = rules(&format!(
        "{}{}",
        rule("apps", "\"apps/*\""),
        rule("tools", "\"tools/*\"")
    ));

    let listed = hub(CatalogListing::Listed(2), &["apps/web", "db/pg"]);
    let found = rule_problems(&rules, &listed);
    assert_eq!(
        found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "warning: rule `tools`: no repository of registry `hub` matches [\"tools/*\"] (its catalog lists 2 repositories)"
        ]
    );

    let empty = hub(CatalogListing::Listed(0), &[]);
    assert_eq!(
        problems(&rules, &empty),
        [
            p("apps", RuleProblemKind::EmptyCatalog),
            p("tools", RuleProblemKind::EmptyCatalog)
        ]
    );
    // Rules that spell their repositories out are never reported here
    // (a missing one is skipped with its reason), nor without a catalog read.
    let named = self::rules(&rule("web", "\"apps/web\""));
    assert!(rule_problems(&named, &empty).is_empty());
    assert!(rule_problems(&rules, &Inventory::default()).is_empty());
}

#[test]
fn the_example_keeps_the_plain_segments_of_the_first_glob() {
    for (patterns, expected) in [
        ("\"team/*\"", "[\"team/NAME\"]"),
        ("\"apps/**\", \"!apps/x\"", "[\"apps/NAME\"]"),
        ("\"**/web\"", "[\"NAME/web\"]"),
        ("\"a/*/b/**\"", "[\"a/NAME/b/NAME\"]"),
        ("\"**/*\"", "[\"NAME\"]"),
        ("\"!old\"", "[\"NAME\"]"),
    ] {
        let rules = rules(&rule("r", patterns));
        assert_eq!(example(&rules.rules[0]), expected, "{patterns}");
    }
}

#[test]
fn the_plan_carries_them_and_its_table_shows_them() {
    let rules = rules(&format!(
        "{}{}",
        rule("apps", "\"team/*\""),
        rule("named", "\"team/app\"")
    ));
    let plan = build(
        &rules,
        &hub(refused(404, None), &["team/app"]),
        BTreeMap::new(),
        None,
    )
    .unwrap();

    assert_eq!(plan.failed_rules(), 1);
    insta::assert_snapshot!(render_table(&plan), @r#"
    rule problems
      error: rule `apps`: registry `hub` does not list its repositories (GET /v2/_catalog answered 404): name them in `repositories`, e.g. ["team/NAME"]

    Plan: 0 to create, 0 to update, 0 unchanged, 0 blocked, 0 skipped; 1 rule failed.
    "#);
    // A plan written before the field existed still reads.
    let mut json = serde_json::to_value(&plan).unwrap();
    json.as_object_mut().unwrap().remove("rule_problems");
    let read: super::super::Plan = serde_json::from_value(json).unwrap();
    assert!(read.rule_problems.is_empty());
}
