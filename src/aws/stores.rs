//! A replication's stores — the source's and each destination's — and [`Site`], the name
//! of one of them.

use crate::model::Side;

/// One of a replication's buckets and the store that reaches it: the source, or
/// destination `i` in configuration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Site {
    Source,
    Destination(usize),
}

impl Site {
    /// Whose role acts on it.
    pub fn side(self) -> Side {
        match self {
            Site::Source => Side::Source,
            Site::Destination(_) => Side::Destination,
        }
    }
}

/// The stores of one replication, borrowed: what cleanup and diagnosis call.
pub struct Stores<'a, S> {
    pub source: &'a S,
    pub destinations: &'a [S],
}

impl<S> Clone for Stores<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Stores<'_, S> {}

impl<'a, S> Stores<'a, S> {
    /// The store of `site`; `None` for a destination index out of range.
    pub fn at(self, site: Site) -> Option<&'a S> {
        match site {
            Site::Source => Some(self.source),
            Site::Destination(i) => self.destinations.get(i),
        }
    }

    /// Every site, the source first.
    pub fn sites(self) -> impl Iterator<Item = Site> {
        std::iter::once(Site::Source).chain((0..self.destinations.len()).map(Site::Destination))
    }
}
