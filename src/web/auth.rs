//! HTTP basic authentication against the bcrypt hashes of `basic_auth_users`.
//!
//! bcrypt is slow on purpose (about 65 ms of CPU at cost 10: README, "Securing the
//! endpoints"), and Prometheus sends the same credentials on every scrape. A successful
//! check is cached, as the exporter-toolkit does: the cache holds the SHA-256 of (user,
//! password, hash) — never a password — at most [`CACHE_ENTRIES`] of them, and lives as
//! long as the users it was made for (a reload that changes `basic_auth_users` starts an
//! empty one). A failed check is not cached, and bcrypt runs on the blocking pool, one
//! check at a time: wrong passwords cost the caller time, and never delay a scrape whose
//! credentials were seen. An unknown user costs a bcrypt check too, so that timing does
//! not tell which users exist.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// How many distinct successful credentials are remembered; past that the cache starts
/// over (a handful of scrapers use a handful of credentials).
pub const CACHE_ENTRIES: usize = 256;

/// The users and the cache of their successful checks.
pub struct Users {
    hashes: BTreeMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt check at a time.
    checking: Semaphore,
    /// What an unknown user's password is checked against: a hash of the users' cost.
    unknown_user: OnceLock<String>,
}

impl Users {
    pub fn new(hashes: BTreeMap<String, String>) -> Users {
        Users {
            hashes,
            verified: Mutex::new(HashSet::new()),
            checking: Semaphore::new(1),
            unknown_user: OnceLock::new(),
        }
    }

    /// The user → hash map these users were made from.
    pub fn hashes(&self) -> &BTreeMap<String, String> {
        &self.hashes
    }

    /// Whether the `Authorization` header value names a user with the right password.
    pub async fn allows(self: &Arc<Self>, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let hash = self.hashes.get(&user).cloned();
        let key = cache_key(&user, &password, hash.as_deref().unwrap_or_default());
        if hash.is_some() && self.cached(&key) {
            return true;
        }
        let Ok(_permit) = self.checking.acquire().await else {
            return false;
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.unknown_user_hash().to_owned());
        let checked = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|r| r.unwrap_or(false));
        let ok = known && checked;
        if ok {
            self.remember(key);
        }
        ok
    }

    /// A hash no password matches in practice, at the cost of the first user's hash (the
    /// same work as for a known user).
    fn unknown_user_hash(&self) -> &str {
        self.unknown_user.get_or_init(|| {
            let cost = self
                .hashes
                .values()
                .find_map(|h| bcrypt::HashParts::from_str(h).ok())
                .map_or(bcrypt::DEFAULT_COST, |p| p.get_cost());
            bcrypt::hash_with_salt(b"replicanary: no such user", cost, [7; 16])
                .map(|p| p.to_string())
                .unwrap_or_default()
        })
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .map(|set| set.contains(key))
            .unwrap_or(false)
    }

    fn remember(&self, key: [u8; 32]) {
        if let Ok(mut set) = self.verified.lock() {
            if set.len() >= CACHE_ENTRIES {
                set.clear();
            }
            set.insert(key);
        }
    }
}

fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user, password, hash] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// `Basic base64(user:password)` → (user, password); `None` for anything else.
pub fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// What the tests look at (the production code never asks).
#[cfg(test)]
impl Users {
    pub fn cached_entries(&self) -> usize {
        self.verified.lock().map(|s| s.len()).unwrap_or(0)
    }
}
