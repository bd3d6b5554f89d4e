//! [`Topic`]: a topic's partitions in one data directory, on one broker.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::TopicError;
use super::metadata::{self, TopicConfig, TopicMetadata, TOPIC_METADATA_SUFFIX};
use super::name::{parse_partition_dir_name, TopicName};
use super::MAX_PARTITIONS;
use crate::batch::SimpleRecord;
use crate::checkpoint;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::log::LogRead;
use crate::replica::{LeaderAndIsr, Partition, PartitionConfig, ReplicaId};
use crate::AppendInfo;

/// How to open a topic: which broker this is and which clock its logs use.
#[derive(Debug, Clone)]
pub struct TopicOptions {
    /// The broker holding the partitions, reported as their leader and only replica.
    pub broker: ReplicaId,
    /// The clock of the partitions' logs (rolling, retention) and of their leaders.
    pub clock: Arc<dyn Clock>,
}

impl Default for TopicOptions {
    fn default() -> Self {
        TopicOptions {
            broker: ReplicaId(0),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Where a partition's replicas are and which one leads (Kafka's partition assignment and
/// `LeaderAndIsr` state), for [`PartitionDescription`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaAssignment {
    /// The leader, if there is one.
    pub leader: Option<ReplicaId>,
    /// Every replica, the preferred leader first.
    pub replicas: Vec<ReplicaId>,
    /// The in-sync replicas.
    pub isr: Vec<ReplicaId>,
}

/// One partition as `kafka-topics --describe` and `kafka-log-dirs` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionDescription {
    /// The partition number.
    pub partition: u32,
    /// The first offset held.
    pub log_start_offset: i64,
    /// The offset the next record will get.
    pub log_end_offset: i64,
    /// Every offset below it is committed (what consumers may read).
    pub high_watermark: i64,
    /// Bytes of record batches.
    pub size_bytes: u64,
    /// Number of segments.
    pub segments: usize,
    /// The leader epoch, if this replica leads.
    pub leader_epoch: Option<i32>,
    /// The replicas, leader and ISR.
    pub assignment: ReplicaAssignment,
}

impl PartitionDescription {
    /// Describes one replica, `partition` of its topic, with `assignment` given by the caller
    /// (in a replicated arrangement the replica set knows it, not the replica).
    pub fn of(partition: u32, replica: &Partition, assignment: ReplicaAssignment) -> Self {
        let log = replica.log();
        PartitionDescription {
            partition,
            log_start_offset: replica.log_start_offset(),
            log_end_offset: replica.log_end_offset(),
            high_watermark: replica.high_watermark(),
            size_bytes: log.size(),
            segments: log.segment_count(),
            leader_epoch: replica.leader_epoch(),
            assignment,
        }
    }
}

/// A whole topic as [`Topic::describe`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicDescription {
    /// The topic.
    pub name: TopicName,
    /// Its configuration.
    pub config: TopicConfig,
    /// Its partitions, in order.
    pub partitions: Vec<PartitionDescription>,
}

/// Offsets of a partition a consumer cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The first offset held.
    pub log_start_offset: i64,
    /// Every offset below it is committed and readable by consumers.
    pub high_watermark: i64,
    /// The offset the next record will get.
    pub log_end_offset: i64,
}

/// What a consumer reads from: a topic's partitions, up to their high watermarks. [`Topic`]
/// implements it for one broker; a replicated arrangement implements it by reading from each
/// partition's current leader.
pub trait TopicSource {
    /// The topic.
    fn topic_name(&self) -> &TopicName;

    /// How many partitions it has.
    fn partition_count(&self) -> u32;

    /// The partition's log start, high watermark and log end.
    ///
    /// # Errors
    /// [`TopicError::UnknownPartition`], or what the implementation's storage reports.
    fn offsets(&self, partition: u32) -> Result<PartitionOffsets>;

    /// Whole batches from the one holding `from_offset`, only those below the high watermark,
    /// about `max_bytes` of them (as [`Partition::read_committed`]).
    ///
    /// # Errors
    /// [`TopicError::UnknownPartition`]; as [`crate::Log::read`].
    fn read_committed(&self, partition: u32, from_offset: i64, max_bytes: usize)
        -> Result<LogRead>;
}

