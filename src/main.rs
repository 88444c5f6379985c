//! The `hoist` binary: parse, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hoist::commands::run(hoist::cli::Cli::parse()).into()
}
