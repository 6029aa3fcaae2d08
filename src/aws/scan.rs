//! The reads of `replicanary scan`, and nothing else: a listing of current versions, a
//! `HeadObject`, a one-byte ranged `GetObject`. The scan sees only [`ScanReader`], so it
//! cannot write or delete whatever it is handed.

use std::future::Future;
use std::time::SystemTime;

use super::s3::S3Store;
use super::{AwsError, ObjectHead, ObjectStore, VersionEntry};

/// One page of `ListObjectVersions`, current versions only (delete markers and older
/// versions left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentPage {
    pub current: Vec<VersionEntry>,
    /// Where the next page starts (key marker, version id marker); `None` on the last page.
    pub next: Option<(String, Option<String>)>,
}

/// Read-only object access of one side (one role, one region). Implementations count
/// every call.
pub trait ScanReader: Send + Sync {
    /// One page of `ListObjectVersions` under `prefix`, from `(key marker, version id marker)`
    /// (a key marker alone starts after that key).
    fn current_page(
        &self,
        bucket: &str,
        prefix: &str,
        from: Option<&(String, Option<String>)>,
    ) -> impl Future<Output = Result<CurrentPage, AwsError>> + Send;

    /// `HeadObject` of one version.
    fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<ObjectHead, AwsError>> + Send;

    /// `GetObject` of one version with `Range: bytes=0-0` (the whole of an empty object),
    /// reading at most one byte: proves that S3 and KMS let the caller decrypt it.
    fn read_first_byte(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        empty: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

impl ScanReader for S3Store {
    async fn current_page(
        &self,
        bucket: &str,
        prefix: &str,
        from: Option<&(String, Option<String>)>,
    ) -> Result<CurrentPage, AwsError> {
        let call = self
            .client()
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(from.map(|(k, _)| k.clone()))
            .set_version_id_marker(from.and_then(|(_, v)| v.clone()));
        let out = self.done("ListObjectVersions", call.send().await)?;
        let current = out
            .versions()
            .iter()
            .filter(|v| v.is_latest() == Some(true))
            .filter_map(|v| {
                Some(VersionEntry {
                    key: v.key()?.to_owned(),
                    version_id: v.version_id()?.to_owned(),
                    last_modified: v
                        .last_modified()
                        .and_then(|t| SystemTime::try_from(*t).ok()),
                })
            })
            .collect();
        let next = match (out.is_truncated(), out.next_key_marker()) {
            (Some(true), Some(k)) => Some((
                k.to_owned(),
                out.next_version_id_marker().map(str::to_owned),
            )),
            _ => None,
        };
        Ok(CurrentPage { current, next })
    }

    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<ObjectHead, AwsError> {
        ObjectStore::head(self, bucket, key, version_id).await
    }

    async fn read_first_byte(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        empty: bool,
    ) -> Result<(), AwsError> {
        let mut call = self
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(version_id);
        if !empty {
            // A range on an empty object is refused (416 InvalidRange).
            call = call.range("bytes=0-0");
        }
        let out = self.done("GetObject", call.send().await)?;
        // The body (one byte) is dropped unread: the answer's status is the proof.
        drop(out.body);
        Ok(())
    }
}
