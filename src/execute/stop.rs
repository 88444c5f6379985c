//! Stopping on SIGINT or SIGTERM. The first signal stops new work: no blob
//! transfer starts and no source tag is deleted, while transfers already in
//! flight finish (or fail cleanly) and their images get their tags; the
//! report is written and hoist exits with 128 + the signal. A second signal
//! ends the process at once, which is as safe as a kill: no tag ever points
//! at an incomplete image.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

struct Flags {
    stop: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

/// Installs the handlers, once per process. Until then (while planning,
/// which writes nothing) the signals keep their default action.
pub fn install() {
    FLAGS.get_or_init(|| {
        let flags = Flags {
            stop: Arc::new(AtomicBool::new(false)),
            signal: Arc::new(AtomicUsize::new(0)),
        };
        for signal in [SIGINT, SIGTERM] {
            // In registration order: the shutdown sees the flag as an
            // earlier signal left it, so only a second signal ends hoist.
            let installed = signal_hook::flag::register_conditional_shutdown(
                signal,
                128 + signal,
                flags.stop.clone(),
            )
            .and_then(|_| {
                signal_hook::flag::register_usize(signal, flags.signal.clone(), signal as usize)
            })
            .and_then(|_| signal_hook::flag::register(signal, flags.stop.clone()));
            if let Err(e) = installed {
                crate::report::log(&format!(
                    "warning: cannot handle {}: {e}; it will end hoist at once",
                    name(signal)
                ));
            }
        }
        flags
    });
}

/// The signal that asked hoist to stop, if one did.
pub fn requested() -> Option<i32> {
    let flags = FLAGS.get()?;
    flags
        .stop
        .load(Ordering::Relaxed)
        .then(|| flags.signal.load(Ordering::Relaxed) as i32)
}

/// `SIGINT` or `SIGTERM`.
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Why work was not started.
pub fn not_started() -> super::ExecError {
    super::ExecError::Stopped(requested().map_or("a signal", name))
}
