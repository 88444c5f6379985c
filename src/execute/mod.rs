//! Executing plans: a graph of blob, manifest and tag jobs on the rayon pool,
//! in an order that never exposes an incomplete image.

pub mod progress;
pub mod run;
mod stats;
pub mod stop;
pub mod summary;
pub mod tree;

pub use progress::{Progress, ProgressMode};
pub use run::{Options, Outcome, Status, StoreMap, run};
pub use stats::{CopyStats, CopyStatsSnapshot};
pub use summary::{ApplyReport, EntryStatus};
