//! Probe settings (`defaults:` and a replication's own), `scan:`, `poll:`, `aws:` and
//! durations: each field checked, then the relations between merged settings.

use std::time::Duration;

use super::super::raw::{RawAws, RawPoll, RawProbeSettings, RawScan, Scalar};
use super::super::{AwsSettings, ProbeSettings, ScanSettings};
use super::{Validator, check_prefix};

impl Validator {
    pub(super) fn aws(&mut self, raw: RawAws) -> AwsSettings {
        if let Some(url) = &raw.endpoint_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url
                    .split_once("://")
                    .is_some_and(|(_, rest)| !rest.is_empty());
            if !ok {
                self.error(
                    "aws.endpoint_url",
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
        let attempt_timeout = self
            .duration(raw.attempt_timeout.as_ref(), "aws.attempt_timeout")
            .unwrap_or(Duration::from_secs(10));
        let operation_timeout = self
            .duration(raw.operation_timeout.as_ref(), "aws.operation_timeout")
            .unwrap_or(Duration::from_secs(30));
        // Five attempts: under 30% injected 503s, three let 2 of 25 healthy probes end in
        // `error` on a GetObject that failed all three (docs/performance.md, "Retries
        // under noise").
        let max_attempts = raw.max_attempts.unwrap_or(5);
        if !(1..=10).contains(&max_attempts) {
            self.error("aws.max_attempts", "must be between 1 and 10");
        }
        AwsSettings {
            endpoint_url: raw.endpoint_url,
            force_path_style: raw.force_path_style.unwrap_or(false),
            attempt_timeout,
            operation_timeout,
            max_attempts,
        }
    }

    /// Applies `raw` over `base`, checking each field given.
    pub(super) fn settings(
        &mut self,
        base: &ProbeSettings,
        raw: &RawProbeSettings,
        path: &str,
    ) -> ProbeSettings {
        let mut s = base.clone();
        let field = |name: &str| format!("{path}.{name}");
        if let Some(d) = self.duration(raw.interval.as_ref(), &field("interval")) {
            s.interval = d;
        }
        if let Some(d) = self.duration(
            raw.replication_timeout.as_ref(),
            &field("replication_timeout"),
        ) {
            s.replication_timeout = d;
        }
        if let Some(poll) = &raw.poll {
            self.poll(&mut s, poll, &field("poll"));
        }
        if let Some(prefix) = &raw.canary_prefix {
            match check_prefix(prefix) {
                Ok(()) => s.canary_prefix = prefix.clone(),
                Err(m) => self.error(&field("canary_prefix"), m),
            }
        }
        if let Some(c) = raw.cleanup {
            s.cleanup = c;
        }
        if let Some(d) = self.duration_or_zero(raw.sweep_min_age.as_ref(), &field("sweep_min_age"))
        {
            s.sweep_min_age = d;
        }
        if let Some(d) = self.duration(raw.sweep_interval.as_ref(), &field("sweep_interval")) {
            s.sweep_interval = d;
        }
        if let Some(scan) = &raw.scan {
            s.scan = self.scan(s.scan.as_ref(), scan, &field("scan"));
        }
        s
    }

    /// `scan:` over the inherited one (a replication's fields override the defaults'
    /// one by one); `None` when a field is wrong.
    pub(super) fn scan(
        &mut self,
        base: Option<&ScanSettings>,
        raw: &RawScan,
        path: &str,
    ) -> Option<ScanSettings> {
        let mut s = base.cloned().unwrap_or_default();
        if let Some(d) = self.duration(raw.interval.as_ref(), &format!("{path}.interval")) {
            s.interval = d;
        }
        match &raw.rate {
            None => {}
            Some(serde_json::Value::Number(n))
                if n.as_u64().is_some_and(|r| (1..=10_000).contains(&r)) =>
            {
                s.rate = u32::try_from(n.as_u64().unwrap_or(1)).unwrap_or(1);
            }
            Some(other) => self.error(
                &format!("{path}.rate"),
                format!(
                    "must be a whole number of requests per second from 1 to 10000, found {other}"
                ),
            ),
        }
        if let Some(r) = raw.read {
            s.read = r;
        }
        Some(s)
    }

    pub(super) fn poll(&mut self, s: &mut ProbeSettings, poll: &RawPoll, path: &str) {
        if let Some(d) = self.duration(poll.initial.as_ref(), &format!("{path}.initial")) {
            s.poll_initial = d;
        }
        if let Some(d) = self.duration(poll.max.as_ref(), &format!("{path}.max")) {
            s.poll_max = d;
        }
    }

    /// Checks the relations between settings once they are merged.
    pub(super) fn check_settings(&mut self, s: &ProbeSettings, path: &str) {
        if s.poll_initial > s.poll_max {
            self.error(
                &format!("{path}.poll"),
                format!(
                    "poll.initial ({}) is greater than poll.max ({})",
                    humantime::format_duration(s.poll_initial),
                    humantime::format_duration(s.poll_max)
                ),
            );
        }
    }

    pub(super) fn duration(&mut self, raw: Option<&Scalar>, path: &str) -> Option<Duration> {
        let d = self.duration_or_zero(raw, path)?;
        if d.is_zero() {
            self.error(path, "must be greater than zero");
            return None;
        }
        Some(d)
    }

    pub(super) fn duration_or_zero(
        &mut self,
        raw: Option<&Scalar>,
        path: &str,
    ) -> Option<Duration> {
        let raw = match raw? {
            serde_json::Value::String(s) => s.as_str(),
            serde_json::Value::Number(n) => {
                self.error(
                    path,
                    format!("`{n}` has no unit: write a duration like {n}s or {n}m"),
                );
                return None;
            }
            other => {
                self.error(
                    path,
                    format!("expected a duration like 500ms, 30s or 5m, found {other}"),
                );
                return None;
            }
        };
        match humantime::parse_duration(raw.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    path,
                    format!("`{raw}` is not a duration like 500ms, 30s or 5m ({e})"),
                );
                None
            }
        }
    }
}