/// A topic held by one broker: one [`Partition`] per partition, each in its directory
/// `<data dir>/<topic>-<partition>`, each led by this broker (replication factor 1).
///
/// # Invariants
/// - The metadata file `<data dir>/<topic>.topic-metadata` exists exactly when the topic does;
///   it is written last on create and add-partitions and removed first on delete, so a crash
///   never leaves a topic with fewer partition directories than its count says.
/// - Partition directories at or above the count, or of a topic without metadata, are leftovers
///   of such a crash; they hold nothing acknowledged and are removed before their name is used.
///
/// One process per data directory: the partitions' logs lock their directories, so a second
/// `Topic` on the same partitions fails with [`Error::Locked`].
///
/// ```
/// use partlog::batch::SimpleRecord;
/// use partlog::topic::{Topic, TopicConfig};
///
/// let data = tempfile::tempdir()?;
/// let topic = Topic::create(data.path(), "rides", 2, TopicConfig::default())?;
/// let (partition, info) = topic.send(&SimpleRecord::new(0, Some("2"), Some("ride")))?;
/// assert_eq!(info.first_offset, 0);
/// assert_eq!(topic.describe().partitions[partition as usize].high_watermark, 1);
/// topic.close()?;
/// assert_eq!(partlog::topic::list_topics(data.path())?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Topic {
    data_dir: PathBuf,
    metadata: TopicMetadata,
    options: TopicOptions,
    partitions: Vec<Partition>,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(path, op, e)
}

