//! `hoist plan --format markdown` and the job summary `plan` and `apply`
//! append to `GITHUB_STEP_SUMMARY`, against real registries.

use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

/// `staging` and `prod`, and one rule promoting `apps/*` from one to the other.
fn config(staging: &TestRegistry, prod: &TestRegistry) -> String {
    format!(
        r#"[registries.staging]
url = "{}"

[registries.prod]
url = "{}"

[[promotion]]
name = "apps"
from = "staging"
to = "prod"
repositories = ["apps/*"]
"#,
        staging.host(),
        prod.host()
    )
}

/// Pushes the small image named `image` as `repository:tag`.
fn push(registry: &TestRegistry, repository: &str, tag: &str, image: &str) {
    let spec = seed::small_image(image, Format::Oci);
    seed::push(seed::client(registry).as_ref(), repository, tag, &spec);
}

/// Staging holds `apps/web` 1.0.0 and 1.1.0 and `apps/api` 1.0.0; prod
/// already holds `apps/web:1.0.0`, and `apps/web:1.1.0` at another image.
fn reviewed_registries() -> (TestRegistry, TestRegistry) {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push(&staging, "apps/web", "1.0.0", "web:1.0.0");
    push(&staging, "apps/web", "1.1.0", "web:1.1.0");
    push(&staging, "apps/api", "1.0.0", "api:1.0.0");
    push(&prod, "apps/web", "1.0.0", "web:1.0.0");
    push(&prod, "apps/web", "1.1.0", "rebuilt");
    (staging, prod)
}

#[test]
fn plan_as_markdown_puts_blocked_entries_first_and_collapses_each_repository() {
    let (staging, prod) = reviewed_registries();
    let run = Hoist::new()
        .config(&config(&staging, &prod))
        .args(["plan", "--format", "markdown"])
        .run()
        .success();
    let md = &run.stdout;
    assert!(
        md.starts_with(
            "### hoist plan\n\n**Plan: 1 to create, 0 to update, 1 unchanged, 1 blocked, 0 skipped**."
        ),
        "{md}"
    );
    let blocked = md.find("#### Blocked (1)\n\n| Target | Source | Digest | Reason |");
    let first_section = md.find("<details>");
    assert!(blocked.is_some() && blocked < first_section, "{md}");
    assert!(md.contains("| `prod/apps/web:1.1.0` | `staging/apps/web:1.1.0` |"));
    assert!(md.contains("overwrite = \"never\" |"));
    assert_eq!(md.matches("<details>").count(), 2, "{md}");
    assert_eq!(md.matches("</details>").count(), 2, "{md}");
    assert!(md.contains(
        "<details>\n<summary><code>prod/apps/api</code>: 1 to create</summary>\n\n\
         | Action | Tag | Source | Digest | Rules | Notes |\n| --- | --- | --- | --- | --- | --- |\n\
         | ➕ create | `1.0.0` | `staging/apps/api:1.0.0` | `sha256:"
    ));
    assert!(md.contains("<summary><code>prod/apps/web</code>: 1 unchanged, 1 blocked</summary>"));
    assert!(md.contains("1 unchanged tag not listed (`--verbose` lists them).\n\n</details>"));
    assert!(!md.contains("| unchanged |"));

    let verbose = Hoist::new()
        .config(&config(&staging, &prod))
        .args(["plan", "--format", "markdown", "--verbose"])
        .run()
        .success();
    assert!(
        verbose
            .stdout
            .contains("| unchanged | `1.0.0` | `staging/apps/web:1.0.0` |")
    );
    assert!(!verbose.stdout.contains("not listed"));
}

#[test]
fn plan_appends_its_markdown_to_the_github_step_summary() {
    let (staging, prod) = reviewed_registries();
    let hoist = Hoist::new().config(&config(&staging, &prod));
    let summary = hoist.dir().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let run = hoist
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["plan"])
        .run()
        .success();
    // stdout keeps the format asked for; the file gets the markdown.
    assert!(run.stdout.contains("Plan: 1 to create"), "{}", run.stdout);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("earlier step\n### hoist plan\n\n**Plan: 1 to create"),
        "{text}"
    );
    assert_eq!(text.matches("<details>").count(), 2, "{text}");
}

#[test]
fn apply_appends_the_plan_and_the_run_totals_to_the_github_step_summary() {
    let staging = TestRegistry::start();
    let prod = TestRegistry::start();
    push(&staging, "apps/web", "1.0.0", "web:1.0.0");
    push(&staging, "apps/api", "1.0.0", "api:1.0.0");
    let hoist = Hoist::new().config(&config(&staging, &prod));
    let summary = hoist.dir().join("step-summary.md");
    // The run keeps the scratch directory, and the summary in it, alive.
    let _run = hoist
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["apply"])
        .run()
        .success();
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("### hoist plan\n\n**Plan: 2 to create"),
        "{text}"
    );
    let apply = text.find("### hoist apply\n\n**2 tags promoted, 0 unchanged, 0 failed; ");
    assert!(apply > text.find("</details>"), "{text}");
    assert!(!text.contains("| Outcome |"), "{text}");
}

