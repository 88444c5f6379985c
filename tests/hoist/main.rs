//! hoist's integration tests: the `hoist` binary against real `docker-registry`
//! processes (CNCF Distribution) and OCI layouts on disk.

#[path = "../support/mod.rs"]
mod support;

mod apply;
mod attestations;
mod auth;
mod copy;
mod docker_promote;
mod faults;
mod fuzz_inputs;
mod gates;
mod gates_keyless;
mod harness;
mod hostile;
mod image;
mod listing;
mod markdown;
mod metrics;
mod missteps;
mod mounts;
mod moves;
mod oci_layout;
mod personalities;
mod plan;
mod promote_stevedore;
mod prune;
mod records;
mod referrers;
mod registries;
mod schema;
mod signatures;
mod unlisted;
mod wan;
