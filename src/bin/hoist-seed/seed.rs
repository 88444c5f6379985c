//! Synthetic images for tests, benchmarks and the example store: deterministic
//! pseudo-random layers (some shared between repositories), OCI or Docker
//! media types, single-platform manifests or multi-platform indexes.
// Shared by the seeder binary, the integration tests and the benchmark,
// each using a part of it: not part of the library's API.
#![allow(dead_code)]

use std::io::Read;

use hoist::digest::{Algorithm, Digest, Hasher};
use hoist::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Manifest, OCI_INDEX, OCI_MANIFEST};
use hoist::registry::{Registry, Result};

/// Which family of media types to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OCI image manifest / index.
    Oci,
    /// Docker schema 2 manifest / manifest list.
    Docker,
}

/// One layer: its size and the seed of its bytes (equal seeds give equal layers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// Bytes.
    pub size: u64,
    /// Content seed; layers with the same seed and size are the same blob.
    pub seed: u64,
}

/// What image to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// Media type family.
    pub format: Format,
    /// Layers of each platform image (their seeds are mixed with the platform for indexes).
    pub layers: Vec<LayerSpec>,
    /// `os/arch` per platform; empty builds a single-platform manifest.
    pub platforms: Vec<String>,
    /// Goes into the config, so otherwise identical specs can differ.
    pub label: String,
}

impl ImageSpec {
    /// A single-platform OCI image with the given layers.
    pub fn oci(label: &str, layers: Vec<LayerSpec>) -> ImageSpec {
        ImageSpec {
            format: Format::Oci,
            layers,
            platforms: Vec::new(),
            label: label.to_string(),
        }
    }
}

/// A deterministic byte stream (xorshift64*), so large layers need no memory.
pub struct SeededBytes {
    state: u64,
    remaining: u64,
}

impl SeededBytes {
    /// `size` bytes from `seed`.
    pub fn new(seed: u64, size: u64) -> SeededBytes {
        SeededBytes {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            remaining: size,
        }
    }

    fn next_word(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Read for SeededBytes {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.remaining) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            let word = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The digest of a seeded layer, computed by streaming it once.
pub fn layer_digest(layer: LayerSpec) -> Digest {
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut bytes = SeededBytes::new(layer.seed, layer.size);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = bytes.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.finish()
}

/// Pushes the image to `repository` and tags it; returns the root manifest.
pub fn push_image(
    store: &dyn Registry,
    repository: &str,
    tag: &str,
    spec: &ImageSpec,
) -> Result<Manifest> {
    let manifest = if spec.platforms.is_empty() {
        push_platform_image(store, repository, spec, "linux/amd64", 0)?
    } else {
        let mut entries = Vec::new();
        for (i, platform) in spec.platforms.iter().enumerate() {
            let child = push_platform_image(store, repository, spec, platform, i as u64 + 1)?;
            let (os, arch) = platform.split_once('/').unwrap_or(("linux", platform));
            entries.push(format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"{os}"}}}}"#,
                child.media_type,
                child.digest,
                child.bytes.len()
            ));
        }
        let media_type = match spec.format {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_MANIFEST_LIST,
        };
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[{}]}}"#,
            entries.join(",")
        );
        let index = manifest_of(body, media_type);
        store.manifest_put(repository, &index.digest.to_string(), &index)?;
        index
    };
    store.manifest_put(repository, tag, &manifest)?;
    Ok(manifest)
}

fn manifest_of(body: String, media_type: &str) -> Manifest {
    let bytes = body.into_bytes();
    Manifest {
        digest: Digest::sha256_of(&bytes),
        bytes,
        media_type: media_type.to_string(),
    }
}

fn push_platform_image(
    store: &dyn Registry,
    repository: &str,
    spec: &ImageSpec,
    platform: &str,
    platform_salt: u64,
) -> Result<Manifest> {
    let (layer_type, config_type, manifest_type) = match spec.format {
        Format::Oci => (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.config.v1+json",
            OCI_MANIFEST,
        ),
        Format::Docker => (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.container.image.v1+json",
            DOCKER_MANIFEST,
        ),
    };
    let mut layers = Vec::new();
    for layer in &spec.layers {
        let layer = LayerSpec {
            size: layer.size,
            seed: layer.seed ^ platform_salt.wrapping_mul(0x1000_0000_01B3),
        };
        let digest = layer_digest(layer);
        if !store.blob_exists(repository, &digest)? {
            store.blob_put(
                repository,
                &digest,
                layer.size,
                &mut SeededBytes::new(layer.seed, layer.size),
                None,
            )?;
        }
        layers.push((digest, layer.size));
    }
    let (os, arch) = platform.split_once('/').unwrap_or(("linux", platform));
    let diff_ids: Vec<String> = layers.iter().map(|(d, _)| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"{arch}","os":"{os}","config":{{"Labels":{{"org.opencontainers.image.title":"{}"}}}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        spec.label,
        diff_ids.join(",")
    );
    let config_digest = Digest::sha256_of(config.as_bytes());
    if !store.blob_exists(repository, &config_digest)? {
        store.blob_put(
            repository,
            &config_digest,
            config.len() as u64,
            &mut config.as_bytes(),
            None,
        )?;
    }
    let layer_entries: Vec<String> = layers
        .iter()
        .map(|(digest, size)| {
            format!(r#"{{"mediaType":"{layer_type}","digest":"{digest}","size":{size}}}"#)
        })
        .collect();
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{manifest_type}","config":{{"mediaType":"{config_type}","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        layer_entries.join(",")
    );
    let manifest = manifest_of(body, manifest_type);
    store.manifest_put(repository, &manifest.digest.to_string(), &manifest)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    // The benchmark harness compiles this module without its #[test]s.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn seeded_bytes_are_deterministic() {
        let mut a = Vec::new();
        SeededBytes::new(7, 1000).read_to_end(&mut a).unwrap();
        let mut b = Vec::new();
        SeededBytes::new(7, 1000).read_to_end(&mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 1000);
        assert_eq!(
            layer_digest(LayerSpec {
                size: 1000,
                seed: 7
            }),
            Digest::sha256_of(&a)
        );
        assert_ne!(
            layer_digest(LayerSpec {
                size: 1000,
                seed: 8
            }),
            Digest::sha256_of(&a)
        );
    }
}
