//! Label vectors of counters and gauges that cost a few dozen bytes per series.
//!
//! The `prometheus` crate's `IntCounterVec`/`GaugeVec` give every child its own copy of
//! the family's description (name, help, label names) and its label pairs as protobuf
//! messages: about 0.9 KB per series, ~35 series per replication, a third of the daemon's
//! memory at 1,000 replications (docs/performance.md, "Memory at 1,000 replications").
//! A [`Family`] keeps one description and, per series, its label values in one
//! allocation and an atomic value. A scrape collects the same `MetricFamily` the crate's
//! vector would (same name, help, type, label pairs in name order, values), so the text
//! is identical; the tests compare the two.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use prometheus::core::{
    Atomic, AtomicF64, AtomicI64, AtomicU64, Collector, Desc, MetricVec, MetricVecBuilder, Number,
};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

/// Counters by label values (`replicanary_probes_total`'s kind).
pub type Counters<const N: usize> = Family<AtomicU64, N>;
/// Float gauges by label values.
pub type Gauges<const N: usize> = Family<AtomicF64, N>;
/// Integer gauges by label values.
pub type IntGauges<const N: usize> = Family<AtomicI64, N>;

/// One metric family with `N` variable labels; cheap to clone (shared).
pub struct Family<P: Atomic, const N: usize> {
    inner: Arc<Inner<P, N>>,
}

