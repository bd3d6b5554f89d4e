//! Identities shared by several layers, kept at the bottom of the crate so that the lower layers'
//! types (the errors in [`crate::error`] among them) can name them without depending upward.

use std::fmt;

/// A replica of a partition, named by the id of the broker holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaId(pub u32);

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
