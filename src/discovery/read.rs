//! One discovery pass against AWS, through [`EstateReader`]s.
//!
//! First every account and region is read — buckets, tags, rules of opted-in buckets —
//! then each planned rule's destination is resolved, with the accounts every rule named
//! now known. Reads of one account and region run a few at a time ([`CONCURRENCY`]);
//! destinations are resolved once per pass however many rules point at them.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use tokio::sync::OnceCell;

use super::coverage;
use super::rules::{self, Planned};
use super::{
    AccountFrom, Found, FoundDestination, Hints, KeyFrom, Pass, Scope, Skip, SkipReason, Unprobed,
};
use crate::aws::{AwsError, BucketHome, ErrorClass, EstateReader, ReplicationSetup};
use crate::config::{Discovery, KmsKeyArn, is_region};

/// Reads in flight at once per account and region (and destinations resolved at once).
pub const CONCURRENCY: usize = 8;
/// A `ListBuckets` that keeps answering with continuation tokens stops after this many pages.
const MAX_PAGES: usize = 1000;

/// Where discovery gets an [`EstateReader`]: one per account, region and side.
pub trait Readers: Sync {
    type Reader: EstateReader;
    /// As the source role of `account`, in `region`.
    fn source(&self, account: &str, region: &str) -> impl Future<Output = Self::Reader> + Send;
    /// As the destination role of `account`, in `region`.
    fn destination(&self, account: &str, region: &str)
    -> impl Future<Output = Self::Reader> + Send;
}

/// How far a pass got, for people watching a long run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// `ListBuckets` named this many buckets in the account and region.
    Listed {
        account: &'a str,
        region: &'a str,
        buckets: usize,
    },
    /// Tags (and rules) of `done` of the `of` buckets are read.
    Read {
        account: &'a str,
        region: &'a str,
        done: usize,
        of: usize,
    },
}

/// A bucket as the first phase read it.
enum BucketRead {
    Rules(ReplicationSetup),
    Skip(SkipReason, String),
    /// Not opted in (why), and its rules as coverage read them (`discovery.coverage`).
    NotOptedIn(String, ReplicationSetup),
    /// Not opted in, and coverage could not read its rules: the read's error and why.
    CoverageFailed(SkipReason, String),
}

