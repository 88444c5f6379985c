//! The markdown plan from hand-built inventories: every action kind, the
//! escaping of cells, and a plan of 2,000 entries.

use super::*;
use crate::discover::CatalogListing;
use crate::plan::test_inventory::{add_source, plan, rules, staging, target_has};
use crate::registry::CatalogRefusal;

/// Creates, an update, an unchanged tag, blocked entries, skipped tags and
/// a rule whose registry lists no repositories.
const EVERY_KIND: &str = r#"
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

[[promotion]]
name = "teams"
from = "eu"
to = "prod"
repositories = ["team/*"]
"#;

fn every_kind() -> Plan {
    let mut inventory = staging("apps/web", &["1.0.0", "1.1.0", "2.0.0", "main", "latest"]);
    let web = "apps/web";
    target_has(&mut inventory, "prod", web, "1.0.0", "apps/web:1.0.0");
    target_has(&mut inventory, "prod", web, "1.1.0", "rebuilt:1.1.0");
    target_has(&mut inventory, "prod", web, "1", "apps/web:1.0.0");
    target_has(&mut inventory, "prod", web, "latest", "apps/web:1.0.0");
    inventory.catalogs.insert(
        "eu".into(),
        CatalogListing::Refused(CatalogRefusal {
            status: 404,
            code: None,
        }),
    );
    plan(&rules(EVERY_KIND), &inventory)
}

#[test]
fn markdown_snapshot() {
    let plan = every_kind();
    assert_eq!(plan.failed_rules(), 1);
    insta::assert_snapshot!(render_markdown(&plan, MarkdownOptions::default()));
}

#[test]
fn verbose_lists_unchanged_tags() {
    let plan = every_kind();
    let quiet = render_markdown(&plan, MarkdownOptions::default());
    let verbose = render_markdown(
        &plan,
        MarkdownOptions {
            verbose: true,
            ..MarkdownOptions::default()
        },
    );
    assert!(quiet.contains("1 unchanged tag not listed"));
    assert!(!quiet.contains("| unchanged | `1.0.0` |"));
    assert!(verbose.contains("| unchanged | `1.0.0` |"));
    assert!(!verbose.contains("not listed"));
}

#[test]
fn cells_escape_pipes_and_markdown() {
    assert_eq!(code("a|b"), "`a\\|b`");
    assert_eq!(code("a`b"), "a\\`b");
    assert_eq!(escape_text("x | *y* <b>\nz"), "x \\| \\*y\\* \\<b\\> z");
    assert_eq!(escape_html("<a & b>"), "&lt;a &amp; b&gt;");
}

/// The staging repositories `names`, each with the versions 1.0.0 to
/// 1.99.0; and those versions.
fn hundred_versions_each(names: &[String]) -> (crate::discover::Inventory, Vec<String>) {
    let tags: Vec<String> = (0..100).map(|i| format!("1.{i}.0")).collect();
    let borrowed: Vec<&str> = tags.iter().map(String::as_str).collect();
    let mut inventory = staging(&names[0], &borrowed);
    for name in &names[1..] {
        add_source(&mut inventory, name, &borrowed);
    }
    (inventory, tags)
}

/// 20 repositories of 100 versions, half of them already in the target.
#[test]
fn two_thousand_entries_stay_collapsed_and_count_unchanged() {
    let (mut inventory, tags) =
        hundred_versions_each(&(0..20).map(|r| format!("r{r}")).collect::<Vec<_>>());
    for r in 0..20 {
        let repository = format!("r{r}");
        for tag in &tags[..50] {
            let image = format!("{repository}:{tag}");
            target_has(&mut inventory, "prod", &repository, tag, &image);
        }
    }
    let rule = "[[promotion]]\nname = \"all\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"**\"]\n";
    let plan = plan(&rules(rule), &inventory);
    assert_eq!(plan.entries.len(), 2000);
    let unlimited = MarkdownOptions {
        max_chars: usize::MAX,
        ..MarkdownOptions::default()
    };
    let markdown = render_markdown(&plan, unlimited);
    assert!(
        markdown
            .starts_with("### hoist plan\n\n**Plan: 1000 to create, 0 to update, 1000 unchanged")
    );
    assert_eq!(markdown.matches("<details>").count(), 20);
    assert_eq!(markdown.matches("</details>").count(), 20);
    assert!(!markdown.contains("<details open"));
    assert_eq!(markdown.matches("| ➕ create |").count(), 1000);
    assert_eq!(markdown.matches("| unchanged |").count(), 0);
    assert_eq!(
        markdown
            .matches("50 unchanged tags not listed (`--verbose` lists them).")
            .count(),
        20
    );
    assert!(markdown.contains(
        "<summary><code>prod/r7</code>: 50 to create, 50 unchanged</summary>\n\n| Action"
    ));
    // A reviewer's page, not a dump: well under GitHub's 1 MiB job summary.
    assert!(markdown.len() < 200_000, "{}", markdown.len());
}

/// A plan too long for a pull request comment keeps the summary and as
/// many repositories as fit, and counts the rest.
#[test]
fn a_long_plan_stays_under_the_comment_limit_and_counts_what_it_leaves_out() {
    let (inventory, _) =
        hundred_versions_each(&(0..40).map(|r| format!("r{r:02}")).collect::<Vec<_>>());
    let rule = "[[promotion]]\nname = \"all\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"**\"]\n";
    let plan = plan(&rules(rule), &inventory);
    assert_eq!(plan.entries.len(), 4000);
    let markdown = render_markdown(&plan, MarkdownOptions::default());
    assert!(
        markdown.chars().count() <= COMMENT_LIMIT,
        "{}",
        markdown.len()
    );
    assert!(markdown.starts_with("### hoist plan\n\n**Plan: 4000 to create"));
    let listed = markdown.matches("<details>").count();
    assert!(listed > 0 && listed < 40, "{listed} sections listed");
    let rows = markdown.matches("| ➕ create |").count();
    assert_eq!(rows, listed * 100, "whole sections only");
    let note = format!(
        "**Not listed: {} more target repositories ({} to create)**, to keep this page under 65536 characters",
        40 - listed,
        4000 - rows
    );
    assert!(
        markdown.contains(&note),
        "{}",
        &markdown[markdown.len() - 400..]
    );
    // The sections are in order: the first ones are listed.
    assert!(markdown.contains("<code>prod/r00</code>"));
    assert!(!markdown.contains("<code>prod/r39</code>"));

    // A higher limit lists more; one that fits everything adds no note.
    let roomy = MarkdownOptions {
        max_chars: 1_000_000,
        ..MarkdownOptions::default()
    };
    let markdown = render_markdown(&plan, roomy);
    assert_eq!(markdown.matches("<details>").count(), 40);
    assert!(!markdown.contains("Not listed"));
}

/// Blocked entries come before every section, and are counted too when
/// even they do not fit.
#[test]
fn blocked_entries_that_do_not_fit_are_counted() {
    let plan = every_kind();
    let blocked = plan
        .entries
        .iter()
        .filter(|e| e.action.blocked_reason().is_some())
        .count();
    assert!(blocked > 0);
    let tiny = MarkdownOptions {
        max_chars: 700,
        ..MarkdownOptions::default()
    };
    let markdown = render_markdown(&plan, tiny);
    let counted = count(blocked, "more blocked entry", "more blocked entries");
    assert!(
        markdown.contains(&format!("{counted} not listed here.")),
        "{markdown}"
    );
    assert!(markdown.contains("**Not listed: "), "{markdown}");
}
