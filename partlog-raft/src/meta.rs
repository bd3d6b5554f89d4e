//! The Raft state that is not in the log: the vote, the committed log id and the last purged log
//! id, each in a small JSON file beside the segments, written atomically (temp file, fsync,
//! rename, fsync the directory: `partlog::checkpoint::write_atomically`).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// The vote: `{"leader_id":{"term":..,"voted_for":..},"committed":..}`.
pub const VOTE_FILE: &str = "raft-vote";
/// The last committed log id openraft saved (`null` or `{"leader_id":term,"index":..}`).
pub const COMMITTED_FILE: &str = "raft-committed";
/// The last purged log id: written before the log start offset moves past it.
pub const PURGED_FILE: &str = "raft-purged";

/// One checkpoint file holding a JSON value.
#[derive(Debug)]
pub(crate) struct JsonFile {
    path: PathBuf,
}

impl JsonFile {
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        JsonFile {
            path: dir.join(name),
        }
    }

    /// The value in the file; `None` if there is no file.
    pub(crate) fn read<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(partlog::Error::Io {
                    path: self.path.clone(),
                    op: "read",
                    source: e,
                }
                .into())
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// Replaces the file's value, durably.
    pub(crate) fn write<T: Serialize>(&self, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Checkpoint {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        partlog::checkpoint::write_atomically(&self.path, &bytes)?;
        Ok(())
    }
}
