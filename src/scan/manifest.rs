//! The remediation manifests: one CSV per destination, in the S3 Batch Operations
//! manifest form `bucket,key,version_id`, key URL-encoded, listing the *source* versions
//! an S3 Batch Replication job re-replicates. Rows are written as they are found.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but unreserved characters and `/` is percent-encoded (UTF-8), as
/// `urllib.parse.quote` does: S3 Batch Operations URL-decodes the key of each row.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// One destination's manifest file.
pub struct Manifest {
    path: PathBuf,
    out: BufWriter<File>,
    rows: u64,
}

impl Manifest {
    /// Creates (truncates) `<dir>/<replication>__<destination>.csv`.
    pub fn create(dir: &Path, replication: &str, destination: &str) -> io::Result<Manifest> {
        let path = dir.join(file_name(replication, destination));
        Ok(Manifest {
            out: BufWriter::new(File::create(&path)?),
            path,
            rows: 0,
        })
    }

    pub fn row(&mut self, bucket: &str, key: &str, version_id: &str) -> io::Result<()> {
        self.rows += 1;
        writeln!(self.out, "{bucket},{},{version_id}", encode_key(key))
    }

    /// Flushes the file; returns its path and row count.
    pub fn finish(mut self) -> io::Result<(PathBuf, u64)> {
        self.out.flush()?;
        Ok((self.path, self.rows))
    }
}

/// `<replication>__<destination>.csv`, every character but `[A-Za-z0-9._-]` made `_`.
pub fn file_name(replication: &str, destination: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}__{}.csv", safe(replication), safe(destination))
}

/// A key as a manifest row carries it: URL-encoded.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_encoded_and_decode_back() {
        for (key, encoded) in [
            ("logs/2026/a.gz", "logs/2026/a.gz"),
            ("a b,c+d", "a%20b%2Cc%2Bd"),
            ("日本/é", "%E6%97%A5%E6%9C%AC/%C3%A9"),
            ("100%\n", "100%25%0A"),
        ] {
            assert_eq!(encode_key(key), encoded);
            let back = percent_encoding::percent_decode_str(encoded).decode_utf8();
            assert_eq!(back.as_deref().ok(), Some(key));
        }
    }

    #[test]
    fn file_names_are_filesystem_safe() {
        assert_eq!(
            file_name("audit-logs", "dr/tokyo"),
            "audit-logs__dr_tokyo.csv"
        );
        assert_eq!(file_name("../x", "a b"), ".._x__a_b.csv");
    }
}
