//! What a rule names its writes: the target repository, the target tag,
//! floating tags, and the tags a command line names outright.

use super::{SelectedTag, Template, Values};
use crate::reference::validate_tag;

/// A rule's naming of target repositories and tags, compiled.
#[derive(Clone, Debug)]
pub struct Naming {
    /// Target repository template.
    pub target: Template,
    /// Target tag template.
    pub tag: Template,
    /// Floating tag templates.
    pub floating: Vec<Template>,
    /// Also write the source tag when `tag` renames it.
    pub keep_source_tag: bool,
    /// The target tags a command line names for its source tag (`hoist
    /// promote`): each written as given, in place of `tag`,
    /// `keep_source_tag` and `floating`. Empty for a rule of the file.
    pub named_tags: Vec<NamedTag>,
}

/// A target tag a command line names outright.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedTag {
    /// The tag.
    pub tag: String,
    /// The series it floats over (its template, or the tag itself for an
    /// extra tag), when it is written after the version tags as floating
    /// tags are; `None`: a version tag.
    pub floats: Option<String>,
}

/// The tags a selected source tag is written as by the `tag` template and
/// `keep_source_tag`, floating tags aside.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionTags {
    /// The target tags, in order: the template's, then the source tag.
    pub tags: Vec<String>,
    /// Why the template wrote no tag, when it could not: the source tag is
    /// then skipped under that reason (and still written as itself with
    /// `keep_source_tag`).
    pub unwritable: Option<String>,
}

impl Naming {
    /// The tags a selected source tag is written as, floating tags aside:
    /// the names a command line gave, or the `tag` template's and the
    /// source tag with `keep_source_tag`. Discovery reads the target heads
    /// of these and expansion claims them, so both name the same tags.
    pub fn written_as(&self, selected: &SelectedTag, repository: &str) -> Vec<String> {
        if !self.named_tags.is_empty() {
            return self.named_tags.iter().map(|n| n.tag.clone()).collect();
        }
        self.version_tags(selected, repository).tags
    }

    /// What the `tag` template and `keep_source_tag` write for a selected
    /// source tag, with why the template could not, if it could not.
    pub fn version_tags(&self, selected: &SelectedTag, repository: &str) -> VersionTags {
        let rendered = self.tag.render(&Values {
            tag: &selected.tag,
            version: selected.version.as_ref(),
            path: repository,
        });
        let mut written = VersionTags::default();
        match rendered {
            None => {
                written.unwritable = Some(format!(
                    "tag template `{}` needs a semantic version",
                    self.tag
                ));
            }
            Some(tag) if validate_tag(&tag, &tag).is_err() => {
                written.unwritable = Some(format!(
                    "tag template `{}` gives `{tag}`, which is not a valid tag",
                    self.tag
                ));
            }
            Some(tag) => written.tags.push(tag),
        }
        if self.keep_source_tag && !written.tags.contains(&selected.tag) {
            written.tags.push(selected.tag.clone());
        }
        written
    }

    /// The target repository for a source repository.
    pub fn target_repository(&self, source: &str) -> String {
        self.target.render_repository(source)
    }
}
