//! Micro-benchmarks of the hot pure parts, no registry needed:
//!
//! - planning (`plan::build`) over a synthetic inventory the size of the
//!   wide-catalog corpus (2,000 repositories × 10 tags), against an empty
//!   target and against one that already holds everything;
//! - writing that plan as JSON and as the table `hoist plan` prints;
//! - digest-verified streaming (`VerifyingReader`), the per-byte cost of
//!   every blob copy.
//!
//!   cargo bench --bench hot            # all, median of several rounds each
//!   cargo bench --bench hot -- plan    # only names containing `plan`
//!
//! Each line is a median wall time; run it before and after a change on the
//! same machine. `valgrind --tool=callgrind target/release/deps/hot-*` gives
//! instruction counts that do not depend on the machine's load.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use hoist::config::LoadedConfig;
use hoist::digest::{Digest, VerifyingReader};
use hoist::discover::{ImageContents, Inventory};
use hoist::keys::{RepositoryKey, TagKey};
use hoist::manifest::OCI_MANIFEST;
use hoist::plan::{self, Plan};
use hoist::registry::ManifestHead;
use hoist::rules::RuleSet;
#[path = "../src/bin/hoist-seed/seed.rs"]
mod seed;
use seed::{LayerSpec, SeededBytes, layer_digest};

const REPOSITORIES: usize = 2_000;
const TAGS: usize = 10;
const STREAM_BYTES: u64 = 256 * 1024 * 1024;

fn rules() -> RuleSet {
    let toml = r#"
[registries.staging]
url = "oci-layout:staging"
[registries.prod]
url = "oci-layout:prod"
[[promotion]]
name = "wide"
from = "staging"
to = "prod"
repositories = ["wide/**"]
floating = ["{major}.{minor}", "latest"]
"#;
    let loaded = LoadedConfig::parse("promotions.toml", toml).expect("valid configuration");
    let (rules, problems) = RuleSet::compile(&loaded.config);
    assert!(problems.is_empty(), "{problems:?}");
    rules
}

/// `REPOSITORIES` × `TAGS` source images with two blobs each (one shared);
/// with `warm`, the target already holds every tag the plan would write.
fn inventory(warm: bool) -> Inventory {
    let mut inventory = Inventory::default();
    inventory.stores.insert("staging".into(), "s".into());
    inventory.stores.insert("prod".into(), "p".into());
    let base = Digest::sha256_of(b"base layer");
    let mut repositories = Vec::with_capacity(REPOSITORIES);
    for r in 0..REPOSITORIES {
        let repository = format!("wide/app-{r:04}");
        let tags: Vec<String> = (0..TAGS).map(|t| format!("1.{t}.0")).collect();
        let mut target = std::collections::BTreeSet::new();
        for tag in &tags {
            let digest = Digest::sha256_of(format!("{repository}:{tag}").as_bytes());
            inventory.source_heads.insert(
                TagKey::new("staging", &repository, tag),
                ManifestHead {
                    digest: digest.clone(),
                    media_type: OCI_MANIFEST.into(),
                    size: 400,
                },
            );
            inventory.contents.insert(
                ("staging".into(), digest.clone()),
                ImageContents {
                    manifests: Vec::new(),
                    blobs: vec![
                        (base.clone(), 1 << 20),
                        (
                            Digest::sha256_of(format!("{repository}:{tag} layer").as_bytes()),
                            256,
                        ),
                    ],
                },
            );
            if warm {
                target.insert(tag.clone());
                inventory
                    .target_heads
                    .insert(TagKey::new("prod", &repository, tag), digest);
            }
        }
        if warm {
            let last = Digest::sha256_of(format!("{repository}:1.{}.0", TAGS - 1).as_bytes());
            for floating in ["latest".to_string()]
                .into_iter()
                .chain((0..TAGS).map(|t| format!("1.{t}")))
            {
                let digest = if floating == "latest" {
                    last.clone()
                } else {
                    Digest::sha256_of(format!("{repository}:{floating}.0").as_bytes())
                };
                target.insert(floating.clone());
                inventory
                    .target_heads
                    .insert(TagKey::new("prod", &repository, &floating), digest);
            }
        }
        inventory
            .source_tags
            .insert(RepositoryKey::new("staging", &repository), Some(tags));
        inventory
            .target_tags
            .insert(RepositoryKey::new("prod", &repository), target);
        repositories.push(repository);
    }
    inventory
        .repositories
        .insert("staging".into(), repositories);
    inventory
}

/// Runs `f` until `budget` is spent (at least 3 times) and prints the median.
fn measure<T>(
    filter: &Option<String>,
    name: &str,
    work: &str,
    budget: Duration,
    mut f: impl FnMut() -> T,
) {
    if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
        return;
    }
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < 3 || (started.elapsed() < budget && times.len() < 50) {
        let t = Instant::now();
        black_box(f());
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{name:<28} {:>10.2} ms  ({work}; median of {})",
        median.as_secs_f64() * 1e3,
        times.len()
    );
}

fn build(rules: &RuleSet, inventory: &Inventory) -> Plan {
    match plan::build(rules, inventory, BTreeMap::new(), None) {
        Ok(plan) => plan,
        Err(conflicts) => panic!("{} conflicts in a synthetic inventory", conflicts.len()),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let budget = Duration::from_secs(3);
    let rules = rules();
    let cold = inventory(false);
    let warm = inventory(true);
    let entries = REPOSITORIES * TAGS;
    let work = format!("{REPOSITORIES} repositories x {TAGS} tags");

    measure(&filter, "plan cold (all new)", &work, budget, || {
        build(&rules, &cold)
    });
    measure(&filter, "plan warm (all unchanged)", &work, budget, || {
        build(&rules, &warm)
    });
    let plan = build(&rules, &cold);
    assert!(
        plan.entries.len() >= entries,
        "{} entries",
        plan.entries.len()
    );
    measure(
        &filter,
        "plan json",
        &format!("{} entries", plan.entries.len()),
        budget,
        || serde_json::to_vec(&plan).map(|v| v.len()),
    );
    measure(
        &filter,
        "plan table",
        &format!("{} entries", plan.entries.len()),
        budget,
        || hoist::render::render_table(&plan).len(),
    );

    let digest = layer_digest(LayerSpec {
        size: STREAM_BYTES,
        seed: 7,
    });
    measure(
        &filter,
        "stream verify",
        "256 MiB through VerifyingReader",
        budget,
        || {
            let mut reader = VerifyingReader::new(
                SeededBytes::new(7, STREAM_BYTES),
                digest.clone(),
                STREAM_BYTES,
            );
            std::io::copy(&mut reader, &mut std::io::sink()).expect("the digest matches")
        },
    );
    measure(
        &filter,
        "stream generate only",
        "256 MiB of SeededBytes",
        budget,
        || {
            std::io::copy(&mut SeededBytes::new(7, STREAM_BYTES), &mut std::io::sink())
                .expect("in memory")
        },
    );
}
