//! The `hoist` binary: parse, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hoist::cli::Cli::parse();
    let detailed = cli.detailed_exitcode();
    match hoist::commands::run(cli) {
        Ok(status) => status.into(),
        Err(error) => {
            hoist::report::print_error(error.as_ref());
            if detailed {
                hoist::commands::ExitStatus::Failure.into()
            } else {
                hoist::commands::ExitStatus::from_error(error.as_ref()).into()
            }
        }
    }
}
