//! [`Readers`] over the AWS SDK: the process's one [`Clients`] pool (the probes' too), each
//! side as the role its template names for the account. Every call is counted in
//! `replicanary_aws_requests_total` under `replication="discovery:<account>"` — the account
//! whose role made it — with its `side`, and so is an `AssumeRole` a discovery call causes,
//! whoever built the shared client first.

use super::calls_label;
use super::read::Readers;
use crate::aws::clients::{Clients, acting_for};
use crate::aws::s3::S3Store;
use crate::aws::{
    AwsError, BucketHome, BucketPage, DefaultEncryption, EstateReader, ReplicationSetup,
};
use crate::config::Discovery;
use crate::model::Side;

/// Discovery's readers: one client per (side, role, region), shared with the probes.
pub struct SdkReaders<'a> {
    pub clients: &'a Clients,
    pub discovery: &'a Discovery,
}

impl SdkReaders<'_> {
    async fn reader(&self, side: Side, account: &str, region: &str) -> AccountReader {
        let d = self.discovery;
        let template = match side {
            Side::Source => &d.source_role,
            Side::Destination => &d.destination_role,
        };
        let role = template.role(account, d.external_id.as_deref());
        let label = calls_label(account);
        let store = self.clients.store(&label, side, region, Some(&role)).await;
        AccountReader { store, label }
    }
}

impl Readers for SdkReaders<'_> {
    type Reader = AccountReader;

    async fn source(&self, account: &str, region: &str) -> AccountReader {
        self.reader(Side::Source, account, region).await
    }

    async fn destination(&self, account: &str, region: &str) -> AccountReader {
        self.reader(Side::Destination, account, region).await
    }
}

/// One account's role, reading on behalf of `discovery:<account>`: the calls are counted
/// there, and so are the `AssumeRole` calls behind them.
pub struct AccountReader {
    store: S3Store,
    label: String,
}

impl EstateReader for AccountReader {
    async fn list_buckets(
        &self,
        region: &str,
        continuation: Option<&str>,
    ) -> Result<BucketPage, AwsError> {
        acting_for(&self.label, self.store.list_buckets(region, continuation)).await
    }

    async fn bucket_tags(&self, bucket: &str) -> Result<Option<Vec<(String, String)>>, AwsError> {
        acting_for(&self.label, self.store.bucket_tags(bucket)).await
    }

    async fn replication_rules(&self, bucket: &str) -> Result<Option<ReplicationSetup>, AwsError> {
        acting_for(&self.label, self.store.replication_rules(bucket)).await
    }

    async fn bucket_home(&self, bucket: &str, owner: &str) -> Result<BucketHome, AwsError> {
        acting_for(&self.label, self.store.bucket_home(bucket, owner)).await
    }

    async fn default_encryption(&self, bucket: &str) -> Result<DefaultEncryption, AwsError> {
        acting_for(&self.label, self.store.default_encryption(bucket)).await
    }
}
