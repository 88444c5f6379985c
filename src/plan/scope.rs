//! The part of a plan one run covers: some rules (`--rule`) and one shard
//! (`--shard K/N`), so N machines split one promotion without overlap.

use std::fmt;
use std::str::FromStr;

use super::{PlanEntry, keep_moves_within};

/// Shard K of N (K from 0): the entries whose target repository hashes to K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// K, below `count`.
    pub index: u32,
    /// N, at least 1.
    pub count: u32,
}

/// Why a text is not `K/N`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    /// No `/`.
    #[error("`{0}` is not K/N (e.g. 0/4)")]
    Form(String),
    /// K is not a number.
    #[error("`{0}` is not a shard number")]
    Index(String),
    /// N is not a number.
    #[error("`{0}` is not a shard count")]
    Count(String),
    /// K is not below N.
    #[error("shard {0}/{1}: K counts from 0 and must be below N")]
    OutOfRange(u32, u32),
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| ShardError::Form(text.to_string()))?;
        let index: u32 = k
            .trim()
            .parse()
            .map_err(|_| ShardError::Index(k.to_string()))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| ShardError::Count(n.to_string()))?;
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange(index, count));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the target repository belongs to this shard.
    pub fn contains(&self, repository: &str) -> bool {
        shard_of(repository, self.count) == self.index
    }
}

/// The shard a target repository belongs to among `n`: FNV-1a, stable
/// across machines and versions.
pub fn shard_of(repository: &str, n: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in repository.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(n.max(1))) as u32
}

/// What a run covers: the named rules (all when empty) and one shard (all
/// when `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// `--rule` names.
    pub rules: Vec<String>,
    /// `--shard`.
    pub shard: Option<Shard>,
}

impl Scope {
    /// Whether an entry is in scope.
    pub fn includes(&self, entry: &PlanEntry) -> bool {
        (self.rules.is_empty() || entry.rules.iter().any(|r| self.rules.contains(r)))
            && self.includes_repository(&entry.target.repository)
    }

    /// Whether a target repository is in the shard.
    pub fn includes_repository(&self, repository: &str) -> bool {
        self.shard.is_none_or(|shard| shard.contains(repository))
    }

    /// Keeps the entries in scope. A `move` whose source tag also feeds an
    /// entry left out is copied instead (see [`keep_moves_within`]).
    pub fn narrow(&self, entries: &mut Vec<PlanEntry>) {
        keep_moves_within(entries, |e| self.includes(e));
        entries.retain(|e| self.includes(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_print_and_refuse_nonsense() {
        let shard: Shard = "1/4".parse().unwrap();
        assert_eq!(shard, Shard { index: 1, count: 4 });
        assert_eq!(shard.to_string(), "1/4");
        assert_eq!(" 0 / 2".parse::<Shard>().map(|s| s.count), Ok(2));
        assert_eq!("3".parse::<Shard>(), Err(ShardError::Form("3".into())));
        assert_eq!("a/2".parse::<Shard>(), Err(ShardError::Index("a".into())));
        assert_eq!("0/b".parse::<Shard>(), Err(ShardError::Count("b".into())));
        assert_eq!("2/2".parse::<Shard>(), Err(ShardError::OutOfRange(2, 2)));
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::OutOfRange(0, 0)));
    }

    #[test]
    fn every_repository_is_in_exactly_one_shard() {
        let shards: Vec<Shard> = (0..3).map(|k| Shard { index: k, count: 3 }).collect();
        for repository in ["apps/web", "apps/api", "base/debian", "x", ""] {
            let holders = shards.iter().filter(|s| s.contains(repository)).count();
            assert_eq!(holders, 1, "{repository}");
        }
        // Stable across machines and versions (FNV-1a): a plan split today
        // splits the same tomorrow, so these values are pinned.
        let shards: Vec<u32> = ["apps/web", "apps/api", "base/debian", "x"]
            .iter()
            .map(|r| shard_of(r, 4))
            .collect();
        assert_eq!(shards, [0, 2, 0, 3]);
        assert_eq!(shard_of("apps/web", 3), 1);
        assert_eq!(shard_of("", 1), 0);
    }
}
