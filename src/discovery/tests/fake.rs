//! An in-memory estate behind [`EstateReader`]: accounts, their buckets (owner, region,
//! tags, rules, default encryption), which probe roles exist, scripted failures, and a
//! record of every call. It answers as S3 does for what discovery reads: a bucket read
//! by a role of another account is refused, `HeadBucket` with the wrong expected owner is
//! 403, a missing bucket is 404, a request in the wrong region is told the right one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::aws::{
    AwsError, BucketHome, BucketPage, DefaultEncryption, ErrorClass, EstateReader, ListedBucket,
    ReplicationSetup, RuleSetup,
};
use crate::discovery::Readers;
use crate::model::Side;
use crate::testing::err;

pub const REGION: &str = "ap-northeast-1";

#[derive(Debug, Clone)]
pub struct Bucket {
    pub owner: String,
    pub region: String,
    pub tags: Option<Vec<(String, String)>>,
    pub rules: Option<Vec<RuleSetup>>,
    pub encryption: DefaultEncryption,
}

/// The estate. Mutate it between passes (through `Arc<Mutex<…>>`) to tag, untag, fail.
#[derive(Debug, Default)]
pub struct World {
    pub buckets: BTreeMap<String, Bucket>,
    /// (side, account) of every probe role that can be assumed.
    pub roles: HashSet<(Side, String)>,
    /// `"<operation>:<bucket or account>"` → the error that call answers.
    pub faults: HashMap<String, AwsError>,
    pub page_size: usize,
    /// `"<side>:<account>:<operation>:<bucket or region>"` of every call.
    pub calls: Vec<String>,
}

pub type Shared = Arc<Mutex<World>>;

pub fn lock(w: &Shared) -> std::sync::MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    pub fn new() -> World {
        World {
            page_size: 1000,
            ..World::default()
        }
    }

    pub fn role(mut self, side: Side, account: &str) -> World {
        self.roles.insert((side, account.to_owned()));
        self
    }

    /// A bucket of `owner` in the lab's region, SSE-KMS by default under `key`.
    pub fn bucket(
        &mut self,
        name: &str,
        owner: &str,
        tags: &[(&str, &str)],
        rules: Option<Vec<RuleSetup>>,
    ) -> &mut Bucket {
        let tags = (!tags.is_empty()).then(|| {
            tags.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        });
        self.buckets.insert(
            name.to_owned(),
            Bucket {
                owner: owner.to_owned(),
                region: REGION.to_owned(),
                tags,
                rules,
                encryption: DefaultEncryption {
                    algorithm: "aws:kms".to_owned(),
                    kms_key_id: Some(key(owner, name)),
                },
            },
        );
        self.buckets.get_mut(name).expect("just inserted")
    }

    pub fn count(&self, operation: &str) -> usize {
        self.calls
            .iter()
            .filter(|c| c.split(':').nth(2) == Some(operation))
            .count()
    }

    /// The calls that named `bucket`.
    pub fn calls_on(&self, bucket: &str) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| c.rsplit(':').next() == Some(bucket))
            .cloned()
            .collect()
    }
}

/// The default key of bucket `name` of `owner` (a stable fake key ARN).
pub fn key(owner: &str, name: &str) -> String {
    let id = format!(
        "{:08x}",
        name.bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
    );
    format!("arn:aws:kms:{REGION}:{owner}:key/{id}-0000-0000-0000-000000000000")
}

/// The article's rule to `dest` (in `account`, named by the rule unless `None`).
pub fn rule(id: &str, dest: &str, account: Option<&str>) -> RuleSetup {
    RuleSetup {
        id: id.to_owned(),
        enabled: true,
        priority: 1,
        destination_bucket: format!("arn:aws:s3:::{dest}"),
        destination_account: account.map(str::to_owned),
        selects_sse_kms: true,
        owner_override: account.is_some(),
        ..RuleSetup::default()
    }
}

/// Readers over a shared world.
pub struct FakeReaders(pub Shared);

pub struct FakeReader {
    world: Shared,
    side: Side,
    account: String,
    region: String,
}

