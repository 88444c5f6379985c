//! The text of a configuration file and where each of its fields is, so a
//! problem found at any stage (parsing, rule compilation, planning) can
//! underline the exact text it is about.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::problem::{FieldPath, Located, Part, Problem};

/// Where one field is in the text.
#[derive(Clone, Debug)]
struct FieldSpan {
    key: Option<Range<usize>>,
    value: Range<usize>,
    /// Offset of a string value's contents when they appear verbatim (no escapes).
    content: Option<usize>,
}

/// A configuration file's name and text, with the span of every field.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    name: String,
    text: String,
    fields: HashMap<FieldPath, FieldSpan>,
}

impl ConfigSource {
    /// Indexes the spans of a parsed document.
    pub fn new(name: &str, text: &str, root: &Spanned<DeTable<'_>>) -> ConfigSource {
        let mut source = ConfigSource {
            name: name.to_string(),
            text: text.to_string(),
            fields: HashMap::new(),
        };
        source.index_table(&FieldPath::default(), root.get_ref());
        source
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn index_table(&mut self, path: &FieldPath, table: &DeTable<'_>) {
        for (key, value) in table {
            let path = path.key(key.get_ref());
            self.index_value(path, Some(key.span()), value);
        }
    }

    fn index_value(
        &mut self,
        path: FieldPath,
        key: Option<Range<usize>>,
        value: &Spanned<DeValue<'_>>,
    ) {
        let span = value.span();
        let content = value
            .get_ref()
            .as_str()
            .and_then(|decoded| verbatim_content(&self.text, &span, decoded));
        match value.get_ref() {
            DeValue::Table(table) => self.index_table(&path, table),
            DeValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.index_value(path.index(index), None, item);
                }
            }
            _ => {}
        }
        self.fields.insert(
            path,
            FieldSpan {
                key,
                value: span,
                content,
            },
        );
    }

    fn span_of(&self, path: &FieldPath, part: &Part) -> Range<usize> {
        if let Part::Bytes(range) = part {
            return range.clone();
        }
        // A field that is not in the file (a missing key) points at its table.
        let mut path = path.clone();
        let field = loop {
            if let Some(field) = self.fields.get(&path) {
                break Some(field);
            }
            if path.0.pop().is_none() {
                break None;
            }
        };
        let Some(field) = field else {
            return 0..0;
        };
        match part {
            Part::Key => field.key.clone().unwrap_or_else(|| field.value.clone()),
            Part::Within(range) => match field.content {
                Some(start) => start + range.start..start + range.end,
                None => field.value.clone(),
            },
            Part::Value | Part::Bytes(_) => field.value.clone(),
        }
    }

    /// Turns problems into one diagnostic that underlines each of them, in file order.
    pub fn diagnose(&self, problems: Vec<Problem>) -> Diagnostics {
        let mut located: Vec<(usize, Located)> = problems
            .into_iter()
            .map(|problem| {
                let labels: Vec<miette::LabeledSpan> = problem
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(i, label)| {
                        let span = self.span_of(&label.path, &label.part);
                        let span = (span.start, span.end.saturating_sub(span.start));
                        if i == 0 {
                            miette::LabeledSpan::new_primary_with_span(
                                Some(label.text.clone()),
                                span,
                            )
                        } else {
                            miette::LabeledSpan::new_with_span(Some(label.text.clone()), span)
                        }
                    })
                    .collect();
                let start = labels.first().map_or(0, |l| l.offset());
                (
                    start,
                    Located {
                        message: problem.message,
                        help: problem.help,
                        labels,
                    },
                )
            })
            .collect();
        located.sort_by_key(|(start, _)| *start);
        Diagnostics {
            source: miette::NamedSource::new(&self.name, self.text.clone()),
            file: self.name.clone(),
            problems: located.into_iter().map(|(_, l)| l).collect(),
        }
    }
}

/// The offset of a string's contents in the file when they appear there
/// verbatim, so offsets within the string are offsets within the file.
fn verbatim_content(text: &str, span: &Range<usize>, decoded: &str) -> Option<usize> {
    let raw = text.get(span.clone())?;
    ["\"\"\"", "'''", "\"", "'"].iter().find_map(|quote| {
        let inner = raw.strip_prefix(quote)?.strip_suffix(quote)?;
        (inner == decoded).then_some(span.start + quote.len())
    })
}

/// Every problem of a configuration file, rendered by miette with the file's
/// text.
#[derive(Debug)]
pub struct Diagnostics {
    source: miette::NamedSource<String>,
    file: String,
    /// The problems, in file order.
    pub problems: Vec<Located>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [only] => write!(f, "{}: {}", self.file, only.message),
            problems => write!(f, "{}: {} problems", self.file, problems.len()),
        }
    }
}

impl std::error::Error for Diagnostics {}

impl miette::Diagnostic for Diagnostics {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.problems.as_slice() {
            [only] => miette::Diagnostic::help(only),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        match self.problems.as_slice() {
            [only] => miette::Diagnostic::labels(only),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        match self.problems.as_slice() {
            [_] => None,
            problems => Some(Box::new(
                problems.iter().map(|p| p as &dyn miette::Diagnostic),
            )),
        }
    }
}
