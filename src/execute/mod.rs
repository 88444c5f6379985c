//! Executing plans: a graph of blob, manifest and tag jobs on the rayon pool,
//! in an order that never exposes an incomplete image.

mod image_copy;
pub mod progress;
pub mod run;
pub mod summary;

pub use image_copy::{CopyStats, CopyStatsSnapshot, ImageCopy};
pub use progress::{Progress, ProgressMode};
pub use run::{Options, Outcome, Status, StoreMap, run};
pub use summary::{ApplyReport, EntryStatus};
