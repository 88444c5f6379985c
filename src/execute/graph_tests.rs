//! The executor's graph, built from hand-made plans: which blob jobs exist,
//! which images wait for them, and what the late tags wait for.

use super::*;
use crate::plan::{Action, ImageToWrite, PlanEntry, Role, images_to_write};
use crate::tree::Tree;

/// The run's images: each written, copying its tree.
fn runs<'t>(images: &[ImageToWrite], trees: Vec<Option<&'t Tree>>) -> Vec<ImageRun<'t>> {
    images
        .iter()
        .zip(trees)
        .map(|(write, tree)| ImageRun::new(write.clone(), tree))
        .collect()
}

fn digest(n: u8) -> Digest {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
        .parse()
        .unwrap()
}

fn entry(target: (&str, &str, &str), source: (&str, &str, &str), image: u8) -> PlanEntry {
    PlanEntry::creating(target, source, &digest(image))
}

fn plan(entries: Vec<PlanEntry>) -> Plan {
    Plan::of(entries)
}

/// A tree of one manifest referencing blobs `blobs` (digest number, size).
fn tree(blobs: &[(u8, u64)]) -> Tree {
    Tree {
        manifests: Vec::new(),
        blobs: blobs
            .iter()
            .map(|&(n, size)| Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                digest: digest(n),
                size,
                platform: None,
                urls: Vec::new(),
            })
            .collect(),
    }
}

fn stores(ids: &[(&str, &str)]) -> StoreIds {
    ids.iter()
        .map(|(name, id)| (name.to_string(), id.to_string()))
        .collect()
}

#[test]
fn tags_at_one_digest_in_one_repository_are_one_image() {
    let mut filtered = entry(("prod", "web", "1.1"), ("staging", "web", "1.1"), 2);
    filtered.target.digest = Some(digest(9));
    filtered.travel.platforms = vec!["linux/amd64".parse().unwrap()];
    let mut unchanged = entry(("prod", "web", "0.9"), ("staging", "web", "0.9"), 3);
    unchanged.action = Action::UNCHANGED;
    let plan = plan(vec![
        entry(("prod", "web", "1.0"), ("staging", "web", "1.0"), 1),
        entry(("prod", "web", "latest"), ("staging", "web", "1.0"), 1),
        entry(("prod", "api", "1.0"), ("staging", "web", "1.0"), 1),
        filtered,
        unchanged,
    ]);
    let images = images_to_write(&plan.entries, |_| true);
    let keys: Vec<String> = images.iter().map(|i| i.key.to_string()).collect();
    assert_eq!(
        keys,
        [
            format!("prod/api@{}", digest(1).short()),
            format!("prod/web@{}", digest(1).short()),
            // A filtered index is the new digest, read from the source's.
            format!("prod/web@{}", digest(9).short()),
        ]
    );
    assert_eq!(images[1].entries, [0, 1]);
    assert_eq!(images[2].source.digest, digest(2));
    assert_eq!(
        crate::platform::join(&images[2].source.platforms),
        "linux/amd64"
    );
    // Entries already decided (a refused reviewed entry) are left out.
    assert_eq!(images_to_write(&plan.entries, |i| i != 2).len(), 2);
}

