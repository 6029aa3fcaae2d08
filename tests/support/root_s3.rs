//! Plain AWS SDK access as an account's root (a 12-digit access key id is that account's
//! root in the lab), for tests that put, read or list objects as a user would.

use super::lab::Lab;

pub struct RootS3 {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
}

impl RootS3 {
    pub fn new(lab: &Lab, account: &str) -> RootS3 {
        let creds = aws_sdk_s3::config::Credentials::new(account, "test", None, None, "test");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("ap-northeast-1"))
            .endpoint_url(&lab.endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .build();
        RootS3 {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }

    /// Puts an object (with optional user metadata) and returns its version id.
    pub fn put(&self, bucket: &str, key: &str, body: &str, metadata: &[(&str, &str)]) -> String {
        let mut call = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.as_bytes().to_vec().into());
        for (k, v) in metadata {
            call = call.metadata(*k, *v);
        }
        let out = self.rt.block_on(call.send()).expect("PutObject as root");
        out.version_id().expect("versioned bucket").to_owned()
    }

    /// Every (key, version id) under a prefix, delete markers excluded.
    pub fn versions(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let out = self
            .rt
            .block_on(
                self.client
                    .list_object_versions()
                    .bucket(bucket)
                    .prefix(prefix)
                    .send(),
            )
            .expect("ListObjectVersions as root");
        out.versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap_or_default().to_owned(),
                    v.version_id().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The body of one version.
    pub fn get(&self, bucket: &str, key: &str, version_id: &str) -> Option<Vec<u8>> {
        let out = self
            .rt
            .block_on(
                self.client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .version_id(version_id)
                    .send(),
            )
            .ok()?;
        Some(
            self.rt
                .block_on(out.body.collect())
                .ok()?
                .into_bytes()
                .to_vec(),
        )
    }
}

impl RootS3 {
    /// Every version under a prefix with its user metadata (HeadObject per version).
    pub fn versions_with_metadata(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Vec<(String, String, std::collections::HashMap<String, String>)> {
        self.versions(bucket, prefix)
            .into_iter()
            .map(|(k, v)| {
                let meta = self
                    .rt
                    .block_on(
                        self.client
                            .head_object()
                            .bucket(bucket)
                            .key(&k)
                            .version_id(&v)
                            .send(),
                    )
                    .ok()
                    .and_then(|h| h.metadata().cloned())
                    .unwrap_or_default();
                (k, v, meta)
            })
            .collect()
    }
}