/// Runs one pass over every configured account and region.
pub async fn discover<R: Readers>(
    readers: &R,
    d: &Discovery,
    canary_prefix: &str,
    hints: &Hints,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Pass {
    let started = Instant::now();
    let mut read = Vec::new();
    for account in &d.source_accounts {
        for region in &d.regions {
            read.push(read_scope(readers, account, region, d, progress).await);
        }
    }
    // Accounts a destination may belong to: the source accounts, then every account a
    // rule names.
    let mut known: Vec<String> = d.source_accounts.clone();
    let named: BTreeSet<&String> = read
        .iter()
        .flat_map(|(_, buckets)| buckets)
        .flat_map(|(_, setup)| &setup.rules)
        .filter_map(|r| r.destination_account.as_ref())
        .collect();
    known.extend(
        named
            .into_iter()
            .filter(|a| !d.source_accounts.contains(a))
            .cloned(),
    );
    let resolver = Resolver {
        readers,
        d,
        known,
        hints,
        cache: Mutex::new(HashMap::new()),
    };
    let mut scopes = Vec::new();
    for (scope, buckets) in read {
        scopes.push(resolver.plan_scope(scope, buckets, canary_prefix).await);
    }
    Pass {
        scopes,
        took: started.elapsed(),
        coverage: d.coverage,
    }
}

/// Phase one in one account and region: the buckets, and the rules of the opted-in ones.
async fn read_scope<R: Readers>(
    readers: &R,
    account: &str,
    region: &str,
    d: &Discovery,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> (Scope, Vec<(String, ReplicationSetup)>) {
    let mut scope = Scope {
        account: account.to_owned(),
        region: region.to_owned(),
        listed: None,
        found: Vec::new(),
        skips: Vec::new(),
        kept_buckets: BTreeSet::new(),
        unmonitored: Vec::new(),
        coverage_kept: BTreeSet::new(),
    };
    let reader = readers.source(account, region).await;
    let buckets = match list_all(&reader, region).await {
        Ok(b) => b,
        Err(e) => {
            let reason = SkipReason::of_source_read(&e);
            scope.skips.push(scope.skip(
                "",
                None,
                reason,
                format!("cannot list the buckets: {}", brief(&e)),
            ));
            return (scope, Vec::new());
        }
    };
    scope.listed = Some(buckets.len());
    progress(Progress::Listed {
        account,
        region,
        buckets: buckets.len(),
    });
    // Owned items: a future spawned on the runtime cannot take a borrowed closure argument.
    let mut reads = stream::iter(buckets.iter().cloned())
        .map(|b| read_bucket(&reader, b, &d.bucket_tag, d.coverage))
        .buffered(CONCURRENCY);
    let mut opted = Vec::new();
    let mut done: usize = 0;
    while let Some((bucket, read)) = reads.next().await {
        done += 1;
        if done.is_multiple_of(250) {
            progress(Progress::Read {
                account,
                region,
                done,
                of: buckets.len(),
            });
        }
        match read {
            BucketRead::Rules(setup) => opted.push((bucket, setup)),
            BucketRead::NotOptedIn(why, setup) => {
                let found = coverage::of_bucket(account, region, &bucket, &setup.rules);
                scope.unmonitored.extend(found);
                scope
                    .skips
                    .push(scope.skip(&bucket, None, SkipReason::Untagged, why));
            }
            BucketRead::CoverageFailed(reason, detail) => {
                // Only the coverage of this bucket is undecided: it was not opted in.
                scope.coverage_kept.insert(bucket.clone());
                scope.skips.push(scope.skip(&bucket, None, reason, detail));
            }
            BucketRead::Skip(reason, detail) => {
                if reason.keeps_previous() {
                    scope.kept_buckets.insert(bucket.clone());
                    scope.coverage_kept.insert(bucket.clone());
                }
                scope.skips.push(scope.skip(&bucket, None, reason, detail));
            }
        }
    }
    (scope, opted)
}

/// Every bucket of the account in `region`, page by page.
async fn list_all<E: EstateReader>(reader: &E, region: &str) -> Result<Vec<String>, AwsError> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = reader.list_buckets(region, token.as_deref()).await?;
        // S3 filters by region already; a bucket it says is elsewhere is not ours to read here.
        names.extend(
            page.buckets
                .into_iter()
                .filter(|b| b.region.as_deref().is_none_or(|r| r == region))
                .map(|b| b.name),
        );
        match page.continuation {
            Some(next) if Some(&next) != token.as_ref() => token = Some(next),
            _ => return Ok(names),
        }
    }
    tracing::warn!(
        region,
        pages = MAX_PAGES,
        "ListBuckets kept continuing; the rest is not read"
    );
    Ok(names)
}

/// A bucket's opt-in tag and, when it carries it, its replication rules.
async fn read_bucket<E: EstateReader>(
    reader: &E,
    bucket: String,
    tag: &crate::config::BucketTag,
    coverage: bool,
) -> (String, BucketRead) {
    let tags = match reader.bucket_tags(&bucket).await {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => {
            let why = format!("cannot read the bucket's tags: {}", brief(&e));
            return (
                bucket,
                BucketRead::Skip(SkipReason::of_source_read(&e), why),
            );
        }
    };
    let untagged = match tags.iter().find(|(k, _)| *k == tag.key) {
        Some((_, v)) if *v == tag.value => None,
        Some((k, v)) => Some(format!("tagged {k}={v}, not {}", tag.value)),
        None => Some(format!("no tag {}", tag.key)),
    };
    if let Some(why) = untagged {
        let read = if coverage {
            coverage_read(reader, &bucket, why).await
        } else {
            BucketRead::Skip(SkipReason::Untagged, why)
        };
        return (bucket, read);
    }
    let read = match reader.replication_rules(&bucket).await {
        Ok(Some(setup)) => BucketRead::Rules(setup),
        Ok(None) => BucketRead::Skip(
            SkipReason::NoReplicationConfiguration,
            "opted in, but the bucket has no replication configuration".to_owned(),
        ),
        Err(e) => BucketRead::Skip(
            SkipReason::of_source_read(&e),
            format!("cannot read the replication configuration: {}", brief(&e)),
        ),
    };
    (bucket, read)
}

