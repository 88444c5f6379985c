//! Problems found in a `promotions.toml`, located by field path, and the
//! miette diagnostics they become once the path is turned into a span.

use std::fmt;
use std::ops::Range;

/// One step of a path into the file: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// A key of a table.
    Key(String),
    /// An element of an array (or of an array of tables).
    Index(usize),
}

/// A path into the file, such as `promotion[2].tags[0]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<Step>);

impl FieldPath {
    /// The path of a key under the root.
    pub fn root(key: &str) -> FieldPath {
        FieldPath(vec![Step::Key(key.to_string())])
    }

    /// The path of `[[promotion]]` number `index`.
    pub fn promotion(index: usize) -> FieldPath {
        FieldPath::root("promotion").index(index)
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut path = self.clone();
        path.0.push(Step::Key(key.to_string()));
        path
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> FieldPath {
        let mut path = self.clone();
        path.0.push(Step::Index(index));
        path
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => write!(f, "{key}")?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Which text of a field a label underlines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// The key itself (`tgas = ...` underlines `tgas`).
    Key,
    /// The whole value.
    Value,
    /// Bytes `range` of a string value's contents (a template variable, a glob
    /// character); falls back to the whole value when the string has escapes.
    Within(Range<usize>),
    /// Bytes `range` of the file itself, for errors that come with their own
    /// span (the TOML parser's); the label's path is not used.
    Bytes(Range<usize>),
}

/// A place in the file and what to say there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The field.
    pub path: FieldPath,
    /// Which part of it.
    pub part: Part,
    /// The text printed under the underline.
    pub text: String,
}

/// Something wrong with the configuration, not yet tied to byte offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Where; the first label is the primary one.
    pub labels: Vec<Label>,
}

impl Problem {
    /// A problem with the value at `path`.
    pub fn at(path: FieldPath, message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            help: None,
            labels: vec![Label {
                path,
                part: Part::Value,
                text: "here".to_string(),
            }],
        }
    }

    /// A problem at a byte range of the file.
    pub fn spanned(span: Range<usize>, message: impl Into<String>) -> Problem {
        Problem::at(FieldPath::default(), message).part(Part::Bytes(span))
    }

    /// Sets the underlined part of the first label.
    pub fn part(mut self, part: Part) -> Problem {
        if let Some(label) = self.labels.first_mut() {
            label.part = part;
        }
        self
    }

    /// Sets the text under the first label.
    pub fn label(mut self, text: impl Into<String>) -> Problem {
        if let Some(label) = self.labels.first_mut() {
            label.text = text.into();
        }
        self
    }

    /// Adds a further place.
    pub fn also(mut self, path: FieldPath, part: Part, text: impl Into<String>) -> Problem {
        self.labels.push(Label {
            path,
            part,
            text: text.into(),
        });
        self
    }

    /// Adds advice.
    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `did you mean `x`?`, or the list of valid names (`what` is their plural).
pub fn did_you_mean(word: &str, candidates: &[&str], what: &str) -> String {
    match nearest(word, candidates.iter().copied()) {
        Some(near) => format!("did you mean `{near}`?"),
        None if candidates.is_empty() => format!("there are no {what} to choose from"),
        None => format!("valid {what}: {}", candidates.join(", ")),
    }
}

/// A problem rendered with spans: one miette diagnostic.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Located {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Underlined places, primary first.
    pub labels: Vec<miette::LabeledSpan>,
}

impl miette::Diagnostic for Located {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_toml() {
        let path = FieldPath::promotion(2).key("tags").index(0);
        assert_eq!(path.to_string(), "promotion[2].tags[0]");
    }

    #[test]
    fn suggests_close_names_only() {
        let keys = ["tags", "target", "tag", "repositories"];
        assert_eq!(nearest("tgas", keys), Some("tags"));
        assert_eq!(nearest("repository", keys), Some("repositories"));
        assert_eq!(nearest("colour", keys), None);
    }
}
