//! The setup as the probe roles last read it, kept for [`SETUP_TTL`], and what is made of
//! it: the findings attached to a probe's verdicts, and `audit` (the setup checks alone,
//! without a canary). Key policies read for the readers' findings are cached the same way.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::readers::{KeyGrant, decrypt_grant, reader_findings};
use super::setup::{DestinationSetup, SourceSetup, read_destination, read_source};
use super::{SETUP_TTL, diagnose, from_replica};
use crate::aws::{ErrorClass, SetupReader, Stores};
use crate::config::Replication;
use crate::model::{AwsError, DestinationVerdict, Finding, Outcome, ReaderOutcome, ReaderVerdict};

/// The replication's setup as the probe roles last read it.
#[derive(Debug, Clone)]
pub struct SetupRead {
    pub read_at: Instant,
    pub source: SourceSetup,
    pub destinations: Vec<DestinationSetup>,
}

/// One replication's setup and key policies, as last read.
#[derive(Debug, Default)]
pub struct SetupCache {
    setup: Option<SetupRead>,
    /// Key policies read for the reader findings, by key ARN, with when they were read.
    key_policies: HashMap<String, (Instant, Result<String, AwsError>)>,
}

impl SetupCache {
    /// Names the causes behind failed verdicts (`verdicts[i]` is destination `i`'s), then
    /// why each failing reader failed.
    pub async fn attach<S: SetupReader>(
        &mut self,
        rep: &Replication,
        stores: Stores<'_, S>,
        verdicts: &mut [DestinationVerdict],
    ) {
        self.attach_findings(rep, stores, verdicts).await;
        self.attach_reader_findings(stores, verdicts).await;
    }

    /// `ok` keeps only what the replica's own headers tell (its Object Lock retention);
    /// `error` and `credentials_failed` leave the findings as they were (nothing new was
    /// learnt); every other verdict is diagnosed against the setup.
    async fn attach_findings<S: SetupReader>(
        &mut self,
        rep: &Replication,
        stores: Stores<'_, S>,
        verdicts: &mut [DestinationVerdict],
    ) {
        let diagnosable =
            |o: Outcome| !matches!(o, Outcome::Ok | Outcome::Error | Outcome::CredentialsFailed);
        if verdicts.iter().any(|v| diagnosable(v.outcome)) {
            self.read_setup(rep, stores, SETUP_TTL).await;
        }
        for (i, v) in verdicts.iter_mut().enumerate() {
            if v.outcome == Outcome::Ok {
                v.findings = Some(from_replica(rep, &rep.destinations[i], v));
            }
        }
        let Some(setup) = &self.setup else {
            return;
        };
        for (i, v) in verdicts.iter_mut().enumerate() {
            v.findings = match v.outcome {
                Outcome::Ok => continue,
                o if diagnosable(o) => Some(diagnose(
                    rep,
                    &rep.destinations[i],
                    &setup.source,
                    &setup.destinations[i],
                    Some(v),
                )),
                _ => None,
            };
        }
    }

    /// Reads the setup with the probe roles, unless a read younger than `max_age` exists.
    pub async fn read_setup<S: SetupReader>(
        &mut self,
        rep: &Replication,
        stores: Stores<'_, S>,
        max_age: Duration,
    ) {
        let fresh = self
            .setup
            .as_ref()
            .is_some_and(|s| s.read_at.elapsed() < max_age);
        if !fresh {
            let source = read_source(stores.source, &rep.source.bucket).await;
            let mut destinations = Vec::with_capacity(stores.destinations.len());
            for (d, store) in rep.destinations.iter().zip(stores.destinations) {
                destinations.push(read_destination(store, &d.bucket).await);
            }
            self.setup = Some(SetupRead {
                read_at: Instant::now(),
                source,
                destinations,
            });
        }
    }

    /// `audit`: the setup checks alone, without a canary. One entry per destination.
    pub async fn audit<S: SetupReader>(
        &mut self,
        rep: &Replication,
        stores: Stores<'_, S>,
    ) -> Vec<(String, Vec<Finding>)> {
        self.read_setup(rep, stores, Duration::ZERO).await;
        let Some(setup) = &self.setup else {
            return Vec::new();
        };
        let mut entries: Vec<(String, Vec<Finding>)> = rep
            .destinations
            .iter()
            .zip(&setup.destinations)
            .map(|(d, ds)| {
                let findings = diagnose(rep, d, &setup.source, ds, None);
                (d.name.clone(), findings)
            })
            .collect();
        self.audit_readers(rep, stores, &mut entries).await;
        entries
    }