impl Readers for FakeReaders {
    type Reader = FakeReader;
    async fn source(&self, account: &str, region: &str) -> FakeReader {
        self.reader(Side::Source, account, region)
    }
    async fn destination(&self, account: &str, region: &str) -> FakeReader {
        self.reader(Side::Destination, account, region)
    }
}

impl FakeReaders {
    fn reader(&self, side: Side, account: &str, region: &str) -> FakeReader {
        FakeReader {
            world: self.0.clone(),
            side,
            account: account.to_owned(),
            region: region.to_owned(),
        }
    }
}

impl FakeReader {
    /// Records the call and answers the scripted fault or a refused role, if any.
    fn call(&self, operation: &'static str, subject: &str) -> Result<(), AwsError> {
        let mut w = lock(&self.world);
        w.calls.push(format!(
            "{}:{}:{operation}:{subject}",
            self.side.as_str(),
            self.account
        ));
        if !w.roles.contains(&(self.side, self.account.clone())) {
            return Err(AwsError {
                code: Some("credentials".to_owned()),
                ..AwsError::new(operation, ErrorClass::Credentials)
            });
        }
        match w.faults.get(&format!("{operation}:{subject}")) {
            Some(e) => Err(AwsError {
                operation,
                ..e.clone()
            }),
            None => Ok(()),
        }
    }

    /// A bucket of this account (S3 refuses another account's bucket without a policy).
    fn own(&self, operation: &'static str, bucket: &str) -> Result<Bucket, AwsError> {
        self.call(operation, bucket)?;
        let w = lock(&self.world);
        match w.buckets.get(bucket) {
            None => Err(err(ErrorClass::NotFound, 404, "NoSuchBucket")),
            Some(b) if b.owner != self.account => {
                Err(err(ErrorClass::AccessDenied, 403, "AccessDenied"))
            }
            Some(b) => Ok(b.clone()),
        }
    }
}

impl EstateReader for FakeReader {
    async fn list_buckets(
        &self,
        region: &str,
        token: Option<&str>,
    ) -> Result<BucketPage, AwsError> {
        self.call("ListBuckets", &self.account)?;
        let w = lock(&self.world);
        let mine: Vec<ListedBucket> = w
            .buckets
            .iter()
            .filter(|(_, b)| b.owner == self.account && b.region == region)
            .map(|(n, b)| ListedBucket {
                name: n.clone(),
                region: Some(b.region.clone()),
            })
            .collect();
        let start: usize = token
            .and_then(|t| t.strip_prefix("opaque-")?.parse().ok())
            .unwrap_or(0);
        let end = (start + w.page_size).min(mine.len());
        Ok(BucketPage {
            buckets: mine[start.min(end)..end].to_vec(),
            continuation: (end < mine.len()).then(|| format!("opaque-{end}")),
        })
    }

    async fn bucket_tags(&self, bucket: &str) -> Result<Option<Vec<(String, String)>>, AwsError> {
        Ok(self.own("GetBucketTagging", bucket)?.tags)
    }

    async fn replication_rules(&self, bucket: &str) -> Result<Option<ReplicationSetup>, AwsError> {
        Ok(self
            .own("GetBucketReplication", bucket)?
            .rules
            .map(|rules| ReplicationSetup {
                role: "arn:aws:iam::111111111111:role/replication".to_owned(),
                rules,
            }))
    }

    async fn bucket_home(&self, bucket: &str, owner: &str) -> Result<BucketHome, AwsError> {
        self.call("HeadBucket", bucket)?;
        let w = lock(&self.world);
        let Some(b) = w.buckets.get(bucket) else {
            return Err(err(ErrorClass::NotFound, 404, "NotFound"));
        };
        if b.region != self.region {
            return Ok(BucketHome::ElsewhereIn(b.region.clone()));
        }
        if b.owner != owner || owner != self.account {
            return Err(err(ErrorClass::AccessDenied, 403, "AccessDenied"));
        }
        Ok(BucketHome::Owned {
            region: Some(b.region.clone()),
        })
    }

    async fn default_encryption(&self, bucket: &str) -> Result<DefaultEncryption, AwsError> {
        Ok(self.own("GetBucketEncryption", bucket)?.encryption)
    }
}
