//! The checked-in JSON Schemas match the code, and the shipped config parses.

use crate::support::Hoist;

/// `hoist schema DOCUMENT` prints exactly the checked-in `schemas/FILE`.
fn assert_current(document: &str, file: &str) {
    let run = Hoist::new().args(["schema", document]).run().success();
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let checked_in = std::fs::read_to_string(&path).expect("checked-in schema");
    assert!(
        run.stdout == checked_in,
        "schemas/{file} is stale: run `cargo run -- schema {document} > schemas/{file}`"
    );
}

#[test]
fn promotions_schema_is_current() {
    assert_current("config", "promotions.schema.json");
}

#[test]
fn plan_schema_is_current() {
    assert_current("plan", "plan.schema.json");
}

#[test]
fn report_schema_is_current() {
    assert_current("report", "report.schema.json");
}

#[test]
fn top_level_promotions_toml_names_the_example_store() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/promotions.toml");
    let run = Hoist::new()
        .args(["-c", config, "ls", "staging"])
        .run()
        .success();
    assert_eq!(
        run.lines(),
        ["apps/api", "apps/web", "apps/worker", "tools/debug"]
    );
}