impl Topic {
    /// Creates topic `name` with `partitions` partitions in `data_dir` (created if needed).
    ///
    /// # Errors
    /// [`TopicError::InvalidName`], [`TopicError::InvalidPartitionCount`] (0 or above
    /// [`MAX_PARTITIONS`]), [`TopicError::AlreadyExists`]; [`Error::Config`] for a bad log
    /// config; [`Error::Io`].
    pub fn create(
        data_dir: impl AsRef<Path>,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<Topic> {
        Self::create_with(data_dir, name, partitions, config, TopicOptions::default())
    }

    /// [`Topic::create`] with options.
    ///
    /// # Errors
    /// As [`Topic::create`].
    pub fn create_with(
        data_dir: impl AsRef<Path>,
        name: &str,
        partitions: u32,
        config: TopicConfig,
        options: TopicOptions,
    ) -> Result<Topic> {
        let data_dir = data_dir.as_ref();
        let name = TopicName::new(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(TopicError::InvalidPartitionCount {
                topic: name.to_string(),
                requested: partitions,
                current: 0,
            }
            .into());
        }
        config.log.validate()?;
        fs::create_dir_all(data_dir).map_err(io(data_dir, "create directory"))?;
        if TopicMetadata::read(data_dir, &name)?.is_some() {
            return Err(TopicError::AlreadyExists {
                topic: name.to_string(),
            }
            .into());
        }
        remove_partition_dirs(data_dir, &name, 0)?;
        let metadata = TopicMetadata {
            name,
            partitions,
            config,
        };
        let mut topic = Topic {
            data_dir: data_dir.to_owned(),
            metadata,
            options,
            partitions: Vec::with_capacity(partitions as usize),
        };
        for p in 0..partitions {
            topic.partitions.push(topic.open_partition(p)?);
        }
        checkpoint::sync_dir(data_dir)?;
        // The commit point: from here on the topic exists.
        topic.metadata.write(data_dir)?;
        Ok(topic)
    }

    /// Opens topic `name` in `data_dir`, recovering its partitions as needed.
    ///
    /// # Errors
    /// [`TopicError::InvalidName`], [`TopicError::NotFound`]; [`Error::Corrupt`] for a garbled
    /// metadata file; as [`Partition::open`].
    pub fn open(data_dir: impl AsRef<Path>, name: &str) -> Result<Topic> {
        Self::open_with(data_dir, name, TopicOptions::default())
    }

    /// [`Topic::open`] with options.
    ///
    /// # Errors
    /// As [`Topic::open`].
    pub fn open_with(
        data_dir: impl AsRef<Path>,
        name: &str,
        options: TopicOptions,
    ) -> Result<Topic> {
        let data_dir = data_dir.as_ref();
        let name = TopicName::new(name)?;
        let metadata =
            TopicMetadata::read(data_dir, &name)?.ok_or_else(|| TopicError::NotFound {
                topic: name.to_string(),
            })?;
        let mut topic = Topic {
            data_dir: data_dir.to_owned(),
            partitions: Vec::with_capacity(metadata.partitions as usize),
            metadata,
            options,
        };
        for p in 0..topic.metadata.partitions {
            topic.partitions.push(topic.open_partition(p)?);
        }
        Ok(topic)
    }

    /// Opens partition `p` and makes this broker its leader at an epoch above every one it
    /// knows (as a controller does on a broker's restart).
    fn open_partition(&self, p: u32) -> Result<Partition> {
        let mut config = PartitionConfig::new(self.metadata.name.as_str(), p, self.options.broker);
        config.log = self.metadata.config.log.clone();
        config.durability = self.metadata.config.durability;
        let partition = Partition::open_with_clock(
            self.partition_dir(p),
            config,
            Arc::clone(&self.options.clock),
        )?;
        let epoch = partition
            .epoch_entries()
            .last()
            .map_or(0, |e| e.leader_epoch.saturating_add(1));
        let broker = self.options.broker;
        partition.become_leader(
            &LeaderAndIsr {
                leader_epoch: epoch,
                replicas: vec![broker],
                isr: vec![broker],
            },
            self.options.clock.now_ms(),
        )?;
        Ok(partition)
    }

    /// The directory of partition `p`.
    fn partition_dir(&self, p: u32) -> PathBuf {
        self.data_dir.join(self.metadata.name.partition_dir_name(p))
    }

    /// The topic's name.
    pub fn name(&self) -> &TopicName {
        &self.metadata.name
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The topic's configuration.
    pub fn config(&self) -> &TopicConfig {
        &self.metadata.config
    }

    /// The partitions, in order.
    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    /// Partition `p`.
    ///
    /// # Errors
    /// [`TopicError::UnknownPartition`].
    pub fn partition(&self, p: u32) -> Result<&Partition> {
        self.partitions.get(p as usize).ok_or_else(|| {
            TopicError::UnknownPartition {
                topic: self.metadata.name.to_string(),
                partition: p,
                partition_count: self.metadata.partitions,
            }
            .into()
        })
    }

    /// Appends `records` as one batch to partition `p`.
    ///
    /// # Errors
    /// [`TopicError::UnknownPartition`]; as [`Partition::append_records`].
    pub fn append(&self, p: u32, records: &[SimpleRecord]) -> Result<AppendInfo> {
        self.partition(p)?
            .append_records(records, self.options.clock.now_ms())
    }

    /// Appends one record to the partition Kafka's default partitioner picks for its key (a
    /// keyless record goes to partition `0`; use a [`Producer`](super::Producer) for Kafka's
    /// sticky spreading). Returns the partition and where the record landed.
    ///
    /// # Errors
    /// As [`Topic::append`].
    pub fn send(&self, record: &SimpleRecord) -> Result<(u32, AppendInfo)> {
        let p = match &record.key {
            Some(key) => super::partition_for_key(key, self.metadata.partitions).unwrap_or(0),
            None => 0,
        };
        Ok((p, self.append(p, std::slice::from_ref(record))?))
    }

    /// Describes every partition, this broker as its leader and only replica.
    pub fn describe(&self) -> TopicDescription {
        let broker = self.options.broker;
        self.describe_with(|_, replica| ReplicaAssignment {
            leader: replica.leader_epoch().map(|_| broker),
            replicas: vec![broker],
            isr: replica.isr().unwrap_or_default(),
        })
    }

    /// Describes every partition, with the replicas and leader that `assignment` gives for each
    /// (partition number and this broker's replica).
    pub fn describe_with(
        &self,
        mut assignment: impl FnMut(u32, &Partition) -> ReplicaAssignment,
    ) -> TopicDescription {
        let partitions = (0u32..)
            .zip(&self.partitions)
            .map(|(p, replica)| PartitionDescription::of(p, replica, assignment(p, replica)))
            .collect();
        TopicDescription {
            name: self.metadata.name.clone(),
            config: self.metadata.config.clone(),
            partitions,
        }
    }

    /// Grows the topic to `partitions` partitions; the existing ones keep their data. Keys then
    /// map to other partitions than before, as in Kafka.
    ///
    /// # Errors
    /// [`TopicError::InvalidPartitionCount`] unless `partitions` is above the current count
    /// and at most [`MAX_PARTITIONS`]; as [`Partition::open`]. On error the topic keeps its
    /// old count.
    pub fn add_partitions(&mut self, partitions: u32) -> Result<()> {
        let current = self.metadata.partitions;
        if partitions <= current || partitions > MAX_PARTITIONS {
            return Err(TopicError::InvalidPartitionCount {
                topic: self.metadata.name.to_string(),
                requested: partitions,
                current,
            }
            .into());
        }
        remove_partition_dirs(&self.data_dir, &self.metadata.name, current)?;
        let mut added = Vec::new();
        for p in current..partitions {
            added.push(self.open_partition(p)?);
        }
        checkpoint::sync_dir(&self.data_dir)?;
        let mut metadata = self.metadata.clone();
        metadata.partitions = partitions;
        metadata.write(&self.data_dir)?;
        self.metadata = metadata;
        self.partitions.extend(added);
        Ok(())
    }

    /// Flushes every partition.
    ///
    /// # Errors
    /// As [`crate::Log::flush`].
    pub fn flush(&self) -> Result<()> {
        self.partitions.iter().try_for_each(|p| p.flush())
    }

    /// Closes every partition cleanly (checkpointing the high watermarks).
    ///
    /// # Errors
    /// The first error of [`Partition::close`]; every partition is closed regardless.
    pub fn close(self) -> Result<()> {
        let mut first = Ok(());
        for p in self.partitions {
            let r = p.close();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Drops the topic as a killed process would: nothing flushed or checkpointed.
    pub fn abandon(self) {
        for p in self.partitions {
            p.abandon();
        }
    }

    /// Deletes the topic: its metadata first (from then on it does not exist), then its
    /// partitions' directories.
    ///
    /// # Errors
    /// [`Error::Io`]; if the metadata was removed, leftover directories are removed by the
    /// next create of the same name.
    pub fn delete(self) -> Result<()> {
        let data_dir = self.data_dir.clone();
        let name = self.metadata.name.clone();
        // Closed, not abandoned: nothing should be mapped when the files go.
        let _ = self.close();
        checkpoint::remove_if_exists(&metadata::path(&data_dir, &name))?;
        checkpoint::sync_dir(&data_dir)?;
        remove_partition_dirs(&data_dir, &name, 0)
    }
}

impl TopicSource for Topic {
    fn topic_name(&self) -> &TopicName {
        &self.metadata.name
    }

    fn partition_count(&self) -> u32 {
        self.metadata.partitions
    }

    fn offsets(&self, partition: u32) -> Result<PartitionOffsets> {
        let p = self.partition(partition)?;
        Ok(PartitionOffsets {
            log_start_offset: p.log_start_offset(),
            high_watermark: p.high_watermark(),
            log_end_offset: p.log_end_offset(),
        })
    }

    fn read_committed(
        &self,
        partition: u32,
        from_offset: i64,
        max_bytes: usize,
    ) -> Result<LogRead> {
        self.partition(partition)?
            .read_committed(from_offset, max_bytes)
    }
}

/// Deletes topic `name` from `data_dir`.
///
/// # Errors
/// [`TopicError::InvalidName`], [`TopicError::NotFound`]; [`Error::Locked`] if the topic is
/// open; as [`Topic::delete`].
pub fn delete_topic(data_dir: impl AsRef<Path>, name: &str) -> Result<()> {
    Topic::open(data_dir, name)?.delete()
}

/// The topics in `data_dir`, by name (files that are not valid topic metadata names are
/// ignored). An absent directory holds no topics.
///
/// # Errors
/// [`Error::Io`] if the directory cannot be listed.
pub fn list_topics(data_dir: impl AsRef<Path>) -> Result<Vec<TopicName>> {
    let data_dir = data_dir.as_ref();
    let entries = match fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(data_dir, "list", e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(data_dir, "list"))?;
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|n| n.strip_suffix(TOPIC_METADATA_SUFFIX))
        else {
            continue;
        };
        if let Ok(name) = TopicName::new(name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Removes the directories of partitions `from..` of `name` (leftovers of a crash mid-create,
/// mid-add or mid-delete).
fn remove_partition_dirs(data_dir: &Path, name: &TopicName, from: u32) -> Result<()> {
    let entries = match fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(data_dir, "list", e)),
    };
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(io(data_dir, "list"))?;
        let file_name = entry.file_name();
        let Some((topic, p)) = file_name.to_str().and_then(parse_partition_dir_name) else {
            continue;
        };
        if &topic == name && p >= from {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(io(&path, "remove directory"))?;
            removed = true;
        }
    }
    if removed {
        checkpoint::sync_dir(data_dir)?;
    }
    Ok(())
}
