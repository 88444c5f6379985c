//! `plan --diff` from hand-built inventories: a tag added, one removed, a
//! source rebuilt and a target tag changed behind the reviewer's back.

use super::super::test_inventory::{plan, rules, staging, target_has};
use super::*;
use crate::discover::Inventory;
use crate::keys::TagKey;
use crate::render::{render_diff_markdown, render_diff_table};

const RULE: &str = r#"
[[promotion]]
name = "web"
from = "staging"
to = "prod"
repositories = ["apps/web"]
overwrite = "always"
"#;

/// The reviewed plan, then the plan after 1.3.0 appeared, 1.0.0 went away,
/// 1.1.0 was rebuilt and someone pushed to prod's 1.2.0.
fn before_and_after() -> (Plan, Plan) {
    let rules = rules(RULE);
    let reviewed = staging("apps/web", &["1.0.0", "1.1.0", "1.2.0"]);
    let mut now: Inventory = staging("apps/web", &["1.1.0", "1.2.0", "1.3.0"]);
    let rebuilt = TagKey::new("staging", "apps/web", "1.1.0");
    if let Some(head) = now.source_heads.get_mut(&rebuilt) {
        head.digest = crate::digest::Digest::sha256_of(b"rebuilt 1.1.0");
    }
    target_has(&mut now, "prod", "apps/web", "1.2.0", "hotfix");
    (plan(&rules, &reviewed), plan(&rules, &now))
}

#[test]
fn added_removed_and_moved_target_tags() {
    let (before, after) = before_and_after();
    let diff = diff(&before, &after);
    let tags = |entries: &[PlanEntry]| -> Vec<String> {
        entries.iter().map(|e| e.target.tag.clone()).collect()
    };
    assert_eq!(tags(&diff.added), ["1.3.0"]);
    assert_eq!(tags(&diff.removed), ["1.0.0"]);
    let moved: Vec<(String, bool, bool, bool)> = diff
        .moved
        .iter()
        .map(|m| {
            (
                m.after.target.tag.clone(),
                m.source_moved,
                m.target_moved,
                m.action_changed,
            )
        })
        .collect();
    assert_eq!(
        moved,
        [
            ("1.1.0".to_string(), true, false, false),
            ("1.2.0".to_string(), false, true, true),
        ]
    );
}

#[test]
fn an_unchanged_plan_has_an_empty_diff() {
    let (before, _) = before_and_after();
    let diff = diff(&before, &before);
    assert!(diff.is_empty());
    assert_eq!(
        render_diff_table(&diff, "plan.json"),
        "Since plan.json: 0 added, 0 removed, 0 moved.\n"
    );
}

#[test]
fn diff_table_snapshot() {
    let (before, after) = before_and_after();
    insta::assert_snapshot!(render_diff_table(&diff(&before, &after), "plan.json"));
}

#[test]
fn diff_markdown_snapshot() {
    let (before, after) = before_and_after();
    insta::assert_snapshot!(render_diff_markdown(&diff(&before, &after), "plan.json"));
}
