//! The one in-memory stand-in for AWS that unit tests use: a bucket of object versions
//! behind the seam's traits, whose answers can also be scripted and whose failures can be
//! injected. It records every call and every delete.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::aws::{
    AwsError, DefaultEncryption, DefaultRetention, ErrorClass, GotObject, ObjectHead, ObjectStore,
    PutRequest, ReplicationSetup, SetupReader, VersionEntry,
};

/// Object tags, as a PutObject carries them.
pub type Tags = Vec<(String, String)>;

/// The body the source stored, shared so that a destination can serve "the replica".
pub type SharedBody = Arc<Mutex<Vec<u8>>>;

/// One object version in the bucket.
#[derive(Debug, Clone)]
pub struct Obj {
    pub key: String,
    pub version_id: String,
    /// Seconds since it was written (`None`: the listing shows no date).
    pub age: Option<u64>,
    pub metadata: HashMap<String, String>,
}

/// An in-memory bucket. HEAD answers come from the scripted queue first (the last answer
/// repeats), else from `objects`; the listing returns every object whatever the prefix
/// (a lying listing, for the deletion rule's tests).
#[derive(Default)]
pub struct MemStore {
    pub now: Option<SystemTime>,
    pub objects: Vec<Obj>,
    heads: Mutex<VecDeque<Result<ObjectHead, AwsError>>>,
    put: Mutex<Option<Result<Option<String>, AwsError>>>,
    get: Mutex<Option<Result<Vec<u8>, AwsError>>>,
    /// A scripted listing: these version ids of whatever key (prefix) is listed.
    listing: Option<Result<Vec<String>, AwsError>>,
    body: SharedBody,
    /// Indexes into `objects` whose HEAD fails transiently.
    fail_head: HashSet<usize>,
    /// Indexes into `objects` whose first delete fails transiently.
    fail_delete: Mutex<HashSet<usize>>,
    /// The next this many deletes fail transiently, whatever they delete.
    pub delete_fails: Mutex<usize>,
    calls: Mutex<Vec<String>>,
    /// (bucket, key, version id) of every successful delete.
    pub deleted: Mutex<Vec<(String, String, String)>>,
    /// Object Lock: (key, version id) → retain-until. HEAD shows the date; a delete before
    /// it is refused with 403 AccessDenied, as S3 does.
    locks: HashMap<(String, String), SystemTime>,
    /// Every delete is refused with 403 AccessDenied (a role without the permission).
    deny_deletes: bool,
    /// The store's wall clock for Object Lock (default: the system's).
    clock: Mutex<Option<SystemTime>>,
    /// (key, version id, store clock) of every delete call, successful or not.
    pub delete_calls: Mutex<Vec<(String, String, SystemTime)>>,
    /// (key, tags) of every PutObject.
    pub puts: Mutex<Vec<(String, Tags)>>,
    /// Each listing takes this long and is counted in the gauge while it runs.
    slow_listing: Option<(Arc<InFlight>, Duration)>,
}

/// Calls in flight at once, and the most seen: shared by stores to measure a bound.
#[derive(Debug, Default)]
pub struct InFlight {
    now: Mutex<usize>,
    most: Mutex<usize>,
    total: Mutex<usize>,
}

impl InFlight {
    /// The most calls that were in flight at once.
    pub fn most(&self) -> usize {
        *lock(&self.most)
    }

    /// Calls started in all.
    pub fn total(&self) -> usize {
        *lock(&self.total)
    }

    fn enter(self: &Arc<Self>) -> InFlightGuard {
        let mut now = lock(&self.now);
        *now += 1;
        *lock(&self.total) += 1;
        let mut most = lock(&self.most);
        *most = (*most).max(*now);
        InFlightGuard(self.clone())
    }
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        *lock(&self.0.now) -= 1;
    }
}