#[test]
fn a_blob_crosses_once_per_target_store_and_shared_blobs_go_first() {
    let plan = plan(vec![
        entry(("us", "web", "1"), ("staging", "web", "1"), 1),
        entry(("us", "api", "1"), ("staging", "api", "1"), 2),
        entry(("eu", "web", "1"), ("staging", "web", "1"), 1),
        // A second name for the us store: same identity, so same jobs.
        entry(("us-alias", "db", "1"), ("staging", "db", "1"), 3),
    ]);
    let images = images_to_write(&plan.entries, |_| true);
    let names: Vec<String> = images.iter().map(|i| i.key.to_string()).collect();
    let (web, api, eu, db) = (
        tree(&[(10, 5), (11, 7)]),
        tree(&[(10, 5), (12, 1)]),
        tree(&[(10, 5)]),
        tree(&[(10, 5)]),
    );
    let tree_of = |name: &str| match name {
        n if n.starts_with("us/web") => Some(&web),
        n if n.starts_with("us/api") => Some(&api),
        n if n.starts_with("eu/") => Some(&eu),
        _ => Some(&db),
    };
    let trees: Vec<Option<&Tree>> = names.iter().map(|n| tree_of(n)).collect();
    let ids = stores(&[
        ("us", "https://us"),
        ("us-alias", "https://us"),
        ("eu", "https://eu"),
        ("staging", "https://staging"),
    ]);
    let jobs = blob_jobs(&runs(&images, trees), &ids);
    // Blob 10 once for the us store (three repositories), once for eu; 11 and 12 once each.
    assert_eq!(jobs.len(), 4);
    assert_eq!(jobs[0].digest, digest(10));
    assert_eq!(
        jobs[0].repositories.keys().collect::<Vec<_>>(),
        ["api", "db", "web"],
        "the most shared blob is first"
    );
    assert_eq!(jobs[0].images().count(), 3);
    let eu_jobs: Vec<_> = jobs.iter().filter(|j| j.target_registry == "eu").collect();
    assert_eq!(eu_jobs.len(), 1);
    assert_eq!(eu_jobs[0].size, 5);
    // Every image waits for exactly its own blobs.
    let waits = |i: usize| jobs.iter().filter(|j| j.images().any(|w| w == i)).count();
    let expected: Vec<usize> = names
        .iter()
        .map(|n| tree_of(n).map_or(0, |t| t.blobs.len()))
        .collect();
    assert_eq!((0..images.len()).map(waits).collect::<Vec<_>>(), expected);
}

#[test]
fn images_with_nothing_to_copy_get_no_jobs_and_same_store_sources_are_preferred() {
    let plan = plan(vec![
        entry(("prod", "stable/web", "1"), ("other", "web", "1"), 1),
        entry(("prod", "stable/api", "1"), ("prod", "staging/api", "1"), 2),
        entry(("prod", "stable/db", "1"), ("other", "db", "1"), 3),
    ]);
    let images = images_to_write(&plan.entries, |_| true);
    let layer = tree(&[(10, 5)]);
    let trees: Vec<Option<&Tree>> = images
        .iter()
        .map(|i| (i.key.repository != "stable/db").then_some(&layer))
        .collect();
    let ids = stores(&[("prod", "https://prod"), ("other", "https://other")]);
    let jobs = blob_jobs(&runs(&images, trees), &ids);
    assert_eq!(jobs.len(), 1);
    // Read from the target's own store: a mount, no bytes moved.
    assert_eq!(
        jobs[0].source,
        BlobSource {
            registry: "prod".into(),
            repository: "staging/api".into()
        }
    );
    assert_eq!(
        jobs[0].repositories.keys().collect::<Vec<_>>(),
        ["stable/api", "stable/web"]
    );
}

#[test]
fn late_tags_wait_for_their_repository_and_follow_their_version_or_subject() {
    let mut floating = entry(("prod", "web", "1"), ("staging", "web", "1.2.0"), 1);
    floating.role = Role::Floating {
        series: "{major}".into(),
    };
    let mut signature = entry(
        ("prod", "web", &format!("sha256-{}.sig", digest(1).hex())),
        ("staging", "web", &format!("sha256-{}.sig", digest(1).hex())),
        7,
    );
    signature.role = Role::Attached { subject: digest(1) };
    let plan = plan(vec![
        entry(("prod", "web", "1.2.0"), ("staging", "web", "1.2.0"), 1),
        entry(("prod", "web", "1.1.0"), ("staging", "web", "1.1.0"), 2),
        entry(("prod", "api", "1.0.0"), ("staging", "api", "1.0.0"), 3),
        floating,
        signature,
    ]);
    let images = images_to_write(&plan.entries, |_| true);
    let none = images.iter().map(|_| None).collect();
    let waits = repository_waits(&plan, &runs(&images, none));
    let web = RepositoryKey {
        registry: "prod".into(),
        repository: "web".into(),
    };
    // Three images in web (1.2.0 with its floating tag, 1.1.0, the signature).
    assert_eq!(waits.images[&web], 3);
    let late: Vec<usize> = waits.late[&web].iter().map(|(e, _)| *e).collect();
    assert_eq!(late, [3, 4]);
    assert_eq!(waits.regular[&web], [0, 1]);
    // The floating tag follows 1.2.0, the signature follows its subject.
    let (floating, signature) = (&plan.entries[3], &plan.entries[4]);
    assert!(floating.follows(&plan.entries[0]));
    assert!(!floating.follows(&plan.entries[1]));
    assert!(signature.follows(&plan.entries[0]));
    assert!(!signature.follows(&plan.entries[1]));
}
