use serde_json::json;

use super::*;

/// The predicate of the SLSA Provenance v1 example (slsa.dev/spec/v1.0/provenance,
/// "Example"), trimmed.
fn provenance() -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {
                    "ref": "refs/heads/main",
                    "repository": "https://github.com/octocat/hello-world",
                    "path": ".github/workflow/release.yml"
                }
            }
        },
        "runDetails": {
            "builder": { "id": "https://github.com/actions/runner/github-hosted" }
        }
    })
}

/// A Trivy report inside cosign's vulnerability predicate (`cosign attest
/// --type vuln`), trimmed.
fn vulnerabilities(severities: &[&str]) -> Value {
    let found: Vec<Value> = severities
        .iter()
        .map(|s| json!({ "VulnerabilityID": "CVE-2024-0001", "Severity": s }))
        .collect();
    json!({
        "scanner": { "uri": "pkg:github/aquasecurity/trivy@0.50.0", "result": {
            "Results": [ { "Target": "os" }, { "Target": "app", "Vulnerabilities": found } ]
        } }
    })
}

fn condition(path: &str, test: Test) -> Condition {
    Condition::new(path, test).unwrap()
}

fn matches(pattern: &str) -> Test {
    Test::Matches(
        pattern.to_string(),
        regex_lite::Regex::new(&format!("^(?:{pattern})$")).unwrap(),
    )
}

#[test]
fn builder_and_source_conditions_pass_and_fail_with_the_value_found() {
    let predicate = provenance();
    let builder = "https://github.com/actions/runner/github-hosted".to_string();
    assert_eq!(
        condition("runDetails.builder.id", Test::Equals(builder)).holds(&predicate),
        Ok(())
    );
    let source = "buildDefinition.externalParameters.workflow.repository";
    assert_eq!(
        condition(source, matches("https://github.com/octocat/.*")).holds(&predicate),
        Ok(())
    );
    // Anchored: a pattern matching part of the value does not pass.
    let partial = condition(source, matches("octocat"))
        .holds(&predicate)
        .unwrap_err();
    assert!(
        partial.contains("`https://github.com/octocat/hello-world`"),
        "{partial}"
    );
    let other = condition("runDetails.builder.id", Test::Equals("https://evil".into()))
        .holds(&predicate)
        .unwrap_err();
    assert_eq!(
        other,
        "`runDetails.builder.id` is `https://github.com/actions/runner/github-hosted`, not `https://evil`"
    );
}

#[test]
fn a_condition_on_an_absent_field_fails() {
    for test in [
        Test::Equals("x".into()),
        matches(".*"),
        Test::OneOf(vec!["x".into()]),
    ] {
        let why = condition("runDetails.builder.version", test)
            .holds(&provenance())
            .unwrap_err();
        assert_eq!(why, "`runDetails.builder.version` is absent");
    }
    let none = condition(
        "scanner.result.Results[*].Vulnerabilities[*].Severity",
        Test::BelowSeverity(Severity::High),
    );
    assert!(none.holds(&provenance()).is_err(), "no report at all fails");
}

#[test]
fn findings_below_the_severity_pass_and_one_at_it_fails() {
    let path = "scanner.result.Results[*].Vulnerabilities[*].Severity";
    let below_high = condition(path, Test::BelowSeverity(Severity::High));
    assert_eq!(below_high.holds(&vulnerabilities(&[])), Ok(()));
    assert_eq!(
        below_high.holds(&vulnerabilities(&["LOW", "MEDIUM"])),
        Ok(())
    );
    let why = below_high
        .holds(&vulnerabilities(&["LOW", "HIGH"]))
        .unwrap_err();
    assert!(why.contains("severity `HIGH`, at or above High"), "{why}");
    let odd = below_high.holds(&vulnerabilities(&["SEVERE"])).unwrap_err();
    assert!(odd.contains("no severity"), "{odd}");
}

#[test]
fn paths_are_checked_when_the_rule_is_compiled() {
    for bad in ["", "a..b", "a[", "a[x]", "a[0]b", "[0]"] {
        assert!(
            Condition::new(bad, Test::Equals("x".into())).is_err(),
            "{bad}"
        );
    }
    let indexed = condition(
        "buildDefinition.externalParameters.workflow.ref",
        Test::OneOf(vec!["refs/heads/main".into()]),
    );
    assert_eq!(indexed.holds(&provenance()), Ok(()));
    let list = json!({ "materials": [ { "uri": "a" }, { "uri": "b" } ] });
    assert_eq!(
        condition("materials[1].uri", Test::Equals("b".into())).holds(&list),
        Ok(())
    );
    assert!(
        condition("materials[*].uri", Test::Equals("a".into()))
            .holds(&list)
            .is_err()
    );
}
