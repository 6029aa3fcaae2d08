//! The reader stage: after the destination stage found the replica, each of the
//! destination's readers reads that same replica version as itself — a ranged `GetObject`
//! (`bytes=0-0`: S3 must decrypt to answer any byte) and, only when that fails, a
//! `HeadObject` to tell S3's refusal from KMS's. Readers never change the destination's
//! verdict; their outcomes ride on it (`DestinationVerdict::readers`), and their findings
//! (`diagnose/cache.rs`) join the destination's.
//!
//! What each pair of answers means is one table, [`outcome`], tested as a table.

use crate::aws::{ErrorClass, ObjectStore, SetupReader};
use crate::config::Reader;
use crate::model::{AwsError, DestinationVerdict, ReaderOutcome, ReaderVerdict};

use super::{Prober, WrittenCanary};

/// One reader of a destination and its store (the reader's role, the destination's region).
pub struct ReaderStore<S> {
    pub reader: Reader,
    pub store: S,
}

/// The reader outcome of a ranged GET's answer and, when it failed, the HEAD's; with the
/// reason shown for it. `head` is `None` when no HEAD was made.
pub fn outcome(
    get: Result<(), ErrorClass>,
    head: Option<Result<(), ErrorClass>>,
) -> (ReaderOutcome, &'static str) {
    use ErrorClass as E;
    use ReaderOutcome as R;
    let Err(got) = get else {
        return (R::Ok, "");
    };
    match (got, head) {
        (E::Credentials, _) => (R::CredentialsFailed, "the reader role could not be assumed"),
        (E::Transient, _) => (R::Error, "a transient fault on the reader's GetObject"),
        (E::Archived, _) => (R::Skipped, "the replica is in an archive storage class"),
        (_, None) => (
            R::Error,
            "the reader's GetObject failed and no HeadObject was made",
        ),
        // The HEAD tells S3's refusal from KMS's.
        (_, Some(Err(E::Credentials))) => {
            (R::CredentialsFailed, "the reader role could not be assumed")
        }
        (_, Some(Err(E::Transient))) => (R::Error, "a transient fault on the reader's HeadObject"),
        (_, Some(Err(E::AccessDenied | E::Forbidden))) => (
            R::Unreadable,
            "S3 refuses the reader the replica (HeadObject refused too)",
        ),
        (_, Some(Err(_))) => (
            R::Error,
            "the reader's HeadObject failed: the replica may have changed under the probe",
        ),
        (E::AccessDenied, Some(Ok(()))) => (
            R::Undecryptable,
            "GetObject refused while HeadObject worked: KMS refuses the reader the replica's key",
        ),
        (E::KmsDisabled, Some(Ok(()))) => (R::Undecryptable, "the replica's KMS key is disabled"),
        (E::KmsInvalidState, Some(Ok(()))) => (
            R::Undecryptable,
            "the replica's KMS key is pending deletion (or not usable)",
        ),
        (E::KmsNotFound, Some(Ok(()))) => {
            (R::Undecryptable, "the replica's KMS key does not exist")
        }
        // Another 403 code is S3's own refusal, never KMS's.
        (E::Forbidden, Some(Ok(()))) => (
            R::Unreadable,
            "S3 refuses the reader's GetObject (not an AccessDenied KMS could give)",
        ),
        (_, Some(Ok(()))) => (
            R::Error,
            "the reader's GetObject failed in a way that says nothing about its access",
        ),
    }
}

impl<S: ObjectStore + SetupReader> Prober<S> {
    /// Adds each destination's readers (`readers[i]` for destination `i`) and exports
    /// their outcomes at 0.
    pub fn with_readers(mut self, readers: Vec<Vec<ReaderStore<S>>>) -> Prober<S> {
        for (d, rs) in self.replication.destinations.iter().zip(&readers) {
            let names: Vec<&str> = rs.iter().map(|r| r.reader.name.as_str()).collect();
            self.sinks
                .metrics
                .register_readers(&self.replication.name, &d.name, &names);
        }
        self.readers = readers;
        self
    }

    /// Every reader of destination `i` reads the replica the destination found
    /// (`replica_seen`), or is `skipped`.
    pub(super) async fn read_as_readers(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
        replica_seen: bool,
        verdict: &DestinationVerdict,
    ) -> Vec<ReaderVerdict> {
        let Some(readers) = self.readers.get(i) else {
            return Vec::new();
        };
        let bucket = &self.replication.destinations[i].bucket;
        let version_id = w.version_id.as_deref().unwrap_or_default();
        let archived = verdict.replica.read_skipped;
        let mut out = Vec::with_capacity(readers.len());
        for r in readers {
            let (name, arn) = (&r.reader.name, &r.reader.role.arn);
            if !replica_seen || archived {
                let why = if archived {
                    "the replica is in an archive storage class"
                } else {
                    "no replica to read"
                };
                out.push(ReaderVerdict::new(name, arn, ReaderOutcome::Skipped).with_reason(why));
                continue;
            }
            let get = r
                .store
                .read_first_byte(bucket, &w.canary.key, version_id)
                .await;
            let head = match &get {
                Err(e) if needs_head(e.class) => Some(
                    r.store
                        .head(bucket, &w.canary.key, version_id)
                        .await
                        .map(|_| ()),
                ),
                _ => None,
            };
            let classes = (
                get.as_ref().map_err(|e| e.class).copied(),
                head.as_ref()
                    .map(|h| h.as_ref().map_err(|e| e.class).copied()),
            );
            let (o, reason) = outcome(classes.0, classes.1);
            let error: Option<&AwsError> = match (&get, &head) {
                (Err(_), Some(Err(h))) if o == ReaderOutcome::Unreadable => Some(h),
                (Err(g), _) => Some(g),
                _ => None,
            };
            let mut v = ReaderVerdict::new(name, arn, o).with_error(error);
            v.get_error = classes.0.err();
            if !reason.is_empty() {
                v = v.with_reason(reason);
            }
            out.push(v);
        }
        out
    }

    /// Readers of the destinations the probe ended before reaching: `skipped`.
    pub(super) fn skip_unread(&self, verdicts: &mut [DestinationVerdict]) {
        for (v, readers) in verdicts.iter_mut().zip(&self.readers) {
            if v.readers.is_empty() {
                v.readers = readers
                    .iter()
                    .map(|r| {
                        ReaderVerdict::new(
                            &r.reader.name,
                            &r.reader.role.arn,
                            ReaderOutcome::Skipped,
                        )
                        .with_reason("no replica to read")
                    })
                    .collect();
            }
        }
    }
}

/// Whether a failed GET needs the HEAD to be understood.
fn needs_head(class: ErrorClass) -> bool {
    !matches!(
        class,
        ErrorClass::Credentials | ErrorClass::Transient | ErrorClass::Archived
    )
}

#[cfg(test)]
mod tests;
