//! Test support: real registries (`docker-registry`), a token server,
//! certificates, a fault-injecting proxy, image seeding and a `hoist` runner.
#![allow(dead_code)]

pub mod certs;
pub mod fault_proxy;
pub mod hoist;
pub mod personality;
pub mod registry;
pub mod seed;
pub mod token_server;

pub use hoist::Hoist;
pub use registry::TestRegistry;
