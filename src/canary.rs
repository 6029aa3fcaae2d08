//! What a canary is: its key, its body, and the marker that makes it ours.
//!
//! The deletion rule (`cleanup/`) leans on this file: only keys shaped like
//! [`Canary::key`] under a replication's prefix, carrying [`MARKER_KEY`]=[`MARKER_VALUE`],
//! are ever deleted. Imports nothing of the crate.

use std::collections::HashMap;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// User metadata (`x-amz-meta-replicanary`) that marks an object as a replicanary canary.
pub const MARKER_KEY: &str = "replicanary";
pub const MARKER_VALUE: &str = "canary-v1";
/// User metadata carrying the hex SHA-256 of the canary's body.
pub const SHA256_KEY: &str = "replicanary-sha256";

/// Length of `20261128T154049Z-0123456789abcdef`, the part of a canary key after its prefix.
pub const NAME_LEN: usize = 16 + 1 + 16;

#[derive(Debug, Clone)]
pub struct Canary {
    pub key: String,
    pub body: Vec<u8>,
    pub sha256: String,
    pub metadata: HashMap<String, String>,
}

impl Canary {
    /// A new canary under `key_prefix` (`<canary_prefix><replication>/`).
    pub fn new(key_prefix: &str, now: SystemTime) -> Canary {
        let stamp: String = humantime::format_rfc3339_seconds(now)
            .to_string()
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let nonce = format!("{:016x}", fastrand::u64(..));
        let key = format!("{key_prefix}{stamp}-{nonce}");
        let body = format!(
            "replicanary canary\nkey: {key}\nThis object is written and deleted by replicanary; it holds no data.\n"
        )
        .into_bytes();
        let sha256 = sha256_hex(&body);
        let metadata = HashMap::from([
            (MARKER_KEY.to_owned(), MARKER_VALUE.to_owned()),
            (SHA256_KEY.to_owned(), sha256.clone()),
        ]);
        Canary {
            key,
            body,
            sha256,
            metadata,
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `key` has the exact shape of a canary key under `key_prefix`.
pub fn is_canary_key(key_prefix: &str, key: &str) -> bool {
    let Some(name) = key.strip_prefix(key_prefix) else {
        return false;
    };
    let b = name.as_bytes();
    b.len() == NAME_LEN
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Whether an object's user metadata carries the canary marker and a well-formed digest.
pub fn carries_marker(metadata: &HashMap<String, String>) -> bool {
    metadata.get(MARKER_KEY).map(String::as_str) == Some(MARKER_VALUE)
        && metadata
            .get(SHA256_KEY)
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_canary_is_recognised_as_one() {
        let c = Canary::new("replicanary/audit-logs/", SystemTime::now());
        assert!(
            is_canary_key("replicanary/audit-logs/", &c.key),
            "{}",
            c.key
        );
        assert!(carries_marker(&c.metadata));
        assert_eq!(c.sha256, sha256_hex(&c.body));
        assert!(!is_canary_key("replicanary/other/", &c.key));
    }

    #[test]
    fn other_keys_are_not_canaries() {
        let p = "replicanary/r/";
        for key in [
            "replicanary/r/",
            "replicanary/r/report.csv",
            "replicanary/r/20261128T154049Z-0123456789abcdeF",
            "replicanary/r/20261128T154049Z-0123456789abcdef/x",
            "replicanary/r/20261128X154049Z-0123456789abcdef",
            "other/20261128T154049Z-0123456789abcdef",
        ] {
            assert!(!is_canary_key(p, key), "{key}");
        }
        assert!(is_canary_key(
            p,
            "replicanary/r/20261128T154049Z-0123456789abcdef"
        ));
    }

    #[test]
    fn the_marker_needs_both_fields() {
        let mut m = HashMap::from([(MARKER_KEY.to_owned(), MARKER_VALUE.to_owned())]);
        assert!(!carries_marker(&m));
        m.insert(SHA256_KEY.to_owned(), "zz".repeat(32));
        assert!(!carries_marker(&m));
        m.insert(SHA256_KEY.to_owned(), "ab".repeat(32));
        assert!(carries_marker(&m));
        m.insert(MARKER_KEY.to_owned(), "yes".to_owned());
        assert!(!carries_marker(&m));
    }
}
