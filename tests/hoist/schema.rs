//! The checked-in JSON Schemas match the code, and the shipped config parses.

use crate::support::Hoist;

#[test]
fn promotions_schema_is_current() {
    let run = Hoist::new().args(["schema", "config"]).run().success();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/promotions.schema.json"
    );
    let checked_in = std::fs::read_to_string(path).expect("schemas/promotions.schema.json");
    assert!(
        run.stdout == checked_in,
        "schemas/promotions.schema.json is stale: run `cargo run -- schema config > schemas/promotions.schema.json`"
    );
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
