//! How each registered collector writes its part of the text exposition.
//!
//! The `prometheus` crate's own types (histograms, the single gauges) are collected whole
//! and encoded by its `TextEncoder`. A [`Family`] hands the same encoder a few hundred
//! series at a time, in exposition order: the text is the same, but a scrape no longer
//! builds a protobuf message for each of the family's thousands of series at once (13,000
//! for `replicanary_probes_total` at 1,000 replications; docs/performance.md, "Memory at
//! 1,000 replications").

use std::io::Write;

use prometheus::core::{Atomic, Collector};
use prometheus::{Encoder, Gauge, Histogram, HistogramVec, IntGauge, TextEncoder};

use super::family::Family;

/// Series per batch handed to the encoder.
const BATCH: usize = 256;

/// A collector that writes its families' text itself.
pub trait Exposition: Collector {
    fn encode(&self, out: &mut dyn Write) -> prometheus::Result<()>;
}

/// What `Reg::add` accepts: a collector and how it is encoded.
pub trait IntoExposition: Collector + Clone + Sized + 'static {
    fn into_exposition(self) -> Box<dyn Exposition> {
        Box::new(Whole(self))
    }
}

impl IntoExposition for HistogramVec {}
impl IntoExposition for Histogram {}
impl IntoExposition for IntGauge {}
impl IntoExposition for Gauge {}

impl<P: Atomic + 'static, const N: usize> IntoExposition for Family<P, N> {
    fn into_exposition(self) -> Box<dyn Exposition> {
        Box::new(self)
    }
}

/// A collector encoded whole: collected, empty families left out, series sorted.
struct Whole<C>(C);

impl<C: Collector> Collector for Whole<C> {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.collect()
    }
}

impl<C: Collector> Exposition for Whole<C> {
    fn encode(&self, mut out: &mut dyn Write) -> prometheus::Result<()> {
        let mut families = self.0.collect();
        families.retain(|f| !f.get_metric().is_empty());
        families.iter_mut().for_each(super::sort_series);
        TextEncoder::new().encode(&families, &mut out)
    }
}

impl<P: Atomic + 'static, const N: usize> Exposition for Family<P, N> {
    fn encode(&self, out: &mut dyn Write) -> prometheus::Result<()> {
        let encoder = TextEncoder::new();
        let mut text = Vec::new();
        for (i, batch) in self.batches(BATCH).into_iter().enumerate() {
            text.clear();
            encoder.encode(&[batch], &mut text)?;
            // A batch after the first has no help (no `# HELP` line); its `# TYPE` line,
            // the first, was written with the first batch.
            let start = match i {
                0 => 0,
                _ => text.iter().position(|&b| b == b'\n').map_or(0, |at| at + 1),
            };
            out.write_all(&text[start..])?;
        }
        Ok(())
    }
}