/// The rules of a bucket that did not opt in (coverage): read-only, never probed.
async fn coverage_read<E: EstateReader>(reader: &E, bucket: &str, why: String) -> BucketRead {
    match reader.replication_rules(bucket).await {
        Ok(Some(setup)) => BucketRead::NotOptedIn(why, setup),
        Ok(None) => BucketRead::Skip(SkipReason::Untagged, why),
        Err(e) => BucketRead::CoverageFailed(
            SkipReason::of_source_read(&e),
            format!(
                "not opted in ({why}); coverage cannot read its replication configuration: {}",
                brief(&e)
            ),
        ),
    }
}

impl Scope {
    fn skip(
        &self,
        bucket: &str,
        rule_id: Option<String>,
        reason: SkipReason,
        detail: String,
    ) -> Skip {
        Skip {
            source_account: self.account.clone(),
            region: self.region.clone(),
            bucket: bucket.to_owned(),
            rule_id,
            reason,
            detail,
        }
    }
}

/// A destination as resolved once per pass, or why it cannot be probed.
type Resolved = Result<FoundDestination, Unprobed>;
/// (destination bucket, the rule's account, source account, source region).
type CacheKey = (String, Option<String>, String, String);

/// Phase two: destinations, resolved once each.
struct Resolver<'a, R: Readers> {
    readers: &'a R,
    d: &'a Discovery,
    known: Vec<String>,
    hints: &'a Hints,
    cache: Mutex<HashMap<CacheKey, Arc<OnceCell<Resolved>>>>,
}

