//! SINTER, SUNION and SDIFF as a value: what the read and STORE forms
//! compute.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// SINTER, SUNION or SDIFF (and their STORE forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetAlgebra {
    Inter,
    Union,
    Diff,
}

impl SetAlgebra {
    /// The result over `sets` in key order (absent keys are empty sets).
    pub fn apply(self, sets: Vec<std::collections::BTreeSet<Bytes>>) -> std::collections::BTreeSet<Bytes> {
        let mut sets = sets.into_iter();
        let first = sets.next().unwrap_or_default();
        match self {
            SetAlgebra::Inter => sets.fold(first, |acc, set| acc.intersection(&set).cloned().collect()),
            SetAlgebra::Union => sets.fold(first, |mut acc, set| {
                acc.extend(set);
                acc
            }),
            SetAlgebra::Diff => sets.fold(first, |acc, set| acc.difference(&set).cloned().collect()),
        }
    }
}
