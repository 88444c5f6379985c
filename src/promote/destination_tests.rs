//! Stevedore's `promote` command lines, parsed by clap as the binary parses
//! them, and the target and tags they come to.

use super::*;
use clap::Parser;

fn parsed(line: &[&str]) -> crate::cli::PromoteArgs {
    let mut argv = vec!["hoist", "promote"];
    argv.extend(line);
    match crate::cli::Cli::parse_from(argv).command {
        crate::cli::Command::Promote(args) => *args,
        _ => unreachable!(),
    }
}

fn args(line: &[&str]) -> Request {
    parsed(line).request()
}

/// The destination `hoist promote LINE` works out.
fn destination_for(line: &[&str]) -> Result<Destination, String> {
    let args = args(line);
    let source = source_reference(&args.source, &|_| false).unwrap();
    destination(&args, &source, &|_| false).map_err(|e| e.to_string())
}

/// The tags `hoist promote LINE` writes, or its error as a user reads it.
fn tags_for(line: &[&str]) -> Result<Vec<String>, String> {
    destination_for(line).map(|d| d.tags.into_iter().map(|t| t.0).collect())
}

/// The same, sorted, for comparing sets of tags.
fn sorted_tags_for(line: &[&str]) -> Vec<String> {
    let mut tags = tags_for(line).unwrap();
    tags.sort();
    tags
}

#[test]
fn stevedore_worked_example() {
    let mut tags = tags_for(&[
        "reg.example.com/app1:0.1.0-base2.4.6",
        "prod.example.com/app1",
        "--promote-image-tag",
        "latest",
        "--force-promote-source-image",
        "--enable-semver-tags",
        "--semver-tags-template",
        "{{ .Major }}.{{ .Minor }}.{{ .Patch }}",
        "--semver-tags-template",
        "{{ .Major }}.{{ .Minor }}",
    ])
    .unwrap();
    tags.sort();
    assert_eq!(tags, ["0.1", "0.1.0", "0.1.0-base2.4.6", "latest"]);
    // The defaults are the same two templates.
    let mut defaults = tags_for(&[
        "reg.example.com/app1:0.1.0-base2.4.6",
        "prod.example.com/app1",
        "--tag",
        "latest",
        "--keep-source-tag",
        "--semver-tags",
    ])
    .unwrap();
    defaults.sort();
    assert_eq!(defaults, tags);
}

#[test]
fn first_tag_replaces_the_rest_are_extra() {
    assert_eq!(
        tags_for(&["r.io/a/b:1.0", "s.io/a/b", "--tag", "x", "--tag", "y"]).unwrap(),
        ["x", "y"]
    );
    assert_eq!(tags_for(&["r.io/a/b:1.0", "s.io/a/b"]).unwrap(), ["1.0"]);
    assert_eq!(
        tags_for(&["r.io/a/b:1.0", "s.io/a/b:prod"]).unwrap(),
        ["prod"]
    );
}

#[test]
fn registry_namespace_and_name_rewrite_the_source() {
    let args = args(&[
        "r.io/team/tools/app:1.0",
        "--promote-image-registry-host",
        "prod.io",
        "--promote-image-registry-namespace",
        "stable",
        "--promote-image-name",
        "svc",
    ]);
    let source = Reference::parse(&args.source, &|_| false).unwrap();
    let d = destination(&args, &source, &|_| false).unwrap();
    assert_eq!(d.target.to_string(), "prod.io/stable/svc");
    let args = args_only_name();
    let source = Reference::parse(&args.source, &|_| false).unwrap();
    let d = destination(&args, &source, &|_| false).unwrap();
    assert_eq!(d.target.to_string(), "r.io/team/svc");
}

fn args_only_name() -> Request {
    args(&["r.io/team/app:1.0", "--name", "svc"])
}