impl<P: Atomic, const N: usize> Clone for Family<P, N> {
    fn clone(&self) -> Self {
        Family {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<P: Atomic, const N: usize> {
    desc: Desc,
    kind: MetricType,
    /// Label indices in the order of their names: how the exposition lists them.
    by_name: [usize; N],
    /// Series by their label values, encoded by [`key`].
    series: RwLock<HashMap<Box<[u8]>, Arc<P>>>,
}

/// One series: what `with_label_values` hands out to update it.
pub struct Series<P: Atomic>(Arc<P>);

impl<P: Atomic> Series<P> {
    pub fn inc(&self) {
        self.0.inc_by(P::T::from_i64(1));
    }

    pub fn set(&self, value: P::T) {
        self.0.set(value);
    }
}

impl<const N: usize> Family<AtomicU64, N> {
    pub fn counter(name: &str, help: &str, labels: &[&str; N]) -> prometheus::Result<Self> {
        Family::new(name, help, labels, MetricType::COUNTER)
    }
}

impl<const N: usize> Family<AtomicF64, N> {
    pub fn gauge(name: &str, help: &str, labels: &[&str; N]) -> prometheus::Result<Self> {
        Family::new(name, help, labels, MetricType::GAUGE)
    }
}

impl<const N: usize> Family<AtomicI64, N> {
    pub fn int_gauge(name: &str, help: &str, labels: &[&str; N]) -> prometheus::Result<Self> {
        Family::new(name, help, labels, MetricType::GAUGE)
    }
}

impl<P: Atomic, const N: usize> Family<P, N> {
    fn new(
        name: &str,
        help: &str,
        labels: &[&str; N],
        kind: MetricType,
    ) -> prometheus::Result<Self> {
        let names = labels.iter().map(|l| (*l).to_owned()).collect();
        let desc = Desc::new(name.to_owned(), help.to_owned(), names, HashMap::new())?;
        let mut by_name: [usize; N] = std::array::from_fn(|i| i);
        by_name.sort_by_key(|&i| labels[i]);
        Ok(Family {
            inner: Arc::new(Inner {
                desc,
                kind,
                by_name,
                series: RwLock::new(HashMap::new()),
            }),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<Box<[u8]>, Arc<P>>> {
        self.inner.series.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Box<[u8]>, Arc<P>>> {
        self.inner.series.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The series of these label values, created at 0 if it does not exist.
    pub fn with_label_values<V: AsRef<str>>(&self, values: &[V; N]) -> Series<P> {
        let k = key(values);
        if let Some(v) = self.read().get(k.as_slice()) {
            return Series(Arc::clone(v));
        }
        let v = self
            .write()
            .entry(k.into_boxed_slice())
            .or_insert_with(|| Arc::new(P::new(P::T::from_i64(0))))
            .clone();
        Series(v)
    }

    /// Removes one series; an error if it did not exist (as the crate's vectors do).
    pub fn remove_label_values<V: AsRef<str>>(&self, values: &[V; N]) -> prometheus::Result<()> {
        match self.write().remove(key(values).as_slice()) {
            Some(_) => Ok(()),
            None => Err(prometheus::Error::Msg(format!(
                "missing label values {:?}",
                values.iter().map(AsRef::as_ref).collect::<Vec<_>>()
            ))),
        }
    }

    /// Removes every series.
    pub fn reset(&self) {
        self.write().clear();
    }

    fn metric(&self, k: &[u8], value: &P) -> proto::Metric {
        let values = decode(k);
        let names = &self.inner.desc.variable_labels;
        let labels = self
            .inner
            .by_name
            .iter()
            .map(|&i| {
                let mut pair = LabelPair::default();
                pair.set_name(names[i].clone());
                pair.set_value(values.get(i).copied().unwrap_or_default().to_owned());
                pair
            })
            .collect();
        let mut m = proto::Metric::from_label(labels);
        let v = value.get().into_f64();
        if self.inner.kind == MetricType::COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(v);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        }
        m
    }
}

impl<P: Atomic + 'static, const N: usize> Collector for Family<P, N> {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.inner.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut f = MetricFamily::default();
        f.set_name(self.inner.desc.fq_name.clone());
        f.set_help(self.inner.desc.help.clone());
        f.set_field_type(self.inner.kind);
        let series = self.read();
        f.set_metric(series.iter().map(|(k, v)| self.metric(k, v)).collect());
        vec![f]
    }
}

/// Removing every series whose labels include all of `wanted` (name, value) pairs.
pub trait RemoveMatching {
    fn remove_matching(&self, wanted: &[(&str, &str)]);
}

impl<P: Atomic, const N: usize> RemoveMatching for Family<P, N> {
    fn remove_matching(&self, wanted: &[(&str, &str)]) {
        let names = &self.inner.desc.variable_labels;
        let mut at = Vec::with_capacity(wanted.len());
        for (name, value) in wanted {
            match names.iter().position(|n| n == name) {
                Some(i) => at.push((i, *value)),
                // A label this family does not have: no series matches.
                None => return,
            }
        }
        self.write().retain(|k, _| {
            let values = decode(k);
            !at.iter().all(|(i, v)| values.get(*i) == Some(v))
        });
    }
}

impl<B: MetricVecBuilder> RemoveMatching for MetricVec<B> {
    fn remove_matching(&self, wanted: &[(&str, &str)]) {
        for family in self.collect() {
            for metric in family.get_metric() {
                let labels: HashMap<&str, &str> = metric
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                if wanted.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    let _ = self.remove(&labels);
                }
            }
        }
    }
}

/// Label values as one key: each value's length (4 bytes, little-endian), then its bytes.
fn key<V: AsRef<str>>(values: &[V]) -> Vec<u8> {
    let len = values.iter().map(|v| 4 + v.as_ref().len()).sum();
    let mut k = Vec::with_capacity(len);
    for v in values {
        let v = v.as_ref().as_bytes();
        k.extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_le_bytes());
        k.extend_from_slice(v);
    }
    k
}

/// The label values of a key made by [`key`].
fn decode(mut k: &[u8]) -> Vec<&str> {
    let mut values = Vec::new();
    while let Some((len, rest)) = k.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        let (value, rest) = rest.split_at(len.min(rest.len()));
        values.push(std::str::from_utf8(value).unwrap_or_default());
        k = rest;
    }
    values
}

#[cfg(test)]
mod tests;