#[test]
fn a_step_summary_that_cannot_be_written_is_said_and_the_plan_stands() {
    let (staging, prod) = reviewed_registries();
    let hoist = Hoist::new().config(&config(&staging, &prod));
    let summary = hoist.dir().join("no-such-dir").join("summary.md");
    let run = hoist
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["plan"])
        .run()
        .success();
    assert!(
        run.stderr
            .contains("warning: could not append the summary to GITHUB_STEP_SUMMARY"),
        "{}",
        run.stderr
    );
}

#[test]
fn plan_diff_shows_only_what_changed_since_the_reviewed_plan() {
    let (staging, prod) = reviewed_registries();
    let config = config(&staging, &prod);
    let review = Hoist::new()
        .config(&config)
        .args(["plan", "--out", "reviewed.json"])
        .run()
        .success();
    let reviewed = review.dir().join("reviewed.json");
    push(&staging, "apps/web", "1.2.0", "web:1.2.0");
    push(&staging, "apps/api", "1.0.0", "api:rebuilt");
    let diff = |format: &str| {
        Hoist::new()
            .config(&config)
            .args(["plan", "--format", format, "--diff"])
            .args([&reviewed])
            .run()
            .success()
            .stdout
    };

    let json: serde_json::Value = serde_json::from_str(&diff("json")).unwrap();
    let tags = |list: &str| -> Vec<String> {
        json[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let e = if list == "moved" { &e["after"] } else { e };
                format!(
                    "{}:{}",
                    e["target"]["repository"].as_str().unwrap(),
                    e["target"]["tag"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(tags("added"), ["apps/web:1.2.0"], "{json}");
    assert_eq!(tags("removed"), Vec::<String>::new());
    assert_eq!(tags("moved"), ["apps/api:1.0.0"]);
    assert_eq!(json["moved"][0]["source_moved"], true);
    assert_eq!(json["moved"][0]["target_moved"], false);

    let table = diff("table");
    assert!(
        table.contains("  + prod/apps/web:1.2.0  <- staging/apps/web:1.2.0"),
        "{table}"
    );
    assert!(
        table.contains("  ~ prod/apps/api:1.0.0  source sha256:"),
        "{table}"
    );
    assert!(table.ends_with("1 added, 0 removed, 1 moved.\n"), "{table}");

    let markdown = diff("markdown");
    assert!(
        markdown.starts_with("### hoist plan: changes since `"),
        "{markdown}"
    );
    assert!(markdown.contains("**1 added, 0 removed, 1 moved**."));
    assert!(
        markdown.contains("| added | `prod/apps/web:1.2.0` |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| moved | `prod/apps/api:1.0.0` |"),
        "{markdown}"
    );
}

#[test]
fn an_unreadable_reviewed_plan_is_a_usage_error() {
    let (staging, prod) = reviewed_registries();
    let run = Hoist::new()
        .config(&config(&staging, &prod))
        .args(["plan", "--diff", "missing.json"])
        .run()
        .code(2);
    assert!(run.stderr.contains("missing.json"), "{}", run.stderr);
}

/// HTML of `markdown` as a CommonMark renderer with tables makes it
/// (markdown-it-py, through scripts/render-markdown).
fn render_html(markdown: &str) -> String {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/render-markdown");
    let mut child = std::process::Command::new(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("scripts/render-markdown (markdown-it-py; scripts/test installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(markdown.as_bytes())
        .expect("markdown to the renderer");
    drop(stdin);
    let output = child.wait_with_output().expect("the renderer's HTML");
    assert!(output.status.success(), "scripts/render-markdown failed");
    String::from_utf8(output.stdout).expect("UTF-8 HTML")
}

#[test]
fn the_markdown_plan_renders_to_tables_inside_details() {
    let (staging, prod) = reviewed_registries();
    let run = Hoist::new()
        .config(&config(&staging, &prod))
        .args(["plan", "--format", "markdown"])
        .run()
        .success();
    let html = render_html(&run.stdout);
    assert!(html.contains("<h3>hoist plan</h3>"), "{html}");
    assert_eq!(html.matches("<details>").count(), 2, "{html}");
    assert_eq!(html.matches("</details>").count(), 2, "{html}");
    // The blocked entries' table and one per section: none left as text.
    assert_eq!(html.matches("<table>").count(), 3, "{html}");
    assert!(!html.contains("| ---"), "{html}");
    assert!(html.contains("<summary><code>prod/apps/api</code>: 1 to create</summary>\n<table>"));
    assert!(
        html.contains("<td><code>staging/apps/api:1.0.0</code></td>"),
        "{html}"
    );
    assert!(
        html.contains("overwrite = &quot;never&quot;</td>"),
        "{html}"
    );
}
