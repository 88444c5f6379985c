//! `hoist ls`: catalogs and tag lists, across pages.

use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

#[test]
fn lists_catalog_and_tags_across_pages() {
    let registry = TestRegistry::start();
    let store = seed::client(&registry);
    let image = seed::small_image("page", Format::Oci);
    let repos = ["team/a", "team/b", "team/c", "team/d", "team/e"];
    for repo in repos {
        seed::push(store.as_ref(), repo, "1.0.0", &image);
    }
    let tags = [
        "1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0", "3.0.0", "latest",
    ];
    for tag in tags {
        seed::push(store.as_ref(), "team/a", tag, &image);
    }

    // Two entries per page: five repositories need three pages and two `Link` hops.
    let run = Hoist::new()
        .env("HOIST_PAGE_SIZE", "2")
        .args(["ls", registry.host()])
        .run()
        .success();
    assert_eq!(run.lines(), repos);

    let run = Hoist::new()
        .env("HOIST_PAGE_SIZE", "2")
        .args(["ls", &format!("{}/team/a", registry.host())])
        .run()
        .success();
    let mut listed = run.lines();
    listed.sort();
    let mut expected = tags.to_vec();
    expected.sort();
    assert_eq!(listed, expected);
}

#[test]
fn unknown_repository_is_a_clear_error() {
    let registry = TestRegistry::start();
    let run = Hoist::new()
        .args(["ls", &format!("{}/no/such", registry.host())])
        .run()
        .code(1);
    // One line naming the registry and the repository, and saying it is
    // not there, in words rather than a URL.
    let message = run.stderr.trim_end();
    assert_eq!(
        message,
        format!(
            "error: repository `no/such` on {} not found",
            registry.host()
        )
    );
}

#[test]
fn lists_the_committed_example_store() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/staging");
    let run = Hoist::new()
        .args(["ls", &format!("oci-layout:{examples}")])
        .run()
        .success();
    assert_eq!(
        run.lines(),
        ["apps/api", "apps/web", "apps/worker", "tools/debug"]
    );
    let run = Hoist::new()
        .args(["ls", &format!("oci-layout:{examples}//apps/web")])
        .run()
        .success();
    assert_eq!(run.lines(), ["1.0.0", "1.1.0", "1.2.0-rc.1"]);
}
