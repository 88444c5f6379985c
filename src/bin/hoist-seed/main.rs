//! `hoist-seed`: pushes synthetic images into a registry or an OCI layout
//! store, for tests, benchmarks and the committed example store.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use hoist::config::LoadedConfig;
use hoist::reference::parse_listing;
use hoist::registry::Registry;
use hoist::registry::stores::Stores;
mod seed;

use seed::{Format, ImageSpec, LayerSpec, push_image};

/// Push synthetic images (deterministic content) into a store.
#[derive(Parser)]
#[command(name = "hoist-seed")]
struct Args {
    /// `host[:port]`, `oci-layout:DIR`, or a registry name of `--config`.
    store: String,
    /// A promotions.toml whose `[registries]` (credentials, `ca_file`) apply.
    #[arg(short = 'c', long)]
    config: Option<std::path::PathBuf>,
    /// Repository to fill (repeatable).
    #[arg(long = "repo")]
    repos: Vec<String>,
    /// Also fill `<prefix>-000` … with this many generated repository names.
    #[arg(long, default_value_t = 0)]
    count: usize,
    /// Name prefix for generated repositories.
    #[arg(long, default_value = "seed/app")]
    prefix: String,
    /// Tags per repository (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1.0.0")]
    tags: Vec<String>,
    /// Layers per image, shared ones included.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// How many of the layers are the same blob in every repository.
    #[arg(long, default_value_t = 0)]
    shared: usize,
    /// Bytes per layer.
    #[arg(long, default_value_t = 4096)]
    layer_size: u64,
    /// Build an index of these platforms (comma separated), e.g. linux/amd64,linux/arm64.
    #[arg(long, value_delimiter = ',')]
    platforms: Vec<String>,
    /// Docker schema 2 media types instead of OCI.
    #[arg(long)]
    docker: bool,
    /// Parallel pushes.
    #[arg(long, default_value_t = 8)]
    jobs: usize,
}

fn seed_of(text: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
    })
}

/// The image `repo:tag` gets: its own layers, after the shared ones.
fn image_spec(args: &Args, repo: &str, tag: &str) -> ImageSpec {
    let layers = (0..args.layers)
        .map(|i| LayerSpec {
            size: args.layer_size,
            seed: if i < args.shared {
                seed_of(&format!("shared-{i}"))
            } else {
                seed_of(&format!("{repo}:{tag}:{i}"))
            },
        })
        .collect();
    ImageSpec {
        format: if args.docker {
            Format::Docker
        } else {
            Format::Oci
        },
        layers,
        platforms: args.platforms.clone(),
        label: format!("{repo}:{tag}"),
    }
}

/// The store `--store` names, through the configuration when given.
fn open_store(args: &Args) -> Result<Arc<dyn Registry>, Box<dyn std::error::Error>> {
    let config = match &args.config {
        Some(path) => LoadedConfig::load(path)?,
        None => LoadedConfig::default(),
    };
    let settings = hoist::registry::spec::StoreSettings {
        jobs: args.jobs,
        ..hoist::settings::store_settings(&config.config.settings)
    };
    let stores = Stores::new(config.registries, settings);
    let (location, _) = parse_listing(&args.store, &|name| stores.is_registry_name(name))?;
    Ok(stores.open(&location)?)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut repos = args.repos.clone();
    repos.extend((0..args.count).map(|i| format!("{}-{i:03}", args.prefix)));
    let store = match open_store(&args) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("hoist-seed: {e}");
            return ExitCode::from(2);
        }
    };
    let work: Vec<(String, String)> = repos
        .iter()
        .flat_map(|repo| args.tags.iter().map(move |tag| (repo.clone(), tag.clone())))
        .collect();
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.max(1))
        .build()
    {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("hoist-seed: {e}");
            return ExitCode::from(2);
        }
    };
    let failures: Vec<String> = pool.install(|| {
        use rayon::prelude::*;
        work.par_iter()
            .filter_map(|(repo, tag)| {
                match push_image(store.as_ref(), repo, tag, &image_spec(&args, repo, tag)) {
                    Ok(manifest) => {
                        println!("{repo}:{tag} {}", manifest.digest);
                        None
                    }
                    Err(e) => Some(format!("{repo}:{tag}: {e}")),
                }
            })
            .collect()
    });
    for failure in &failures {
        eprintln!("hoist-seed: {failure}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
