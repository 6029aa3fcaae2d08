//! What diagnosis knows of a replication's setup: each read through the probe roles, with
//! "the bucket has none" and "we may not look" told apart.

use crate::aws::{
    AwsError, DefaultEncryption, DefaultRetention, ErrorClass, ReplicationSetup, SetupReader,
};

/// The answer to one read: the value (`None`: the bucket has none), or why it is unknown.
pub type Read<T> = Result<Option<T>, Unknown>;

/// Why a piece of setup is unknown.
#[derive(Debug, Clone, PartialEq)]
pub enum Unknown {
    /// The probe role may not read it: a `cannot_inspect:<operation>` finding.
    Denied(&'static str),
    /// A transient or unexpected failure: no finding, try again next time.
    Failed(&'static str),
}

impl Unknown {
    pub fn from_error(e: &AwsError) -> Unknown {
        match e.class {
            ErrorClass::AccessDenied | ErrorClass::Forbidden => Unknown::Denied(e.operation),
            _ => Unknown::Failed(e.operation),
        }
    }
}

/// A read whose "not found" means "the bucket has none".
pub fn absent_is_none<T>(r: Result<T, AwsError>) -> Read<T> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(Unknown::from_error(&e)),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceSetup {
    pub replication: Read<ReplicationSetup>,
    /// `Enabled` or `Suspended`; `None`: versioning never enabled.
    pub versioning: Read<String>,
    pub encryption: Read<DefaultEncryption>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationSetup {
    pub versioning: Read<String>,
    pub encryption: Read<DefaultEncryption>,
    pub policy: Read<String>,
    /// Object Ownership; `None`: the bucket has no ownership controls (`ObjectWriter`
    /// semantics).
    pub ownership: Read<String>,
    /// Object Lock default retention; `None`: no Object Lock, or no default retention.
    pub retention: Read<DefaultRetention>,
}

pub async fn read_source<R: SetupReader>(r: &R, bucket: &str) -> SourceSetup {
    let (replication, versioning, encryption) = tokio::join!(
        r.replication(bucket),
        r.versioning(bucket),
        r.encryption(bucket)
    );
    SourceSetup {
        replication: absent_is_none(replication),
        versioning: absent_is_none(versioning).map(Option::flatten),
        encryption: absent_is_none(encryption),
    }
}

pub async fn read_destination<R: SetupReader>(r: &R, bucket: &str) -> DestinationSetup {
    let (versioning, encryption, policy, ownership, retention) = tokio::join!(
        r.versioning(bucket),
        r.encryption(bucket),
        r.policy(bucket),
        r.ownership(bucket),
        r.object_lock(bucket)
    );
    DestinationSetup {
        versioning: absent_is_none(versioning).map(Option::flatten),
        encryption: absent_is_none(encryption),
        policy: absent_is_none(policy),
        ownership: absent_is_none(ownership),
        retention: absent_is_none(retention).map(Option::flatten),
    }
}
