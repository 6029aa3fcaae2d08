//! The reader table, row by row.

use super::outcome;
use crate::aws::ErrorClass as E;
use crate::model::ReaderOutcome as R;

#[test]
fn the_reader_table() {
    let rows: &[(Result<(), E>, Option<Result<(), E>>, R)] = &[
        (Ok(()), None, R::Ok),
        (Err(E::Credentials), None, R::CredentialsFailed),
        (Err(E::Transient), None, R::Error),
        (Err(E::Archived), None, R::Skipped),
        // GET refused, HEAD worked: KMS's refusal.
        (Err(E::AccessDenied), Some(Ok(())), R::Undecryptable),
        (Err(E::KmsDisabled), Some(Ok(())), R::Undecryptable),
        (Err(E::KmsInvalidState), Some(Ok(())), R::Undecryptable),
        (Err(E::KmsNotFound), Some(Ok(())), R::Undecryptable),
        // Another 403 code is never KMS's.
        (Err(E::Forbidden), Some(Ok(())), R::Unreadable),
        // GET and HEAD refused: S3's refusal.
        (Err(E::AccessDenied), Some(Err(E::AccessDenied)), R::Unreadable),
        (Err(E::AccessDenied), Some(Err(E::Forbidden)), R::Unreadable),
        (Err(E::Forbidden), Some(Err(E::AccessDenied)), R::Unreadable),
        // A transient fault on the HEAD concludes nothing.
        (Err(E::AccessDenied), Some(Err(E::Transient)), R::Error),
        (Err(E::AccessDenied), Some(Err(E::Credentials)), R::CredentialsFailed),
        (Err(E::NotFound), Some(Err(E::NotFound)), R::Error),
        (Err(E::Other), Some(Ok(())), R::Error),
        (Err(E::AccessDenied), None, R::Error),
    ];
    for (get, head, want) in rows {
        let (got, reason) = outcome(*get, *head);
        assert_eq!(got, *want, "GET {get:?}, HEAD {head:?}");
        assert_eq!(reason.is_empty(), got == R::Ok, "a reason unless ok: {get:?} {head:?}");
    }
}
