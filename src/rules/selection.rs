//! Which source tags a rule promotes: globs, a version requirement,
//! prereleases, the N highest versions and pins.

use std::collections::BTreeMap;

use semver::Version;

use super::{PatternSet, Requirement, SelectedTag, is_attached_tag, tag_version};
use crate::digest::Digest;

/// A rule's tag selection, compiled.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Tag globs.
    pub tags: PatternSet,
    /// Version requirement.
    pub semver: Option<Requirement>,
    /// Select prereleases too.
    pub prerelease: bool,
    /// Keep the N highest versions.
    pub latest: Option<usize>,
    /// Tags promoted only at these digests.
    pub pins: BTreeMap<String, Digest>,
}

impl Selection {
    /// The tags of one source repository this rule promotes: pinned tags, then
    /// those the globs, the version filters and `latest` keep.
    pub fn select_tags(&self, tags: &[String]) -> Vec<SelectedTag> {
        let mut pinned_list = Vec::new();
        let mut versions = Vec::new();
        let mut others = Vec::new();
        // Signature, attestation and SBOM tags follow their subject
        // (`referrers`), never a rule's tag selection.
        for tag in tags.iter().filter(|tag| !is_attached_tag(tag)) {
            let version = tag_version(tag);
            let pinned = self.pins.contains_key(tag);
            let selected = |pinned_only| SelectedTag {
                tag: tag.clone(),
                version: version.clone(),
                pinned_only,
            };
            let passes = self.takes(tag);
            match (passes, &version) {
                (true, Some(_)) => versions.push(selected(false)),
                (true, None) => others.push(selected(false)),
                (false, _) if pinned => pinned_list.push(selected(true)),
                (false, _) => {}
            }
        }
        if let Some(n) = self.latest {
            versions.sort_by(|a, b| b.version.cmp(&a.version).then_with(|| a.tag.cmp(&b.tag)));
            // `v1.2.0` and `1.2.0` are one version: both stay when it is kept.
            let mut kept = 0;
            let mut last: Option<Version> = None;
            versions.retain(|s| {
                if last.as_ref() != s.version.as_ref() {
                    kept += 1;
                    last = s.version.clone();
                }
                kept <= n || self.pins.contains_key(&s.tag)
            });
        }
        let mut selected = pinned_list;
        selected.append(&mut versions);
        selected.append(&mut others);
        selected.sort_by(|a, b| a.tag.cmp(&b.tag));
        selected
    }

    /// Whether the globs, `semver` and `prerelease` take a tag of this name
    /// (`latest` aside: it ranks the tags a repository has).
    pub fn takes(&self, tag: &str) -> bool {
        if is_attached_tag(tag) || !self.tags.matches(tag) {
            return false;
        }
        let ranks_versions = self.semver.is_some() || self.latest.is_some();
        match tag_version(tag) {
            Some(v) => {
                (v.pre.is_empty() || self.prerelease)
                    && self
                        .semver
                        .as_ref()
                        .is_none_or(|req| req.matches(&v, self.prerelease))
            }
            None => !ranks_versions,
        }
    }

    /// The tags the globs match that the rule's other settings leave out
    /// (`selected` being what [`Selection::select_tags`] kept), each with why:
    /// nothing a rule's globs match is skipped silently.
    pub fn left_out(&self, tags: &[String], selected: &[SelectedTag]) -> Vec<(String, String)> {
        let ranks_versions = self.semver.is_some() || self.latest.is_some();
        let kept: std::collections::BTreeSet<&str> =
            selected.iter().map(|s| s.tag.as_str()).collect();
        tags.iter()
            .filter(|tag| !is_attached_tag(tag) && self.tags.matches(tag))
            .filter(|tag| !kept.contains(tag.as_str()))
            .map(|tag| {
                let reason = match (tag_version(tag), &self.semver) {
                    (Some(v), _) if !v.pre.is_empty() && !self.prerelease => {
                        "a prerelease, and the rule has prerelease = false".to_string()
                    }
                    (Some(v), Some(req)) if !req.matches(&v, self.prerelease) => {
                        format!("outside semver = \"{req}\"")
                    }
                    (None, _) if ranks_versions => {
                        "not a version, and the rule selects versions (`semver` or `latest`)"
                            .to_string()
                    }
                    _ => match self.latest {
                        Some(n) => {
                            format!("older than the {n} highest versions `latest = {n}` keeps")
                        }
                        None => "left out by the rule".to_string(),
                    },
                };
                (tag.clone(), reason)
            })
            .collect()
    }
}
