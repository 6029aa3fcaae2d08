//! Prometheus text exposition, parsed: `name{sorted labels}` → value, and the queries the
//! tests ask of it.

use std::collections::BTreeMap;

/// Parsed Prometheus text exposition: `name{sorted labels}` → value.
#[derive(Debug, Clone)]
pub struct Metrics {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
            let value: f64 = value.parse().expect("a numeric value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Metrics {
            samples,
            text: text.to_owned(),
        }
    }

    /// The values of the samples of `name` whose labels include `labels`.
    fn values<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = f64> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }

    /// The value of the first sample of `name` whose labels include `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.values(name, labels).next()
    }

    /// Sum over every sample of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.values(name, labels).sum()
    }

    pub fn verdicts(&self, replication: &str, destination: &str) -> f64 {
        self.sum(
            "replicanary_probes_total",
            &[("replication", replication), ("destination", destination)],
        )
    }

    /// Every value the label `label` takes in the samples of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> std::collections::BTreeSet<String> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, l, _)| l.get(label).cloned())
            .collect()
    }

    /// Outcomes with a non-zero count for one destination.
    pub fn outcomes(&self, replication: &str, destination: &str) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|(n, l, v)| {
                n == "replicanary_probes_total"
                    && *v > 0.0
                    && l.get("replication").map(String::as_str) == Some(replication)
                    && l.get("destination").map(String::as_str) == Some(destination)
            })
            .map(|(_, l, v)| (l["outcome"].clone(), *v))
            .collect()
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(k.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    out
}