impl<R: Readers> Resolver<'_, R> {
    /// The scope's replications: each opted-in bucket's rules planned, destinations resolved.
    async fn plan_scope(
        &self,
        mut scope: Scope,
        buckets: Vec<(String, ReplicationSetup)>,
        canary_prefix: &str,
    ) -> Scope {
        let mut planned = Vec::new();
        for (bucket, setup) in &buckets {
            let (rules, skips) = rules::plan(bucket, &setup.rules, canary_prefix);
            for s in &skips {
                let Some(rule) = setup.rules.get(s.index) else {
                    continue;
                };
                if rule.enabled && coverage::unmonitored_reason(s.reason) && self.d.coverage {
                    let (account, region) = (&scope.account, &scope.region);
                    let r = coverage::of_rule(account, region, bucket, rule, s.reason);
                    scope.unmonitored.push(r);
                }
            }
            for s in skips {
                scope
                    .skips
                    .push(scope.skip(bucket, s.rule_id, s.reason, s.detail));
            }
            planned.extend(rules.into_iter().map(|p| (bucket.as_str(), p)));
        }
        let (account, region) = (scope.account.clone(), scope.region.clone());
        let mut resolved = stream::iter(0..planned.len())
            .map(|i| self.destination(&planned[i].1, &account, &region))
            .buffered(CONCURRENCY);
        let mut i = 0;
        while let Some(dest) = resolved.next().await {
            let (bucket, p) = &planned[i];
            i += 1;
            match dest {
                Ok(destination) => scope.found.push(self.found(&scope, bucket, p, destination)),
                Err(Unprobed { reason, detail }) => {
                    if reason.keeps_previous() {
                        scope.kept_buckets.insert((*bucket).to_owned());
                    }
                    let rule_id = Some(p.rule_id.clone());
                    scope
                        .skips
                        .push(scope.skip(bucket, rule_id, reason, detail));
                }
            }
        }
        scope
    }

    fn found(
        &self,
        scope: &Scope,
        bucket: &str,
        p: &Planned,
        destination: FoundDestination,
    ) -> Found {
        Found {
            name: p.name.clone(),
            source_account: scope.account.clone(),
            region: scope.region.clone(),
            bucket: bucket.to_owned(),
            source_role: self
                .d
                .source_role
                .role(&scope.account, self.d.external_id.as_deref()),
            rule_id: p.rule_id.clone(),
            priority: p.priority,
            placement: p.placement.clone(),
            source_fans_out: p.source_fans_out,
            destination,
        }
    }

    /// The planned rule's destination, resolved once per pass.
    async fn destination(&self, p: &Planned, source_account: &str, region: &str) -> Resolved {
        let key = (
            p.destination_bucket.clone(),
            p.destination_account.clone(),
            source_account.to_owned(),
            region.to_owned(),
        );
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.entry(key).or_default().clone()
        };
        cell.get_or_init(|| self.resolve(p, source_account, region))
            .await
            .clone()
    }

    async fn resolve(&self, p: &Planned, source_account: &str, source_region: &str) -> Resolved {
        let bucket = &p.destination_bucket;
        let (account, account_from, region) = match &p.destination_account {
            Some(a) => {
                let region = self
                    .home(a, bucket, source_region)
                    .await
                    .map_err(|e| home_refused(a, bucket, &e))?;
                (a.clone(), AccountFrom::Rule, region)
            }
            None => self.owner(bucket, source_account, source_region).await?,
        };
        let (expected_kms_key, key_from) = self.expected_key(bucket, &account, &region).await?;
        let readers = self.d.readers.iter().map(|r| r.reader(&account)).collect();
        Ok(FoundDestination {
            bucket: bucket.clone(),
            readers,
            role: self
                .d
                .destination_role
                .role(&account, self.d.external_id.as_deref()),
            account,
            account_from,
            region,
            expected_kms_key,
            key_from,
        })
    }

    /// The bucket's region if `account` owns it (asked as `account`'s destination role).
    async fn home(&self, account: &str, bucket: &str, region: &str) -> Result<String, AwsError> {
        let reader = self.readers.destination(account, region).await;
        let there = match reader.bucket_home(bucket, account).await? {
            BucketHome::Owned { region: r } => {
                return checked_region(r.as_deref().unwrap_or(region));
            }
            BucketHome::ElsewhereIn(other) => checked_region(&other)?,
        };
        let reader = self.readers.destination(account, &there).await;
        match reader.bucket_home(bucket, account).await? {
            BucketHome::Owned { region: r } => checked_region(r.as_deref().unwrap_or(&there)),
            BucketHome::ElsewhereIn(_) => Err(AwsError {
                message: Some("S3 sent the request to another region twice".to_owned()),
                ..AwsError::new("HeadBucket", ErrorClass::Other)
            }),
        }
    }

    /// The destination's account when the rule does not say: the first configured account
    /// (the source account first) whose destination role sees it owns the bucket.
    async fn owner(
        &self,
        bucket: &str,
        source_account: &str,
        region: &str,
    ) -> Result<(String, AccountFrom, String), Unprobed> {
        // The owner found last time first, then the source account, then the others.
        let hint = self.hints.owners.get(bucket).map(String::as_str);
        let mut candidates: Vec<&str> = hint.into_iter().collect();
        for a in std::iter::once(source_account).chain(self.known.iter().map(String::as_str)) {
            if !candidates.contains(&a) {
                candidates.push(a);
            }
        }
        let mut asked = Vec::new();
        for account in candidates {
            match self.home(account, bucket, region).await {
                Ok(r) => return Ok((account.to_owned(), AccountFrom::BucketOwner, r)),
                Err(e) if e.class == ErrorClass::NotFound => {
                    return Err(Unprobed::new(
                        SkipReason::Error,
                        format!("there is no bucket {bucket} (HeadBucket: 404)"),
                    ));
                }
                Err(e) if e.class == ErrorClass::Transient => {
                    return Err(Unprobed::new(
                        SkipReason::Throttled,
                        format!("cannot tell who owns {bucket}: {}", brief(&e)),
                    ));
                }
                Err(_) => asked.push(account),
            }
        }
        Err(Unprobed::new(
            SkipReason::DestinationAccountUnknown,
            format!(
                "the rule names no Destination.Account and none of the accounts {} owns {bucket} as their destination role sees it",
                asked.join(", ")
            ),
        ))
    }

    /// The key replicas must be under: the override, else the bucket's default SSE-KMS key.
    async fn expected_key(
        &self,
        bucket: &str,
        account: &str,
        region: &str,
    ) -> Result<(Option<KmsKeyArn>, KeyFrom), Unprobed> {
        if let Some(k) = self.d.expected_kms_keys.get(bucket) {
            return Ok((Some(k.clone()), KeyFrom::Override));
        }
        let reader = self.readers.destination(account, region).await;
        let enc = match reader.default_encryption(bucket).await {
            Ok(enc) => enc,
            Err(e) if matches!(e.class, ErrorClass::Transient | ErrorClass::Credentials) => {
                let reason = SkipReason::of_destination_read(&e);
                return Err(Unprobed::new(
                    reason,
                    format!("cannot read {bucket}'s default encryption: {}", brief(&e)),
                ));
            }
            Err(e) => {
                let why = format!("its default encryption could not be read ({})", brief(&e));
                return Ok((None, KeyFrom::Unknown(why)));
            }
        };
        if !enc.algorithm.starts_with("aws:kms") {
            let why = format!("its default encryption is {}, not SSE-KMS", enc.algorithm);
            return Ok((None, KeyFrom::Unknown(why)));
        }
        let partition = self.d.destination_role.arn(account);
        let partition = partition.split(':').nth(1).unwrap_or("aws");
        match enc
            .kms_key_id
            .as_deref()
            .map(|k| key_arn(k, partition, region, account))
        {
            Some(Some(k)) => Ok((Some(k), KeyFrom::DefaultEncryption)),
            Some(None) => Ok((
                None,
                KeyFrom::Unknown(format!(
                    "its default key is named by an alias ({}), not a key ARN",
                    enc.kms_key_id.unwrap_or_default()
                )),
            )),
            None => Ok((
                None,
                KeyFrom::Unknown(
                    "its default encryption is SSE-KMS with the AWS managed key (aws/s3)"
                        .to_owned(),
                ),
            )),
        }
    }
}

