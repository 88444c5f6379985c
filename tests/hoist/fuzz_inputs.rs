//! Replays the fuzz targets' seeds and every input a fuzzer once crashed on
//! (`fuzz/regressions/TARGET/`) through the same checks `cargo fuzz` runs.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::Path;

#[test]
fn fuzz_seeds_and_regressions_pass_their_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, check) in harness::TARGETS {
        let mut replayed = 0;
        for set in ["seeds", "regressions"] {
            let dir = root.join(set).join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for entry in entries {
                let path = entry.unwrap().path();
                if path.file_name().is_some_and(|n| n == ".gitkeep") {
                    continue;
                }
                let input = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| check(&input));
                assert!(outcome.is_ok(), "{name}: {} fails", path.display());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no input for {name} under fuzz/");
    }
}