#[test]
fn semver_errors_are_errors_and_non_versions_are_notes() {
    // A tag that is not a version derives nothing and says so (Stevedore
    // skips it silently); it is not an error.
    let d = destination_for(&["r.io/a:main", "s.io/a", "--semver-tags"]).unwrap();
    assert_eq!(d.tags.len(), 1);
    assert_eq!(d.tags[0].0, "main");
    assert_eq!(d.notes.len(), 1);
    assert!(
        d.notes[0].contains("`main` is not a semantic version"),
        "{:?}",
        d.notes
    );
    // A template that does not parse stays an error.
    let err = tags_for(&[
        "r.io/a:1.0.0",
        "s.io/a",
        "--semver-tags",
        "--semver-template",
        "{nope}",
    ])
    .unwrap_err();
    assert!(err.contains("nope"), "{err}");
    let err = tags_for(&["r.io/a:1.0.0"]).unwrap_err();
    assert!(err.contains("source itself"), "{err}");
}

#[test]
fn stevedore_worked_example_with_short_flags_and_comma_lists() {
    let line = [
        "reg.example.com/app1:0.1.0-base2.4.6",
        "-r",
        "prod.example.com",
        "-t",
        "latest",
        "-s",
        "-S",
        "-T",
        "{{ .Major }}.{{ .Minor }}.{{ .Patch }},{{ .Major }}.{{ .Minor }}",
    ];
    assert_eq!(
        sorted_tags_for(&line),
        ["0.1", "0.1.0", "0.1.0-base2.4.6", "latest"]
    );
    let d = destination_for(&line).unwrap();
    assert_eq!(d.target.to_string(), "prod.example.com/app1");
    assert_eq!(d.notes.len(), 1, "latest derives nothing: {:?}", d.notes);
}

#[test]
fn tag_flag_takes_comma_lists_and_repeats() {
    assert_eq!(
        tags_for(&["r.io/a:1.0", "s.io/a", "-t", "latest,stable", "-t", "prod"]).unwrap(),
        ["latest", "stable", "prod"]
    );
}

#[test]
fn semver_derives_from_every_version_written_not_only_the_source() {
    // Nothing to derive from `latest`: the source tag is not written.
    assert_eq!(
        tags_for(&["r.io/a:1.2.3", "s.io/a", "-t", "latest", "-S"]).unwrap(),
        ["latest"]
    );
    // With -s the source tag is written and derives.
    assert_eq!(
        sorted_tags_for(&["r.io/a:1.2.3", "s.io/a", "-t", "latest", "-s", "-S"]),
        ["1.2", "1.2.3", "latest"]
    );
    // An extra tag that is a version derives too.
    assert_eq!(
        sorted_tags_for(&["r.io/a:main", "s.io/a", "-t", "latest,2.0.1", "-S"]),
        ["2.0", "2.0.1", "latest"]
    );
}

#[test]
fn versions_are_read_leniently() {
    assert_eq!(
        sorted_tags_for(&["r.io/a:v1.2", "s.io/a", "-S"]),
        ["1.2", "1.2.0", "v1.2"]
    );
    assert_eq!(
        sorted_tags_for(&["r.io/a:3", "s.io/a", "-S", "-T", "{{ .Major }}"]),
        ["3"]
    );
}

#[test]
fn templates_see_prerelease_and_build() {
    assert_eq!(
        tags_for(&[
            "r.io/a:1.2.3-rc.1",
            "s.io/a",
            "-S",
            "-T",
            "{{ .Major }}-{{ .PreRelease }},{{ .Minor }}{{ .Build }}",
        ])
        .unwrap(),
        ["1.2.3-rc.1", "1-rc.1", "2"]
    );
    assert_eq!(
        tags_for(&["r.io/a:1.2.3_b7", "s.io/a", "-S"]).unwrap(),
        ["1.2.3_b7"],
        "an underscore is no build metadata: not a version"
    );
}

#[test]
fn source_without_a_tag_is_latest() {
    assert_eq!(tags_for(&["r.io/a", "s.io/a"]).unwrap(), ["latest"]);
    assert_eq!(
        tags_for(&["r.io/a", "s.io/a", "-t", "1.0", "-s"]).unwrap(),
        ["1.0", "latest"]
    );
}