/// A scripted failure of class `class`.
pub fn err(class: ErrorClass, status: u16, code: &str) -> AwsError {
    AwsError {
        code: Some(code.to_owned()),
        message: Some("scripted".to_owned()),
        request_id: Some("REQ123".to_owned()),
        status: Some(status),
        ..AwsError::new("Test", class)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemStore {
    /// A store that serves `body` as every object's content.
    pub fn new(body: &SharedBody) -> MemStore {
        MemStore {
            body: body.clone(),
            ..MemStore::default()
        }
    }

    /// A bucket holding `objects`, listed as of `now`.
    pub fn bucket(now: SystemTime, objects: Vec<Obj>) -> MemStore {
        MemStore {
            now: Some(now),
            objects,
            ..MemStore::default()
        }
    }

    /// Every listing takes `delay` and is counted in `gauge` while it runs.
    pub fn slow_listing(mut self, gauge: &Arc<InFlight>, delay: Duration) -> MemStore {
        self.slow_listing = Some((gauge.clone(), delay));
        self
    }

    /// HEADs of these objects (indexes into `objects`) fail transiently.
    pub fn failing_heads(mut self, indexes: HashSet<usize>) -> MemStore {
        self.fail_head = indexes;
        self
    }

    /// The first delete of each of these objects fails transiently.
    pub fn failing_deletes(self, indexes: HashSet<usize>) -> MemStore {
        *lock(&self.fail_delete) = indexes;
        self
    }

    /// Object Lock retention on one version until `until`.
    pub fn locked(mut self, key: &str, version_id: &str, until: SystemTime) -> MemStore {
        self.locks
            .insert((key.to_owned(), version_id.to_owned()), until);
        self
    }

    /// Every delete is refused with 403 AccessDenied.
    pub fn denying_deletes(mut self) -> MemStore {
        self.deny_deletes = true;
        self
    }

    /// Sets the store's clock (Object Lock dates are judged by it).
    pub fn set_clock(&self, t: SystemTime) {
        *lock(&self.clock) = Some(t);
    }

    fn clock(&self) -> SystemTime {
        lock(&self.clock).unwrap_or_else(SystemTime::now)
    }

    fn retain_until(&self, key: &str, version_id: &str) -> Option<SystemTime> {
        self.locks
            .get(&(key.to_owned(), version_id.to_owned()))
            .copied()
    }

    pub fn heads(self, answers: Vec<Result<ObjectHead, AwsError>>) -> MemStore {
        *lock(&self.heads) = answers.into();
        self
    }

    pub fn put(self, answer: Result<Option<String>, AwsError>) -> MemStore {
        *lock(&self.put) = Some(answer);
        self
    }

    pub fn get(self, answer: Result<Vec<u8>, AwsError>) -> MemStore {
        *lock(&self.get) = Some(answer);
        self
    }

    /// Every listing shows the listed prefix as a key with these version ids (or fails).
    pub fn listing(mut self, answer: Result<Vec<&str>, AwsError>) -> MemStore {
        self.listing = Some(answer.map(|v| v.into_iter().map(str::to_owned).collect()));
        self
    }

    /// The operations called so far, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    pub fn count(&self, operation: &str) -> usize {
        lock(&self.calls).iter().filter(|c| *c == operation).count()
    }

    /// The first object with this key and version id.
    pub fn find(&self, key: &str, version_id: &str) -> Option<usize> {
        self.objects
            .iter()
            .position(|o| o.key == key && o.version_id == version_id)
    }

    /// What HeadObject shows of a stored version, without a scripted answer.
    fn stored_head(&self, key: &str, version_id: &str) -> Result<ObjectHead, AwsError> {
        match self.find(key, version_id) {
            Some(i) if self.fail_head.contains(&i) => {
                Err(err(ErrorClass::Transient, 503, "SlowDown"))
            }
            Some(i) => Ok(ObjectHead {
                metadata: self.objects[i].metadata.clone(),
                retain_until: self.retain_until(key, version_id),
                ..ObjectHead::default()
            }),
            None => Err(err(ErrorClass::NotFound, 404, "NotFound")),
        }
    }

    fn call(&self, operation: &str) {
        lock(&self.calls).push(operation.to_owned());
    }
}

impl ObjectStore for MemStore {
    async fn put(&self, req: PutRequest<'_>) -> Result<Option<String>, AwsError> {
        self.call("PutObject");
        lock(&self.puts).push((req.key.to_owned(), req.tags.to_vec()));
        *lock(&self.body) = req.body.to_vec();
        lock(&self.put).clone().unwrap_or(Ok(Some("v1".to_owned())))
    }

    async fn head(&self, _: &str, key: &str, version_id: &str) -> Result<ObjectHead, AwsError> {
        self.call("HeadObject");
        let mut q = lock(&self.heads);
        let scripted = if q.len() > 1 {
            q.pop_front()
        } else {
            q.front().cloned()
        };
        drop(q);
        scripted.unwrap_or_else(|| self.stored_head(key, version_id))
    }

    /// The headers the next HeadObject would show (a scripted answer stays on the queue)
    /// and the scripted or stored body.
    async fn get(
        &self,
        _: &str,
        key: &str,
        version_id: &str,
        limit: usize,
    ) -> Result<GotObject, AwsError> {
        self.call("GetObject");
        let scripted = lock(&self.get).clone();
        if let Some(Err(e)) = scripted {
            return Err(e);
        }
        let next_head = lock(&self.heads).front().cloned();
        let head = next_head.unwrap_or_else(|| self.stored_head(key, version_id))?;
        let mut body = scripted
            .and_then(Result::ok)
            .unwrap_or_else(|| lock(&self.body).clone());
        body.truncate(limit + 1);
        Ok(GotObject { head, body })
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<(), AwsError> {
        self.call("DeleteObject");
        lock(&self.delete_calls).push((key.to_owned(), version_id.to_owned(), self.clock()));
        let retained = self
            .retain_until(key, version_id)
            .is_some_and(|t| t > self.clock());
        if retained || self.deny_deletes {
            return Err(err(ErrorClass::AccessDenied, 403, "AccessDenied"));
        }
        {
            let mut fails = lock(&self.delete_fails);
            if *fails > 0 {
                *fails -= 1;
                return Err(err(ErrorClass::Transient, 503, "SlowDown"));
            }
        }
        if let Some(i) = self.find(key, version_id)
            && lock(&self.fail_delete).remove(&i)
        {
            return Err(err(ErrorClass::Transient, 503, "SlowDown"));
        }
        lock(&self.deleted).push((bucket.to_owned(), key.to_owned(), version_id.to_owned()));
        Ok(())
    }

    async fn list_versions(
        &self,
        _: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<VersionEntry>, AwsError> {
        self.call("ListObjectVersions");
        if let Some((gauge, delay)) = &self.slow_listing {
            let _in_flight = gauge.enter();
            tokio::time::sleep(*delay).await;
        }
        let now = self.now.unwrap_or_else(SystemTime::now);
        if let Some(answer) = &self.listing {
            let entry = |v: &String| VersionEntry {
                key: prefix.to_owned(),
                version_id: v.clone(),
                last_modified: Some(now),
            };
            return answer.clone().map(|vs| vs.iter().map(entry).collect());
        }
        Ok(self
            .objects
            .iter()
            .take(max)
            .map(|o| VersionEntry {
                key: o.key.clone(),
                version_id: o.version_id.clone(),
                last_modified: o.age.map(|a| now - Duration::from_secs(a)),
            })
            .collect())
    }
}

/// The store's buckets have no readable setup: diagnosis finds nothing to name.
impl SetupReader for MemStore {
    async fn replication(&self, _: &str) -> Result<ReplicationSetup, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    async fn versioning(&self, _: &str) -> Result<Option<String>, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    async fn encryption(&self, _: &str) -> Result<DefaultEncryption, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    async fn policy(&self, _: &str) -> Result<String, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    async fn ownership(&self, _: &str) -> Result<String, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    async fn object_lock(&self, _: &str) -> Result<Option<DefaultRetention>, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    /// Counted; refused, as to a probe role without `kms:GetKeyPolicy`.
    async fn key_policy(&self, _: &str) -> Result<String, AwsError> {
        self.call("GetKeyPolicy");
        Err(err(ErrorClass::AccessDenied, 400, "AccessDeniedException"))
    }
}

/// A shared store, so that a test still sees it once the prober that used it is gone.
impl ObjectStore for Arc<MemStore> {
    async fn put(&self, req: PutRequest<'_>) -> Result<Option<String>, AwsError> {
        ObjectStore::put(&**self, req).await
    }
    async fn head(&self, b: &str, k: &str, v: &str) -> Result<ObjectHead, AwsError> {
        (**self).head(b, k, v).await
    }
    async fn get(&self, b: &str, k: &str, v: &str, limit: usize) -> Result<GotObject, AwsError> {
        ObjectStore::get(&**self, b, k, v, limit).await
    }
    async fn delete_version(&self, b: &str, k: &str, v: &str) -> Result<(), AwsError> {
        (**self).delete_version(b, k, v).await
    }
    async fn list_versions(
        &self,
        b: &str,
        p: &str,
        max: usize,
    ) -> Result<Vec<VersionEntry>, AwsError> {
        (**self).list_versions(b, p, max).await
    }
}

impl SetupReader for Arc<MemStore> {
    async fn replication(&self, b: &str) -> Result<ReplicationSetup, AwsError> {
        (**self).replication(b).await
    }
    async fn versioning(&self, b: &str) -> Result<Option<String>, AwsError> {
        (**self).versioning(b).await
    }
    async fn encryption(&self, b: &str) -> Result<DefaultEncryption, AwsError> {
        (**self).encryption(b).await
    }
    async fn policy(&self, b: &str) -> Result<String, AwsError> {
        (**self).policy(b).await
    }
    async fn ownership(&self, b: &str) -> Result<String, AwsError> {
        (**self).ownership(b).await
    }
    async fn object_lock(&self, b: &str) -> Result<Option<DefaultRetention>, AwsError> {
        (**self).object_lock(b).await
    }
}
