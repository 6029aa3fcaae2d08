//! [`Readers`] over the AWS SDK: the shared [`Clients`] pool, each side as the role its
//! template names for the account. Every call is counted in
//! `replicanary_aws_requests_total` under `replication="discovery:<account>"` — the account
//! whose role made it — with its `side`.

use super::calls_label;
use super::read::Readers;
use crate::aws::clients::Clients;
use crate::aws::s3::S3Store;
use crate::config::Discovery;
use crate::model::Side;

/// Discovery's readers: one client per (side, role, region), shared with the probes.
pub struct SdkReaders<'a> {
    pub clients: &'a Clients,
    pub discovery: &'a Discovery,
}

impl SdkReaders<'_> {
    async fn store(&self, side: Side, account: &str, region: &str) -> S3Store {
        let d = self.discovery;
        let template = match side {
            Side::Source => &d.source_role,
            Side::Destination => &d.destination_role,
        };
        let role = template.role(account, d.external_id.as_deref());
        self.clients
            .store(&calls_label(account), side, region, Some(&role))
            .await
    }
}

impl Readers for SdkReaders<'_> {
    type Reader = S3Store;

    async fn source(&self, account: &str, region: &str) -> S3Store {
        self.store(Side::Source, account, region).await
    }

    async fn destination(&self, account: &str, region: &str) -> S3Store {
        self.store(Side::Destination, account, region).await
    }
}