/// Why a destination the rule names an account for cannot be used.
fn home_refused(account: &str, bucket: &str, e: &AwsError) -> Unprobed {
    match e.class {
        ErrorClass::Credentials => Unprobed::new(
            SkipReason::DestinationRoleUnavailable,
            format!(
                "cannot act as the destination probe role of {account}: {}",
                brief(e)
            ),
        ),
        ErrorClass::NotFound => Unprobed::new(
            SkipReason::Error,
            format!("there is no bucket {bucket} (HeadBucket: 404)"),
        ),
        ErrorClass::AccessDenied | ErrorClass::Forbidden => Unprobed::new(
            SkipReason::AccessDenied,
            format!(
                "HeadBucket of {bucket} as the destination role of {account} was refused: another account owns it, or the role may not s3:ListBucket it"
            ),
        ),
        _ => Unprobed::new(
            SkipReason::of_destination_read(e),
            format!(
                "cannot read {bucket} as the destination role of {account}: {}",
                brief(e)
            ),
        ),
    }
}

fn checked_region(r: &str) -> Result<String, AwsError> {
    if is_region(r) {
        Ok(r.to_owned())
    } else {
        Err(AwsError {
            message: Some(format!("S3 named `{r}` as the bucket's region")),
            ..AwsError::new("HeadBucket", ErrorClass::Other)
        })
    }
}

/// A default key as S3 reports replica keys (an ARN); `None` for an alias.
pub fn key_arn(id: &str, partition: &str, region: &str, account: &str) -> Option<KmsKeyArn> {
    if id.starts_with("arn:") {
        return KmsKeyArn::parse(id).ok();
    }
    if id.starts_with("alias/") {
        return None;
    }
    KmsKeyArn::parse(&format!("arn:{partition}:kms:{region}:{account}:key/{id}")).ok()
}

/// An error in one short line: S3's code and message, or for a role that cannot be
/// assumed, STS's refusal without the SDK's layers of wrapping.
fn brief(e: &AwsError) -> String {
    const MAX: usize = 240;
    let text = match (e.class, e.message.as_deref()) {
        (ErrorClass::Credentials, Some(m)) => {
            format!("AssumeRole refused: {}", e.refusal.as_deref().unwrap_or(m))
        }
        _ => e.to_string(),
    };
    if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text
    }
}
