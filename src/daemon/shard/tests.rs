//! The shard hash: published test vectors of both halves, one shard per name, an even
//! spread, and few moves when the count changes.

use super::{Shard, fnv1a64, jump_consistent_hash, shard_of};

#[test]
fn fnv1a64_matches_the_published_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn jump_hash_matches_the_published_vectors() {
    // The values other implementations check against (ClickHouse's jumpConsistentHash
    // tests, and the paper's algorithm as ported to Rust and Python).
    for (key, buckets, want) in [
        (1, 1, 0),
        (42, 57, 43),
        (256, 1024, 520),
        (3_735_883_980, 1, 0),
        (3_735_883_980, 666, 361),
        (16_045_690_984_833_335_023, 255, 237),
        (123_456, 1000, 984),
    ] {
        assert_eq!(
            jump_consistent_hash(key, buckets),
            want,
            "jump({key}, {buckets})"
        );
    }
}

/// What the lab's copies are called (`provision.py --copies`), and discovered-style names.
fn names(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| {
            if i % 2 == 0 {
                format!("healthy-{i:04}")
            } else {
                format!("bucket-{i}/rule-{}", i % 7)
            }
        })
        .collect()
}

#[test]
fn every_name_lands_on_exactly_one_shard() {
    for count in 1..=8 {
        let shards: Vec<Shard> = (0..count)
            .map(|i| Shard::new(i, count).expect("valid shard"))
            .collect();
        for name in names(500) {
            let owners = shards.iter().filter(|s| s.owns(&name)).count();
            assert_eq!(owners, 1, "{name} with {count} shards");
            assert!(shard_of(&name, count) < count);
        }
    }
}

#[test]
fn the_spread_is_even() {
    // 10,000 names: each shard's share within 10 % of the mean for 2 to 8 shards.
    let names = names(10_000);
    for count in 2..=8u32 {
        let mut per = vec![0usize; count as usize];
        for n in &names {
            per[shard_of(n, count) as usize] += 1;
        }
        let mean = names.len() as f64 / f64::from(count);
        for (i, got) in per.iter().enumerate() {
            let off = (*got as f64 - mean).abs() / mean;
            assert!(
                off < 0.10,
                "shard {i} of {count}: {got} names, mean {mean}: {per:?}"
            );
        }
    }
}

#[test]
fn one_more_shard_moves_few_names_and_only_to_the_new_shard() {
    let names = names(10_000);
    for count in 1..=7u32 {
        let moved: Vec<&String> = names
            .iter()
            .filter(|n| shard_of(n, count) != shard_of(n, count + 1))
            .collect();
        assert!(
            moved.iter().all(|n| shard_of(n, count + 1) == count),
            "a name moved between old shards"
        );
        let share = moved.len() as f64 / names.len() as f64;
        let ideal = 1.0 / f64::from(count + 1);
        assert!(
            (share - ideal).abs() < 0.03,
            "{count} → {}: {share:.3} moved, ideal {ideal:.3}",
            count + 1
        );
    }
}

#[test]
fn shard_arguments_are_checked() {
    assert!(Shard::new(0, 1).is_ok());
    assert!(Shard::new(3, 4).is_ok());
    assert!(
        Shard::new(0, 0)
            .unwrap_err()
            .to_string()
            .contains("at least 1")
    );
    assert!(Shard::new(2, 2).unwrap_err().to_string().contains("0 to 1"));
    let all = Shard::ALL;
    assert!(all.owns("anything") && all.owns(""));
}

#[test]
fn the_lab_copies_split_as_the_readme_says() {
    // README "Shards and HA pairs" quotes these figures.
    let copies: Vec<String> = (1..=1000).map(|i| format!("healthy-{i:04}")).collect();
    let split = |count: u32| {
        let mut per = vec![0usize; count as usize];
        for n in &copies {
            per[shard_of(n, count) as usize] += 1;
        }
        per
    };
    assert_eq!(split(2), [495, 505]);
    let eight = split(8);
    assert_eq!(eight.iter().min(), Some(&118));
    assert_eq!(eight.iter().max(), Some(&132));
    // The e2e test's six copies split three and three.
    let six: Vec<u32> = copies[..6].iter().map(|n| shard_of(n, 2)).collect();
    assert_eq!(six, [1, 1, 0, 0, 0, 1]);
}
