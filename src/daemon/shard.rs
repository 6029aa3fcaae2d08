//! Shards: which replications this instance probes when several split the estate.
//!
//! A replication belongs to shard `jump(fnv1a64(name), count)`: the 64-bit FNV-1a hash of
//! its name's UTF-8 bytes, fed to the jump consistent hash of Lamping and Veach ("A Fast,
//! Minimal Memory, Consistent Hash Algorithm", 2014). Every instance computes the same
//! answer from the name alone, so every replication lands on exactly one shard, discovered
//! ones included, without any coordination; and changing the count from N to N+1 moves
//! only about 1/(N+1) of the replications (to the new shard), none between old shards.

use crate::config::Replication;

/// This instance's share of the replications: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why `--shard-index` and `--shard-count` cannot go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard-count must be at least 1")]
    NoShards,
    #[error(
        "--shard-index must be below --shard-count: shards are numbered 0 to {} for \
         --shard-count {count}, got --shard-index {index}",
        .count - 1
    )]
    IndexTooHigh { index: u32, count: u32 },
}

impl Shard {
    /// An unsharded instance: it probes every replication.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; needs `count ≥ 1` and `0 ≤ index < count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards);
        }
        if index >= count {
            return Err(ShardError::IndexTooHigh { index, count });
        }
        Ok(Shard { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether this shard probes the replication called `name`.
    pub fn owns(&self, name: &str) -> bool {
        shard_of(name, self.count) == self.index
    }

    /// Keeps the replications this shard owns.
    pub fn select(&self, mut replications: Vec<Replication>) -> Vec<Replication> {
        if self.count > 1 {
            replications.retain(|r| self.owns(&r.name));
        }
        replications
    }
}

/// The shard (of `count`) that probes the replication called `name`.
pub fn shard_of(name: &str, count: u32) -> u32 {
    jump_consistent_hash(fnv1a64(name.as_bytes()), count)
}

/// 64-bit FNV-1a: offset basis 0xcbf29ce484222325, prime 0x100000001b3.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Jump consistent hash (Lamping & Veach): the bucket in `0..buckets` of `key`, by their
/// published algorithm (a 64-bit linear congruential generator decides how far to jump).
/// `buckets` 0 is treated as 1.
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets.max(1));
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let jump = (1u64 << 31) as f64 / ((key >> 33) + 1) as f64;
        j = ((b + 1) as f64 * jump) as i64;
    }
    // 0 ≤ b < buckets ≤ u32::MAX.
    u32::try_from(b).unwrap_or(0)
}

#[cfg(test)]
mod tests;
