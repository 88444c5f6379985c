//! Why a plan entry was not promoted: the executor's errors, kept as data
//! until the report renders them.

use crate::digest::Digest;
use crate::registry::RegistryError;
use crate::tree::TreeError;

/// Something that stopped an image or a tag from being written.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The plan names a registry the run did not open.
    #[error("registry `{0}` is not open")]
    StoreNotOpen(String),
    /// The image's manifest tree could not be read from the source.
    #[error(transparent)]
    Tree(Box<TreeError>),
    /// The image's manifest tree was never read (an earlier failure).
    #[error("its manifest was not read")]
    TreeNotRead,
    /// The manifest tree came out empty.
    #[error("empty manifest tree")]
    EmptyTree,
    /// A blob could not be made present in the target.
    #[error("blob {}: {source}", .digest.short())]
    Blob {
        /// The blob.
        digest: Digest,
        /// What the registry said.
        source: Box<RegistryError>,
    },
    /// A blob of an image being repaired could not be checked or copied.
    #[error("repairing blob {}: {source}", .digest.short())]
    RepairBlob {
        /// The blob.
        digest: Digest,
        /// What the registry said.
        source: Box<RegistryError>,
    },
    /// The target repository does not exist and the registry will not
    /// create it on push.
    #[error(transparent)]
    RepositoryMissing(MissingRepository),
    /// A manifest or tag PUT failed; `what` says which (`writing tag 1.0`).
    #[error("{what}: {source}")]
    Write {
        /// What was being written.
        what: String,
        /// What the registry said.
        source: Box<RegistryError>,
    },
    /// A digest in the plan is malformed (a hand-edited plan file).
    #[error(transparent)]
    Digest(#[from] crate::digest::InvalidDigest),
    /// A registry read failed (a precondition check, a present image).
    #[error(transparent)]
    Registry(Box<RegistryError>),
    /// `apply --plan`: the source tag points elsewhere than when the plan was made.
    #[error("the source {reference} moved since planning: planned {planned}, now {now}")]
    SourceMoved {
        /// `registry/repository:tag`.
        reference: String,
        /// Short digest the plan saw.
        planned: String,
        /// Short digest now, or `absent`.
        now: String,
    },
    /// `apply --plan`: the target tag changed since the plan was made.
    #[error("the target {reference} changed since planning: planned {planned}, now {now}")]
    TargetChanged {
        /// `registry/repository:tag`.
        reference: String,
        /// Short digest the plan saw, or `absent`.
        planned: String,
        /// Short digest now, or `absent`.
        now: String,
    },
    /// A floating or attached tag whose version tag or subject did not make it.
    #[error("not written: {repository}:{tag} {why}")]
    Follows {
        /// The repository of the tag it follows.
        repository: String,
        /// The tag it follows.
        tag: String,
        /// `is blocked`, `was refused` or `failed`.
        why: &'static str,
    },
    /// A manifest a referrers listing named does not name the subject it
    /// was listed for.
    #[error("{} does not name {} as its subject", .digest.short(), .subject.short())]
    NotAReferrer {
        /// The manifest listed.
        digest: Digest,
        /// The subject it was listed for.
        subject: Digest,
    },
    /// The target's referrers fallback tag holds something the source's
    /// index cannot be merged into: it is left as it is.
    #[error("the target's {tag} {source}: not written over")]
    ReferrersListing {
        /// The fallback tag.
        tag: String,
        /// What it holds instead of an index.
        source: crate::referrers::ReferrersIndexError,
    },
    /// A floating or attached tag whose own image failed.
    #[error("its image failed")]
    ImageFailed,
    /// The image and its tags were written, its promotion record was not.
    #[error(transparent)]
    Record(Box<crate::record::RecordError>),
    /// `mode = "move"`: once the source tag was deleted, a copy it was moved
    /// to was not there (the target was the source under another name: an
    /// alias, a load balancer), so the deletion was undone.
    #[error(
        "the move was undone: once {source_tag} was deleted, its copy {copy} {found} \
         (the target is the source under another name?); {restored}"
    )]
    MoveUndone {
        /// `registry/repository:tag` of the deleted source tag.
        source_tag: String,
        /// `registry/repository:tag` of the copy that was not there.
        copy: String,
        /// What reading the copy found (`was gone`, `pointed at …`).
        found: String,
        /// How the source tag was put back, or where its manifest is kept.
        restored: String,
    },
    /// SIGINT or SIGTERM came before this work started.
    #[error("not started: hoist was stopped by {0}")]
    Stopped(&'static str),
    /// Nothing decided this entry's fate (never expected).
    #[error("not attempted")]
    NotAttempted,
}

/// A target repository that must be created before anything can be pushed
/// to it (ECR repositories, Harbor and GitLab projects): what to create,
/// where, and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "repository `{repository}` does not exist on `{registry}`, and this registry does not \
     create repositories on push: create it (ECR: `aws ecr create-repository \
     --repository-name {repository}`; Harbor, GitLab: create the project), then run again \
     ({said})"
)]
pub struct MissingRepository {
    /// The target registry's name in the configuration.
    pub registry: String,
    /// The repository to create.
    pub repository: String,
    /// The registry's refusal, as hoist renders it.
    pub said: String,
}

impl From<RegistryError> for ExecError {
    fn from(error: RegistryError) -> ExecError {
        ExecError::Registry(Box::new(error))
    }
}

impl From<TreeError> for ExecError {
    fn from(error: TreeError) -> ExecError {
        ExecError::Tree(Box::new(error))
    }
}
