//! Seeds test registries with synthetic images through hoist's own registry
//! layer, and reads back what landed.

use std::sync::Arc;

use hoist::manifest::Manifest;
use hoist::reference::Location;
use hoist::registry::spec::StoreSettings;
use hoist::registry::stores::Stores;
use hoist::registry::{ManifestHead, Registry};
#[path = "../../src/bin/hoist-seed/seed.rs"]
mod synthetic;
pub use synthetic::{Format, ImageSpec, LayerSpec};

use super::TestRegistry;

/// An anonymous client for a plain-http test registry.
pub fn client(registry: &TestRegistry) -> Arc<dyn Registry> {
    open(Location::Host(registry.host().to_string()))
}

/// An anonymous client for a plain-http registry at `host` (a proxy in
/// front of a test registry).
pub fn client_at(host: &str) -> Arc<dyn Registry> {
    open(Location::Host(host.to_string()))
}

/// A handle on a directory of OCI layouts.
pub fn layout(dir: &std::path::Path) -> Arc<dyn Registry> {
    open(Location::OciLayout(dir.to_path_buf()))
}

fn open(location: Location) -> Arc<dyn Registry> {
    let settings = StoreSettings {
        jobs: 4,
        ..StoreSettings::default()
    };
    Stores::new(Default::default(), settings)
        .open(&location)
        .expect("open test store")
}

/// `count` layers of `size` bytes; the first `shared` are the same in every image.
pub fn layers(label: &str, count: usize, shared: usize, size: u64) -> Vec<LayerSpec> {
    (0..count)
        .map(|i| LayerSpec {
            size,
            seed: if i < shared {
                1000 + i as u64
            } else {
                label.bytes().fold(i as u64 * 7919 + 17, |h, b| {
                    h.wrapping_mul(131).wrapping_add(u64::from(b))
                })
            },
        })
        .collect()
}

/// Pushes a small OCI image labelled `label` to `repository:tag` of a
/// test registry; its manifest.
pub fn push_small(registry: &TestRegistry, repository: &str, tag: &str, label: &str) -> Manifest {
    push(
        client(registry).as_ref(),
        repository,
        tag,
        &small_image(label, Format::Oci),
    )
}

/// Pushes an image and returns its root manifest.
pub fn push(store: &dyn Registry, repository: &str, tag: &str, spec: &ImageSpec) -> Manifest {
    synthetic::push_image(store, repository, tag, spec).expect("seed image")
}

/// A single-platform image of the given format with two small layers.
pub fn small_image(label: &str, format: Format) -> ImageSpec {
    ImageSpec {
        format,
        layers: layers(label, 2, 0, 3000),
        platforms: Vec::new(),
        label: label.to_string(),
    }
}

/// A two-platform index (linux/amd64, linux/arm64) of [`small_image`]s.
pub fn multi_platform_image(label: &str, format: Format) -> ImageSpec {
    ImageSpec {
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        ..small_image(label, format)
    }
}

/// HEAD of a manifest by tag or digest.
pub fn head(store: &dyn Registry, repository: &str, reference: &str) -> Option<ManifestHead> {
    store
        .manifest_head(repository, reference)
        .expect("manifest HEAD")
}
