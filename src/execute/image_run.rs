//! One image a run writes, as the run holds it: what to write, the source
//! tree it copies, and how far it got.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

use super::error::ExecError;
use crate::plan::ImageToWrite;
use crate::tree::Tree;

/// One image of the run. Blob jobs and late tags name it by its index in
/// the run's images.
pub struct ImageRun<'t> {
    /// What the plan writes.
    pub write: ImageToWrite,
    /// The source tree it copies: `None` when it needs no copy (complete
    /// in its target already) or the tree could not be read (it failed).
    pub tree: Option<&'t Tree>,
    /// How far it got.
    pub state: ImageState,
}

impl<'t> ImageRun<'t> {
    /// An image to write, copying `tree`, not started.
    pub fn new(write: ImageToWrite, tree: Option<&'t Tree>) -> ImageRun<'t> {
        ImageRun {
            write,
            tree,
            state: ImageState::default(),
        }
    }
}

/// Progress of one image through the graph.
#[derive(Default)]
pub struct ImageState {
    /// Blob jobs still to finish.
    pub pending: AtomicUsize,
    failure: Mutex<Option<Arc<ExecError>>>,
    /// Its manifests and tags were written.
    pub(super) done_ok: AtomicBool,
}

impl ImageState {
    /// Records the image's first failure; later ones are consequences.
    pub fn fail(&self, error: Arc<ExecError>) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(error);
        }
    }

    /// The image's failure, if it failed.
    pub fn failure(&self) -> Option<Arc<ExecError>> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
