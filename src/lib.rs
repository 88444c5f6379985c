//! hoist promotes container images between OCI registries.
//!
//! Data flows one way: `config` → `rules` → `discover` → `plan` → `execute` →
//! `commands`; `scripts/layers` holds the order. Only `discover` and `execute` talk to stores, through the
//! [`registry::Registry`] trait (the Distribution API over HTTP, or OCI
//! layouts on disk).
#![deny(clippy::print_stdout)]
#![warn(clippy::too_many_lines)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod digest;
pub mod discover;
pub mod entry;
pub mod execute;
pub mod filter;
pub mod gate;
pub mod keys;
pub mod manifest;
pub mod metrics;
pub mod plan;
pub mod platform;
pub mod promote;
pub mod record;
pub mod reference;
pub mod referrers;
pub mod registry;
pub mod render;
pub mod report;
pub mod rules;
pub mod settings;
pub mod signed;
pub mod tree;
pub mod verify;

// The seeder of synthetic images is not the library's: it lives with the
// hoist-seed binary, written against `hoist::`, and unit tests include it.
#[cfg(test)]
extern crate self as hoist;
#[cfg(test)]
#[path = "bin/hoist-seed/seed.rs"]
mod seed;
