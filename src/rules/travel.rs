//! What travels with an image a rule promotes: the platforms kept from an
//! index, its referrers, and whether the source tag stays. Carried whole
//! from the compiled rule to each plan entry it produces.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Mode;
use crate::platform::Platform;

/// What a promoted image takes along, and what becomes of its source tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Travel {
    /// Platforms kept from a multi-platform index (empty: the index verbatim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<Platform>,
    /// Also copy the image's OCI 1.1 referrers where the source has the API.
    #[serde(default, skip_serializing_if = "is_false")]
    pub referrers: bool,
    /// Whether the source tag is deleted once every target has it.
    #[serde(default, skip_serializing_if = "is_copy")]
    pub mode: Transfer,
}

/// What becomes of the source tag once every target holds the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transfer {
    /// It stays.
    #[default]
    Copy,
    /// It is deleted.
    Move,
    /// The rule moves, but entries outside this run (another shard, another
    /// rule) also read the source tag: this run copies and keeps it.
    CopyNotMove,
}

impl From<Mode> for Transfer {
    fn from(mode: Mode) -> Transfer {
        match mode {
            Mode::Copy => Transfer::Copy,
            Mode::Move => Transfer::Move,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_copy(mode: &Transfer) -> bool {
    *mode == Transfer::Copy
}
