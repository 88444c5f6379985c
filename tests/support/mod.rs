//! Test support: real registries (`docker-registry`), a token server,
//! certificates, a fault-injecting proxy, image seeding and a `hoist` runner.
#![allow(dead_code)]

pub mod artifacts;
pub mod certs;
pub mod cosign;
pub mod fault_proxy;
pub mod hoist;
pub mod openssl_tls;
pub mod paging;
pub mod personality;
pub mod personality_writes;
pub mod referrers_api;
pub mod registry;
pub mod seed;
pub mod token_server;
pub mod wan;

pub use hoist::Hoist;
pub use registry::TestRegistry;
