//! Everything hoist prints: results on stdout, logs and errors on stderr.
//! No other module writes to stdout.
#![allow(clippy::print_stdout)]

use std::io::Write;

/// Prints result lines on stdout.
pub fn print_lines(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        // A closed pipe (`hoist ls | head`) is not an error worth a panic.
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}

/// Prints a document on stdout as it is.
pub fn print_raw(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Appends a markdown summary to the file `GITHUB_STEP_SUMMARY` names
/// (GitHub Actions shows it on the job page), when it names one. A file
/// that cannot be written is said on stderr; the run's result stands.
pub fn append_step_summary(markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(markdown.as_bytes()));
    if let Err(error) = appended {
        log(&format!(
            "warning: could not append the summary to GITHUB_STEP_SUMMARY ({}): {error}",
            std::path::Path::new(&path).display()
        ));
    }
}

/// The progress display on screen, if any: log lines go above it.
static PROGRESS: std::sync::Mutex<Option<indicatif::MultiProgress>> = std::sync::Mutex::new(None);

/// Routes log lines through a progress display while it is shown (`None` when it ends).
pub fn set_progress(display: Option<indicatif::MultiProgress>) {
    *PROGRESS.lock().unwrap_or_else(|p| p.into_inner()) = display;
}

/// Writes a log line on stderr, above the progress display when one is shown.
pub fn log(message: &str) {
    let display = PROGRESS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match display {
        Some(display) => {
            let _ = display.println(message);
        }
        None => {
            let _ = writeln!(std::io::stderr().lock(), "{message}");
        }
    }
}

/// Renders an error on stderr, one greppable line per cause. A cause the
/// lines so far already say (an error whose message ends in its cause's)
/// is not said again.
pub fn print_error(error: &dyn std::error::Error) {
    log(&error_lines(error));
}

/// What [`print_error`] prints.
pub fn error_lines(error: &dyn std::error::Error) -> String {
    let mut message = format!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!("\n  caused by: {text}"));
        }
        source = cause.source();
    }
    message
}

/// A diagnostic in miette's graphical form, without colours, so it reads the
/// same in a terminal, a CI log and a snapshot.
pub fn render_diagnostic(diagnostic: &dyn miette::Diagnostic) -> Option<String> {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut rendered = String::new();
    handler.render_report(&mut rendered, diagnostic).ok()?;
    Some(rendered)
}

/// `1 rule`, `2 rules`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1.5 MiB`-style sizes for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(512 * 1024 * 1024), "512.0 MiB");
    }

    /// A cause is printed once: not again when the message already says
    /// it, and on its own line when it does not.
    #[test]
    fn each_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        enum Outer {
            #[error("cannot write out.json: {source}")]
            Says { source: std::io::Error },
            #[error("cannot write out.json")]
            Leaves {
                #[source]
                source: std::io::Error,
            },
        }
        let cause = || std::io::Error::other("disk full");
        assert_eq!(
            error_lines(&Outer::Says { source: cause() }),
            "error: cannot write out.json: disk full"
        );
        assert_eq!(
            error_lines(&Outer::Leaves { source: cause() }),
            "error: cannot write out.json\n  caused by: disk full"
        );
    }
}
