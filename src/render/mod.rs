//! Everything hoist shows people of a plan and of a run: the plan table,
//! its markdown (for a pull request or a job summary), the difference from
//! a reviewed plan, and the closing lines of `apply`. Planning and
//! execution hand on data; only this module turns it into text.

mod diff;
mod history;
mod markdown;
mod summary;
mod table;

pub use diff::{render_diff_markdown, render_diff_table};
pub use history::render_history;
pub use markdown::{
    COMMENT_LIMIT, MarkdownOptions, code, escape_html, escape_text, render_markdown,
};
pub use summary::{summary_lines, summary_markdown};
pub use table::render_table;

/// `2 to prune, ` for a summary line, when the plan prunes anything (a plan
/// without `prune` reads as it always did).
fn pruned_count(s: &crate::plan::Summary) -> String {
    match s.prune {
        0 => String::new(),
        n => format!("{n} to prune, "),
    }
}
