//! Topic names, validated as Kafka validates them (`Topic.validate`): 1 to 249 characters from
//! `[a-zA-Z0-9._-]`, and not `.` or `..`. So a valid name is one path component that can never
//! reach outside the data directory: no separator, no NUL, no parent reference, nothing
//! non-ASCII that a file system might fold into something else.

use std::fmt;

use crate::error::TopicError;

/// Longest topic name Kafka accepts: 249, so that `<name>-<partition>` and the suffixes Kafka
/// adds to partition directories stay under the usual 255-byte file name limit.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A valid topic name. The only way to build one is [`TopicName::new`] (or `parse`), which
/// checks Kafka's rules, so holding a `TopicName` proves it is a safe single path component.
///
/// ```
/// use partlog::topic::TopicName;
/// assert!(TopicName::new("rides").is_ok());
/// assert!(TopicName::new("../etc").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(String);

impl TopicName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`TopicError::InvalidName`] naming the rule broken.
    pub fn new(name: impl Into<String>) -> Result<TopicName, TopicError> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name == "." || name == ".." {
            Some("must not be '.' or '..'")
        } else if name.len() > MAX_TOPIC_NAME_LEN {
            Some("is longer than 249 characters")
        } else if !name.bytes().all(is_legal) {
            Some("may contain only ASCII letters, digits, '.', '_' and '-'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(TopicError::InvalidName { name, reason }),
            None => Ok(TopicName(name)),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory name of one of its partitions, as Kafka names it: `<topic>-<partition>`.
    pub fn partition_dir_name(&self, partition: u32) -> String {
        format!("{}-{partition}", self.0)
    }
}

fn is_legal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for TopicName {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicName::new(s)
    }
}

/// Splits a partition directory name `<topic>-<partition>` into its parts; `None` if it is not
/// one (the partition must be a plain decimal `u32`, the topic a valid name).
pub fn parse_partition_dir_name(dir_name: &str) -> Option<(TopicName, u32)> {
    let (topic, partition) = dir_name.rsplit_once('-')?;
    if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // No leading zeros: `x-01` is not a name Kafka would give partition 1.
    if partition.len() > 1 && partition.starts_with('0') {
        return None;
    }
    let partition = partition.parse().ok()?;
    Some((TopicName::new(topic).ok()?, partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dir_names_round_trip() {
        let t = TopicName::new("a-1").unwrap();
        assert_eq!(t.partition_dir_name(12), "a-1-12");
        assert_eq!(parse_partition_dir_name("a-1-12"), Some((t, 12)));
        for bad in ["a", "a-", "-1", "a-01", "a-x", "a-4294967296", "../x-1"] {
            assert_eq!(parse_partition_dir_name(bad), None, "{bad}");
        }
    }
}
