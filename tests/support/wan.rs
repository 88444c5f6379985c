//! `hoist-wan` (src/bin/hoist-wan) in front of a test registry: the round
//! trip and shared link rate of a registry in another region.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::registry::spawn_tied_to_test_process;

/// A running `hoist-wan`; stopped (SIGTERM) on drop.
pub struct WanProxy {
    child: Child,
    address: String,
    stats: PathBuf,
    _dir: tempfile::TempDir,
}

impl WanProxy {
    /// A proxy to `upstream` (`host:port`) adding `rtt_ms` of round trip
    /// and sharing `mbit` Mbit/s per direction among its connections.
    pub fn start(upstream: &str, rtt_ms: u32, mbit: u32) -> WanProxy {
        let dir = tempfile::tempdir().expect("temporary directory");
        let stats = dir.path().join("stats.json");
        let mut command = Command::new(env!("CARGO_BIN_EXE_hoist-wan"));
        command
            .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
            .args(["--rtt-ms", &rtt_ms.to_string(), "--mbit", &mbit.to_string()])
            .arg("--stats")
            .arg(&stats)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut child = spawn_tied_to_test_process(command).expect("spawn hoist-wan");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("hoist-wan's stdout"))
            .read_line(&mut line)
            .expect("read hoist-wan's address");
        assert!(!line.trim().is_empty(), "hoist-wan printed no address");
        WanProxy {
            child,
            address: line.trim().to_string(),
            stats,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`, where clients connect.
    pub fn host(&self) -> &str {
        &self.address
    }

    /// Stops the proxy and returns the counters it wrote on SIGTERM.
    pub fn stop(mut self) -> serde_json::Value {
        self.terminate();
        let text = std::fs::read_to_string(&self.stats).expect("hoist-wan wrote its counters");
        serde_json::from_str(&text).expect("hoist-wan's counters are JSON")
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        let _ = self.child.wait();
    }
}

impl Drop for WanProxy {
    fn drop(&mut self) {
        self.terminate();
    }
}
