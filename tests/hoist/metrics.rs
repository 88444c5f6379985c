//! `--metrics FILE` on `apply` and `verify`: the Prometheus text format,
//! read back with the reference parser (`prometheus_client`, PyPI) and
//! checked against the JSON report of the same run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::apply::config_at;
use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// Every sample of the file, parsed by `prometheus_client`:
/// `name{label="value",…}` → value, labels sorted.
fn parse(path: &Path) -> BTreeMap<String, f64> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(samples))
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 (./scripts/test installs prometheus_client)");
    assert!(
        output.status.success(),
        "the exposition parser refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parser output")
}

#[test]
fn apply_and_verify_write_metrics_the_reference_parser_reads() {
    let (staging, prod) = (TestRegistry::start(), TestRegistry::start());
    let client = seed::client(&staging);
    for (repository, tag) in [
        ("apps/web", "1.0.0"),
        ("apps/web", "1.1.0"),
        ("apps/api", "2.0.0"),
    ] {
        seed::push(
            client.as_ref(),
            repository,
            tag,
            &seed::small_image(repository, Format::Oci),
        );
    }
    let config = config_at(
        &[("staging", staging.host()), ("prod", prod.host())],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/*\"]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hoist.prom");
    let metrics = file.to_str().unwrap();
    let run = Hoist::new()
        .config(&config)
        .args(["apply", "--report", "report.json", "--metrics", metrics])
        .run()
        .success();
    let report = run.json_file("report.json");
    let samples = parse(&file);
    let summary = &report["summary"];
    assert_eq!(
        samples[r#"hoist_tags_total{rule="apps",status="promoted"}"#],
        3.0
    );
    for (metric, field) in [
        ("hoist_blobs_copied_total", "blobs_copied"),
        ("hoist_blobs_mounted_total", "blobs_mounted"),
        ("hoist_copied_bytes_total", "bytes_copied"),
        ("hoist_requests_total", "requests"),
        ("hoist_write_requests_total", "write_requests"),
    ] {
        assert_eq!(
            samples[&format!("{metric}{{}}")],
            summary[field].as_f64().unwrap(),
            "{metric}"
        );
    }
    assert_eq!(samples[r#"hoist_exit_status{command="apply"}"#], 0.0);
    let success = samples[r#"hoist_last_success_timestamp_seconds{command="apply"}"#];
    assert!(success > 1.7e9, "{success}");
    assert!(samples[r#"hoist_run_duration_seconds{command="apply"}"#] > 0.0);

    // A failing run: exit status 1, the last success time kept.
    let broken = config_at(
        &[("staging", staging.host()), ("prod", "127.0.0.1:1")],
        "[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n\
         repositories = [\"apps/web\"]\n",
    );
    Hoist::new()
        .config(&broken)
        .env("HOIST_RETRIES", "0")
        .args(["apply", "--metrics", metrics])
        .run();
    let samples = parse(&file);
    assert_ne!(samples[r#"hoist_exit_status{command="apply"}"#], 0.0);
    assert_eq!(
        samples[r#"hoist_last_success_timestamp_seconds{command="apply"}"#],
        success
    );

    // verify: the tags it checked and what it found.
    let verified = dir.path().join("verify.prom");
    Hoist::new()
        .config(&config)
        .args(["verify", "--metrics", verified.to_str().unwrap()])
        .run()
        .success();
    let samples = parse(&verified);
    assert_eq!(samples[r#"hoist_verify_tags{command="verify"}"#], 3.0);
    assert_eq!(samples[r#"hoist_verify_problems{command="verify"}"#], 0.0);
    assert_eq!(samples[r#"hoist_exit_status{command="verify"}"#], 0.0);
}
