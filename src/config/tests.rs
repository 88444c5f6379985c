//! Diagnostics of bad configuration files, as users see them (snapshots).

use super::LoadedConfig;
use crate::report::render_diagnostic;
use crate::rules::RuleSet;

const REGISTRIES: &str = r#"[registries.staging]
url = "oci-layout:staging"

[registries.prod]
url = "https://registry.example.com"
"#;

/// Everything `hoist check` reports for `text`, rendered.
fn check(text: &str) -> String {
    let loaded = match LoadedConfig::parse("promotions.toml", text) {
        Ok(loaded) => loaded,
        Err(error) => return render_diagnostic(&error).unwrap(),
    };
    let (_, problems) = RuleSet::compile(&loaded.config);
    match loaded.validate(problems) {
        Ok(()) => "ok".to_string(),
        Err(error) => render_diagnostic(&error).unwrap(),
    }
}

fn rule(body: &str) -> String {
    format!(
        "{REGISTRIES}\n[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\n{body}"
    )
}

#[test]
fn a_valid_file_has_no_problems() {
    assert_eq!(
        check(&rule(
            "repositories = [\"apps/**\"]\nfloating = [\"{major}\", \"latest\"]\n"
        )),
        "ok"
    );
}

#[test]
fn unknown_key_suggests_the_nearest() {
    insta::assert_snapshot!(check(&rule(
        "repositories = [\"apps/**\"]\ntgas = [\"1.*\"]\n"
    )));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(check(&rule("repositories = \"apps/**\"\n")));
}

#[test]
fn bad_glob() {
    insta::assert_snapshot!(check(&rule(
        "repositories = [\"apps/**\", \"apps/[web\"]\n"
    )));
}

#[test]
fn bad_semver_requirement() {
    insta::assert_snapshot!(check(&rule(
        "repositories = [\"apps/**\"]\nsemver = \">=1.0.0 <<3\"\n"
    )));
}

#[test]
fn unknown_template_variable() {
    insta::assert_snapshot!(check(&rule(
        "repositories = [\"apps/**\"]\nfloating = [\"{major}.{minr}\"]\n"
    )));
}

#[test]
fn template_variable_not_allowed_in_target() {
    insta::assert_snapshot!(check(&rule(
        "repositories = [\"apps/**\"]\ntarget = \"stable/{tag}\"\n"
    )));
}

#[test]
fn from_and_to_naming_no_registry() {
    let text = format!(
        "{REGISTRIES}\n[[promotion]]\nname = \"apps\"\nfrom = \"stagign\"\nto = [\"prod\", \"prod-eu\"]\nrepositories = [\"apps/**\"]\n"
    );
    insta::assert_snapshot!(check(&text));
}

#[test]
fn duplicate_rule_name() {
    let text = format!(
        "{}\n[[promotion]]\nname = \"apps\"\nfrom = \"staging\"\nto = \"prod\"\nrepositories = [\"tools/*\"]\n",
        rule("repositories = [\"apps/**\"]\n")
    );
    insta::assert_snapshot!(check(&text));
}

#[test]
fn pin_that_is_not_a_digest() {
    insta::assert_snapshot!(check(&rule(
        "repositories = [\"apps/**\"]\npin = { \"1.4.2\" = \"1.4.2\" }\n"
    )));
}

#[test]
fn several_problems_in_one_run() {
    let text = r#"[settings]
jobs = 0
colour = true

[registries.staging]
url = "ftp://staging.example.com"

[[promotion]]
name = "apps"
from = "staging"
to = "prod"
repositories = []
latest = 0
overwrite = "sometimes"

[[promotion]]
name = "tools"
from = "staging"
to = "staging"
repositories = ["tools/*"]
platforms = ["linux"]
"#;
    insta::assert_snapshot!(check(text));
}

#[test]
fn syntax_error() {
    insta::assert_snapshot!(check("[registries.staging\nurl = \"x\"\n"));
}

#[test]
fn credentials_settings_that_do_not_go_together() {
    let text = "[registries.prod]\nurl = \"registry.example.com\"\nusername_env = \"USER\"\n";
    insta::assert_snapshot!(check(text));
}