#[test]
fn short_registry_namespace_and_name() {
    let d = destination_for(&[
        "r.io/team/tools/app:1.0",
        "-r",
        "prod.io",
        "-n",
        "stable",
        "-i",
        "svc",
    ])
    .unwrap();
    assert_eq!(d.target.to_string(), "prod.io/stable/svc");
}

#[test]
fn empty_namespace_clears_it() {
    let d = destination_for(&["r.io/team/tools/app:1.0", "-r", "prod.io", "-n", ""]).unwrap();
    assert_eq!(d.target.to_string(), "prod.io/app");
    let d = destination_for(&[
        "r.io/team/app:1.0",
        "--promote-image-registry-namespace=",
        "-t",
        "x",
    ])
    .unwrap();
    assert_eq!(d.target.to_string(), "r.io/app");
}

#[test]
fn dry_run_and_no_op_flags_parse() {
    let args = parsed(&[
        "r.io/a:1",
        "s.io/a",
        "-D",
        "-R",
        "--remove-local-images-after-push",
        "--use-docker-normalized-name",
    ]);
    assert!(args.dry_run);
    assert!(args.stevedore.use_source_image_from_remote);
    assert!(args.stevedore.remove_local_images_after_push);
    assert!(args.stevedore.use_docker_normalized_name);
    assert!(args.stevedore.deprecations().is_empty());
    assert_eq!(args.request(), parsed(&["r.io/a:1", "s.io/a"]).request());
}

#[test]
fn deprecated_flags_work_and_say_what_replaces_them() {
    let args = parsed(&[
        "r.io/team/a:1",
        "--remove-promote-tags",
        "--promote-image-host",
        "prod.io",
        "--promote-image-namespace",
        "stable",
    ]);
    assert_eq!(
        args.stevedore.deprecations(),
        [
            "[DEPRECATED FLAG] use `remove-local-images-after-push` instead of `remove-promote-tags`",
            "[DEPRECATED FLAG] use `promote-image-registry-host` instead of `promote-image-host`",
            "[DEPRECATED FLAG] use `promote-image-registry-namespace` instead of `promote-image-namespace`",
        ]
    );
    let request = args.request();
    assert_eq!(request.registry.as_deref(), Some("prod.io"));
    assert_eq!(request.namespace.as_deref(), Some("stable"));
    // The current name wins over the deprecated one, as in Stevedore.
    let both = parsed(&["r.io/a:1", "--promote-image-host", "old.io", "-r", "new.io"]);
    assert_eq!(both.request().registry.as_deref(), Some("new.io"));
}

#[test]
fn publish_and_copy_are_aliases() {
    for alias in ["publish", "copy"] {
        let cli = crate::cli::Cli::parse_from(["hoist", alias, "r.io/a:1", "-t", "x"]);
        assert!(
            matches!(cli.command, crate::cli::Command::Promote(_)),
            "{alias}"
        );
    }
}

#[test]
fn move_never_deletes_a_tag_it_writes() {
    let err = tags_for(&["r.io/a:1.2.3", "-t", "1.2.3,latest", "--move"]).unwrap_err();
    assert!(err.contains("--move would delete `1.2.3`"), "{err}");
    let err = tags_for(&["r.io/a:1.2.3", "-t", "latest", "-s", "--move"]).unwrap_err();
    assert!(err.contains("--move"), "{err}");
    // A rename within the repository, or a move elsewhere, is fine.
    assert_eq!(
        tags_for(&["r.io/a:rc", "-t", "1.0", "--move"]).unwrap(),
        ["1.0"]
    );
    assert_eq!(
        tags_for(&["r.io/a:1.2.3", "s.io/a", "--move"]).unwrap(),
        ["1.2.3"]
    );
    assert!(args(&["r.io/a:1", "s.io/a", "--move"]).move_source);
}
