//! Glob lists with `!` excludes, for repositories (where `*` stays within one
//! path segment and `**` crosses them) and for tags.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::config::{FieldPath, Part, Problem};

/// A compiled list of globs: a name matches when some include matches and no
/// exclude does. A list of excludes only includes everything else.
#[derive(Clone, Debug)]
pub struct PatternSet {
    include: GlobSet,
    exclude: GlobSet,
    include_all: bool,
    /// Every include is a plain name.
    all_named: bool,
    named: Vec<String>,
    /// The patterns as written, for messages.
    written: Vec<String>,
}

impl PatternSet {
    /// Compiles `patterns` (found at `path` in the file); every bad glob is a problem.
    pub fn compile(patterns: &[String], path: &FieldPath) -> Result<PatternSet, Vec<Problem>> {
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        let mut problems = Vec::new();
        let mut includes = 0;
        let mut literals = Vec::new();
        for (index, pattern) in patterns.iter().enumerate() {
            let (negated, glob) = match pattern.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, pattern.as_str()),
            };
            let offset = usize::from(negated);
            if glob.is_empty() {
                problems.push(
                    Problem::at(path.index(index), "empty pattern")
                        .help("remove it, or write a glob such as `apps/*`"),
                );
                continue;
            }
            if let Some(position) = glob.find(char::is_whitespace) {
                problems.push(
                    Problem::at(path.index(index), "a pattern cannot contain whitespace")
                        .part(Part::Within(offset + position..offset + position + 1)),
                );
                continue;
            }
            let compiled = GlobBuilder::new(glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build();
            match compiled {
                Ok(compiled) => {
                    if negated {
                        exclude.add(compiled);
                    } else {
                        includes += 1;
                        include.add(compiled);
                        if !glob.contains(['*', '?', '[', ']', '{', '}', '\\']) {
                            literals.push(glob.to_string());
                        }
                    }
                }
                Err(error) => problems.push(
                    Problem::at(path.index(index), format!("bad glob `{pattern}`: {}", error.kind()))
                        .help("globs use `*` (within one path segment), `**` (across segments), `?`, `[abc]` and `{a,b}`; a leading `!` excludes"),
                ),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let build = |builder: GlobSetBuilder| builder.build().unwrap_or_else(|_| GlobSet::empty());
        Ok(PatternSet {
            include: build(include),
            exclude: build(exclude),
            include_all: includes == 0,
            all_named: includes > 0 && literals.len() == includes,
            named: literals,
            written: patterns.to_vec(),
        })
    }

    /// Whether `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        (self.include_all || self.include.is_match(name)) && !self.exclude.is_match(name)
    }

    /// When every include is a plain name, those names (minus excludes): the
    /// catalog need not be listed to find them.
    pub fn literals(&self) -> Option<Vec<String>> {
        self.all_named.then(|| self.named())
    }

    /// Whether some include is a glob (or there is none): only a listing of
    /// every name (a registry's catalog) can say what matches.
    pub fn needs_listing(&self) -> bool {
        !self.all_named
    }

    /// The patterns as written in the file.
    pub fn written(&self) -> &[String] {
        &self.written
    }

    /// The includes that are plain names (minus excludes), globs or not beside them.
    pub fn named(&self) -> Vec<String> {
        self.named
            .iter()
            .filter(|name| !self.exclude.is_match(name.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> PatternSet {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        PatternSet::compile(&patterns, &FieldPath::root("repositories")).unwrap()
    }

    #[test]
    fn star_stays_within_a_segment() {
        let globs = set(&["apps/*"]);
        assert!(globs.matches("apps/web"));
        assert!(!globs.matches("apps/team/web"));
        assert!(!globs.matches("tools/web"));
    }

    #[test]
    fn double_star_crosses_segments() {
        let globs = set(&["apps/**"]);
        assert!(globs.matches("apps/web"));
        assert!(globs.matches("apps/team/web"));
        assert!(!globs.matches("appsx/web"));
        assert!(set(&["**/web"]).matches("a/b/web"));
    }

    #[test]
    fn excludes_win_and_alone_include_the_rest() {
        let globs = set(&["apps/**", "!apps/experimental-*"]);
        assert!(globs.matches("apps/web"));
        assert!(!globs.matches("apps/experimental-ui"));
        let globs = set(&["!*-rc*"]);
        assert!(globs.matches("1.0.0"));
        assert!(!globs.matches("1.0.0-rc1"));
    }

    #[test]
    fn plain_names_are_literals() {
        assert_eq!(
            set(&["apps/web", "apps/api", "!apps/api"]).literals(),
            Some(vec!["apps/web".to_string()])
        );
        assert_eq!(set(&["apps/web", "apps/*"]).literals(), None);
        assert_eq!(set(&["!x"]).literals(), None);
    }

    #[test]
    fn bad_globs_are_problems_at_their_element() {
        let patterns = vec![
            "apps/*".to_string(),
            "apps/[web".to_string(),
            "".to_string(),
        ];
        let problems = PatternSet::compile(&patterns, &FieldPath::root("tags")).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].message.contains("bad glob `apps/[web`"),
            "{}",
            problems[0].message
        );
        assert_eq!(problems[0].labels[0].path.to_string(), "tags[1]");
        assert_eq!(problems[1].labels[0].path.to_string(), "tags[2]");
    }
}