    /// The key's policy as destination `i`'s probe role reads it (`kms:GetKeyPolicy`), read
    /// again once older than the setup's cache (`SETUP_TTL`); a transient failure is not kept.
    async fn key_policy<S: SetupReader>(
        &mut self,
        stores: Stores<'_, S>,
        i: usize,
        key: &str,
    ) -> Option<Result<String, AwsError>> {
        if let Some((at, p)) = self.key_policies.get(key)
            && at.elapsed() < SETUP_TTL
        {
            return Some(p.clone());
        }
        let read = stores.destinations.get(i)?.key_policy(key).await;
        if read
            .as_ref()
            .err()
            .is_none_or(|e| e.class != ErrorClass::Transient)
        {
            self.key_policies
                .insert(key.to_owned(), (Instant::now(), read.clone()));
        }
        Some(read)
    }

    /// Names why each failing reader failed; for a KMS refusal reads the replica key's
    /// policy as the destination probe role (cached like the setup). The findings join the
    /// destination's, unless the destination's were not looked at this time.
    async fn attach_reader_findings<S: SetupReader>(
        &mut self,
        stores: Stores<'_, S>,
        verdicts: &mut [DestinationVerdict],
    ) {
        for (i, v) in verdicts.iter_mut().enumerate() {
            if v.readers.iter().all(|r| !r.outcome.is_failure()) {
                continue;
            }
            let key = v
                .replica
                .kms_key
                .clone()
                .unwrap_or_else(|| v.expected_kms_key.clone());
            // Only a plain refusal is the key policy's business (not a disabled key).
            let kms_refused = v.readers.iter().any(|r| {
                r.outcome == ReaderOutcome::Undecryptable
                    && r.get_error == Some(ErrorClass::AccessDenied)
            });
            let policy = if kms_refused && !key.is_empty() {
                self.key_policy(stores, i, &key).await
            } else {
                None
            };
            let mut all = Vec::new();
            for r in &mut v.readers {
                let for_kms = r.outcome == ReaderOutcome::Undecryptable
                    && r.get_error == Some(ErrorClass::AccessDenied);
                let found = reader_findings(r, &key, policy.as_ref().filter(|_| for_kms));
                if let (true, Some(Ok(p))) = (for_kms, &policy)
                    && decrypt_grant(p, &r.role_arn) == Some(KeyGrant::Account)
                {
                    r.reason = Some(
                        "KMS refuses the reader: the key policy leaves it to the account's IAM, \
                         and the reader's identity policy does not allow kms:Decrypt on the key"
                            .to_owned(),
                    );
                }
                all.extend(found.iter().cloned());
                r.findings = found;
            }
            if let Some(findings) = v.findings.as_mut() {
                for f in all {
                    if !findings.iter().any(|g| g.id == f.id) {
                        findings.push(f);
                    }
                }
            }
        }
    }

    /// `audit` (no canary, nothing read as the readers): the expected key's policy against
    /// each reader — `reader_kms_not_granted` for a reader it leaves out,
    /// `cannot_inspect:GetKeyPolicy` when it cannot be read. `entries[i]` is destination `i`'s.
    async fn audit_readers<S: SetupReader>(
        &mut self,
        rep: &Replication,
        stores: Stores<'_, S>,
        entries: &mut [(String, Vec<Finding>)],
    ) {
        for (i, (_, findings)) in entries.iter_mut().enumerate() {
            let d = &rep.destinations[i];
            let (Some(key), false) = (d.expected_kms_key.as_ref(), d.readers.is_empty()) else {
                continue;
            };
            let key = key.to_string();
            let Some(policy) = self.key_policy(stores, i, &key).await else {
                continue;
            };
            for r in &d.readers {
                let mut v = ReaderVerdict::new(&r.name, &r.role.arn, ReaderOutcome::Undecryptable);
                v.get_error = Some(ErrorClass::AccessDenied);
                for f in reader_findings(&v, &key, Some(&policy)) {
                    if !findings.iter().any(|g| {
                        g.id == f.id && (f.id.is_cannot_inspect() || g.explanation == f.explanation)
                    }) {
                        findings.push(f);
                    }
                }
            }
        }
    }
}
