//! Executing copies: one image at a time for now (`hoist promote`), blobs in
//! parallel on the rayon pool, in an order that never exposes an incomplete image.

mod image_copy;

pub use image_copy::{CopyStats, CopyStatsSnapshot, ImageCopy};
