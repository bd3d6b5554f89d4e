//! [`Topic`]: a topic's partitions in one data directory, on one broker.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::collections::BTreeMap;

use super::data_dir::{self, DataDir, PartitionCheckpoint, Uuid};
use super::metadata::{self, TopicConfig, TopicMetadata, TOPIC_METADATA_SUFFIX};
use super::name::{parse_partition_dir_name, TopicName};
use super::MAX_PARTITIONS;
use crate::batch::{RecordBatch, SimpleRecord};
use crate::checkpoint;
use crate::clock::{Clock, SystemClock};
use crate::error::TopicError;
use crate::error::{Error, Result};
use crate::log::{ExternalCheckpoints, IsolationLevel, LogRead};
use crate::replica::{LeaderAndIsr, Partition, PartitionConfig, ReplicaId};
use crate::AppendInfo;

/// How to open a topic: which broker this is and which clock its logs use.
#[derive(Debug, Clone)]
pub struct TopicOptions {
    /// The broker holding the partitions, reported as their leader and only replica; also the
    /// data directory's `node.id` in `meta.properties` (a directory of another node is refused).
    pub broker: ReplicaId,
    /// The clock of the partitions' logs (rolling, retention) and of their leaders.
    pub clock: Arc<dyn Clock>,
    /// The topic id [`Topic::create_with`] gives the topic (a random one if `None`): set it to
    /// the id a Kafka controller assigned, so that the partitions' `partition.metadata` match
    /// the broker's metadata.
    pub topic_id: Option<Uuid>,
    /// The cluster id written to a new data directory's `meta.properties` (a random one if
    /// `None`), and checked against an existing one (see [`DataDir::open`]).
    pub cluster_id: Option<String>,
}

impl Default for TopicOptions {
    fn default() -> Self {
        TopicOptions {
            broker: ReplicaId(0),
            clock: Arc::new(SystemClock),
            topic_id: None,
            cluster_id: None,
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
    /// Its id (Kafka's `TopicId`, in each partition's `partition.metadata`).
    pub topic_id: Option<Uuid>,
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

    /// [`TopicSource::read_committed`] at an isolation level (as
    /// [`Partition::read_isolated`]): for [`IsolationLevel::ReadCommitted`] only below the
    /// last stable offset, with the aborted transactions of the range. The default serves
    /// [`IsolationLevel::ReadUncommitted`] only.
    ///
    /// # Errors
    /// As [`TopicSource::read_committed`];
    /// [`TopicError::ReadCommittedUnsupported`] from the default for `read_committed`.
    fn read_isolated(
        &self,
        partition: u32,
        from_offset: i64,
        max_bytes: usize,
        isolation: IsolationLevel,
    ) -> Result<LogRead> {
        match isolation {
            IsolationLevel::ReadUncommitted => {
                self.read_committed(partition, from_offset, max_bytes)
            }
            _ => Err(TopicError::ReadCommittedUnsupported {
                topic: self.topic_name().to_string(),
            }
            .into()),
        }
    }
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
/// - Each partition's `partition.metadata` (the topic id) is written after the metadata file on
///   create and add-partitions and removed before it on delete, so a leftover never holds one.
///   A directory that does is a broker's: create and add-partitions refuse to remove it
///   ([`TopicError::ForeignPartitionDir`]); [`Topic::adopt`] opens it.
///
/// One process per data directory: the partitions' logs lock their directories, so a second
/// `Topic` on the same partitions fails with [`Error::Locked`].
///
/// # Kafka's data-directory layout
/// The data directory is a Kafka log directory ([`DataDir`]): `meta.properties`, the shared
/// `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
/// `replication-offset-checkpoint` (written by [`Topic::flush`], [`Topic::checkpoint`] and
/// [`Topic::close`], read when a partition opens), and a `partition.metadata` with the topic id
/// in every partition directory. Directories written before partlog kept these files still
/// open: each partition also keeps its own checkpoints, used where the shared files have no
/// entry. A topic whose partition directories a Kafka broker created opens with
/// [`Topic::adopt`].
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
    dir: DataDir,
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
        let dir = DataDir::open(data_dir, node_id(&options)?, options.cluster_id.as_deref())?;
        if TopicMetadata::read(data_dir, &name)?.is_some() {
            return Err(TopicError::AlreadyExists {
                topic: name.to_string(),
            }
            .into());
        }
        remove_partition_dirs(data_dir, &name, 0)?;
        // Leftover lines of an earlier topic of this name must not be read as this one's.
        dir.remove_topic(&name)?;
        let topic_id = match options.topic_id {
            // Kafka's readers refuse the zero id (no id) in `partition.metadata`.
            Some(id) if id == Uuid::ZERO => {
                return Err(Error::Config {
                    knob: "topic_id",
                    value: id.to_string(),
                    reason: "must not be the zero uuid",
                })
            }
            Some(id) => id,
            None => Uuid::random()?,
        };
        let metadata = TopicMetadata {
            name,
            partitions,
            config,
            topic_id: Some(topic_id),
        };
        let mut topic = Topic {
            data_dir: data_dir.to_owned(),
            dir,
            metadata,
            options,
            partitions: Vec::with_capacity(partitions as usize),
        };
        topic.dir.reconcile_clean_shutdown_markers()?;
        for p in 0..partitions {
            let partition = topic.open_partition(p, PartitionCheckpoint::default())?;
            topic.partitions.push(partition);
        }
        topic.dir.take_clean_shutdown_marker()?;
        checkpoint::sync_dir(data_dir)?;
        // The commit point: from here on the topic exists.
        topic.metadata.write(data_dir)?;
        // Only now the topic ids: a partition directory holding one without a metadata file
        // is never a leftover of this create (see `TopicError::ForeignPartitionDir`). Should
        // this fail, the next open writes them.
        for p in 0..partitions {
            data_dir::write_partition_metadata(&topic.partition_dir(p), topic_id)?;
        }
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
        let dir = DataDir::open(data_dir, node_id(&options)?, options.cluster_id.as_deref())?;
        Self::open_partitions(data_dir, dir, metadata, options)
    }

    /// Opens a topic whose partition directories `<topic>-0` .. `<topic>-<n-1>` exist in
    /// `data_dir` but which has no partlog metadata file: directories a Kafka broker created
    /// (each with Kafka's `partition.metadata`, all with one topic id), or partlog's own after
    /// the metadata file was lost. The topic gets `config` and the id the directories hold
    /// (or a new one if none holds one), and its metadata file is written, so later opens use
    /// [`Topic::open`]. A topic that has a metadata file is opened as [`Topic::open_with`] does.
    ///
    /// Not done by [`Topic::open`] on its own: directories without metadata are also what a
    /// crash in the middle of [`Topic::create`] leaves, which must not come back as a topic
    /// unless the caller says so.
    ///
    /// # Errors
    /// [`TopicError::CannotAdopt`] if there is no `<topic>-0`, the numbers have a gap, or the
    /// directories hold different topic ids; [`Error::Config`] for a bad log config; as
    /// [`Topic::open`].
    pub fn adopt(
        data_dir: impl AsRef<Path>,
        name: &str,
        config: TopicConfig,
        options: TopicOptions,
    ) -> Result<Topic> {
        let data_dir = data_dir.as_ref();
        let name = TopicName::new(name)?;
        if TopicMetadata::read(data_dir, &name)?.is_some() {
            return Self::open_with(data_dir, name.as_str(), options);
        }
        config.log.validate()?;
        let cannot = |reason: String| -> Error {
            TopicError::CannotAdopt {
                topic: name.to_string(),
                reason,
            }
            .into()
        };
        let mut numbers = Vec::new();
        let entries = fs::read_dir(data_dir).map_err(io(data_dir, "list"))?;
        for entry in entries {
            let entry = entry.map_err(io(data_dir, "list"))?;
            if let Some((t, p)) = entry
                .file_name()
                .to_str()
                .and_then(parse_partition_dir_name)
            {
                if t == name && entry.path().is_dir() {
                    numbers.push(p);
                }
            }
        }
        numbers.sort_unstable();
        let count = u32::try_from(numbers.len()).unwrap_or(u32::MAX);
        if count == 0 || count > MAX_PARTITIONS || numbers.iter().copied().ne(0..count) {
            return Err(cannot(format!(
                "expected partition directories {name}-0 to {name}-N, found numbers {numbers:?}"
            )));
        }
        let mut topic_id = None;
        for p in 0..count {
            let found =
                data_dir::read_partition_metadata(&data_dir.join(name.partition_dir_name(p)))?;
            match (topic_id, found) {
                (Some(a), Some(b)) if a != b => {
                    return Err(cannot(format!(
                        "partition {p} holds topic id {b}, partition 0 holds {a}"
                    )))
                }
                (None, Some(b)) => topic_id = Some(b),
                _ => {}
            }
        }
        let dir = DataDir::open(data_dir, node_id(&options)?, options.cluster_id.as_deref())?;
        let metadata = TopicMetadata {
            name,
            partitions: count,
            config,
            topic_id: Some(match topic_id {
                Some(id) => id,
                None => Uuid::random()?,
            }),
        };
        let topic = Self::open_partitions(data_dir, dir, metadata, options)?;
        // The commit point of the adoption.
        topic.metadata.write(data_dir)?;
        Ok(topic)
    }

    /// Opens every partition of `metadata`, with the shared checkpoints' values, checks (or
    /// writes) each one's `partition.metadata`, and gives a topic from before topic ids one.
    fn open_partitions(
        data_dir: &Path,
        dir: DataDir,
        mut metadata: TopicMetadata,
        options: TopicOptions,
    ) -> Result<Topic> {
        let checkpoints = dir.checkpoints(&metadata.name)?;
        let had_id = metadata.topic_id.is_some();
        if metadata.topic_id.is_none() {
            // Written before partlog kept topic ids: take one a partition holds, else a new one.
            for p in 0..metadata.partitions {
                let pdir = data_dir.join(metadata.name.partition_dir_name(p));
                if let Some(id) = data_dir::read_partition_metadata(&pdir)? {
                    metadata.topic_id = Some(id);
                    break;
                }
            }
            if metadata.topic_id.is_none() {
                metadata.topic_id = Some(Uuid::random()?);
            }
        }
        let mut topic = Topic {
            data_dir: data_dir.to_owned(),
            dir,
            partitions: Vec::with_capacity(metadata.partitions as usize),
            metadata,
            options,
        };
        topic.dir.reconcile_clean_shutdown_markers()?;
        for p in 0..topic.metadata.partitions {
            topic.check_topic_id(p)?;
            let c = checkpoints.get(&p).copied().unwrap_or_default();
            topic.partitions.push(topic.open_partition(p, c)?);
            topic.check_topic_id(p)?;
        }
        if !had_id {
            topic.metadata.write(data_dir)?;
        }
        topic.dir.take_clean_shutdown_marker()?;
        Ok(topic)
    }

    /// Checks partition `p`'s `partition.metadata` against the topic id, writing it if the
    /// directory exists without one.
    fn check_topic_id(&self, p: u32) -> Result<()> {
        let Some(expected) = self.metadata.topic_id else {
            return Ok(());
        };
        let pdir = self.partition_dir(p);
        if !pdir.is_dir() {
            return Ok(());
        }
        match data_dir::read_partition_metadata(&pdir)? {
            Some(found) if found != expected => Err(TopicError::InconsistentTopicId {
                topic: self.metadata.name.to_string(),
                partition: p,
                expected: expected.to_string(),
                found: found.to_string(),
            }
            .into()),
            Some(_) => Ok(()),
            None => data_dir::write_partition_metadata(&pdir, expected),
        }
    }

    /// The topic id (Kafka's; in every partition's `partition.metadata`).
    pub fn topic_id(&self) -> Option<Uuid> {
        self.metadata.topic_id
    }

    /// The data directory as Kafka's log directory (its `meta.properties`, shared checkpoints).
    pub fn data_dir_files(&self) -> &DataDir {
        &self.dir
    }

    /// Writes every partition's recovery point, log start offset (where above the first
    /// segment's base, as Kafka writes it) and high watermark to the data directory's shared
    /// checkpoint files, keeping other topics' lines.
    ///
    /// # Errors
    /// As [`DataDir::write_checkpoints`].
    pub fn checkpoint(&self) -> Result<()> {
        let mut entries = BTreeMap::new();
        for (p, partition) in (0u32..).zip(&self.partitions) {
            let log = partition.log();
            let first_base = log.segment_base_offsets().first().copied().unwrap_or(0);
            let start = partition.log_start_offset();
            entries.insert(
                p,
                PartitionCheckpoint::new(
                    Some(log.recovery_point()),
                    (start > first_base).then_some(start),
                    Some(partition.high_watermark()),
                ),
            );
        }
        self.dir.write_checkpoints(&self.metadata.name, &entries)
    }

    /// Opens partition `p` and makes this broker its leader at an epoch above every one it
    /// knows (as a controller does on a broker's restart).
    fn open_partition(&self, p: u32, checkpoint: PartitionCheckpoint) -> Result<Partition> {
        let mut config = PartitionConfig::new(self.metadata.name.as_str(), p, self.options.broker);
        config.log = self.metadata.config.log.clone();
        config.durability = self.metadata.config.durability;
        let partition = Partition::open_with_checkpoints(
            self.partition_dir(p),
            config,
            Arc::clone(&self.options.clock),
            ExternalCheckpoints::new(checkpoint.recovery_point, checkpoint.log_start_offset),
            checkpoint.high_watermark,
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

    /// Appends a batch built elsewhere (a producer's, maybe compressed) to partition `p`, as
    /// its leader: validated as a client's batch and stored in the codec the topic's
    /// `compression.type` asks for.
    ///
    /// # Errors
    /// [`TopicError::UnknownPartition`]; as [`Partition::append_as_leader`].
    pub fn append_batch(&self, p: u32, batch: &RecordBatch) -> Result<AppendInfo> {
        self.partition(p)?
            .append_as_leader(batch, self.options.clock.now_ms())
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
            topic_id: self.metadata.topic_id,
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
            added.push(self.open_partition(p, PartitionCheckpoint::default())?);
        }
        checkpoint::sync_dir(&self.data_dir)?;
        let mut metadata = self.metadata.clone();
        metadata.partitions = partitions;
        metadata.write(&self.data_dir)?;
        self.metadata = metadata;
        self.partitions.extend(added);
        // After the commit point, as on create.
        for p in current..partitions {
            self.check_topic_id(p)?;
        }
        Ok(())
    }

    /// Flushes every partition, then writes the data directory's shared checkpoints
    /// ([`Topic::checkpoint`]), so that a broker opening the directory after a crash starts
    /// from fresh recovery points and high watermarks.
    ///
    /// The shared files cost two `fsync`s each when they change: measured here (debug build,
    /// this VM's disk, 4 partitions, one record each per round) a round of partition flushes
    /// took 14.5 ms and `Topic::flush` 39 ms. A caller that flushes on its hot path flushes
    /// the partitions ([`Partition::flush`]) and calls [`Topic::tick`] or
    /// [`Topic::checkpoint`] on a timer instead, as Kafka writes these files every
    /// `log.flush.offset.checkpoint.interval.ms` (60 s): partlog's own per-partition files
    /// keep what recovery needs either way.
    ///
    /// # Errors
    /// As [`crate::Log::flush`] and [`Topic::checkpoint`].
    pub fn flush(&self) -> Result<()> {
        self.partitions.iter().try_for_each(|p| p.flush())?;
        self.checkpoint()
    }

    /// The periodic work of every partition as of `now_ms` ([`Partition::tick`]: a flush when
    /// `flush.ms` is due, then retention below the high watermark), then the data directory's
    /// shared checkpoints ([`Topic::checkpoint`]; Kafka writes them on a timer,
    /// `log.flush.offset.checkpoint.interval.ms`). Returns each partition's retention report.
    ///
    /// # Errors
    /// The first error of [`Partition::tick`] or [`Topic::checkpoint`].
    pub fn tick(&self, now_ms: i64) -> Result<Vec<crate::log::RetentionReport>> {
        let reports = self
            .partitions
            .iter()
            .map(|p| p.tick(now_ms))
            .collect::<Result<Vec<_>>>()?;
        self.checkpoint()?;
        Ok(reports)
    }

    /// Closes every partition cleanly (checkpointing the high watermarks), after flushing them
    /// and writing the data directory's shared checkpoints ([`Topic::checkpoint`]); then, if
    /// nothing in the data directory is open any more, Kafka's clean-shutdown marker (see
    /// [`DataDir`]'s docs), so that a broker started on it recovers nothing.
    ///
    /// # Errors
    /// The first error of the flush, the checkpoint or [`Partition::close`]; every partition is
    /// closed regardless.
    pub fn close(self) -> Result<()> {
        let mut first = self.flush();
        for p in self.partitions {
            let r = p.close();
            if first.is_ok() {
                first = r;
            }
        }
        first?;
        // Kafka's clean-shutdown marker, once nothing in the directory is open.
        self.dir.write_clean_shutdown_marker_if_all_closed()?;
        Ok(())
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
        let dir = self.dir.clone();
        let count = self.metadata.partitions;
        let _ = self.close();
        // The topic ids go first, so that a crash leaves directories that the next create
        // may remove (see `TopicError::ForeignPartitionDir`); the topic still exists until
        // its metadata goes, and an open writes them again.
        for p in 0..count {
            checkpoint::remove_if_exists(
                &data_dir
                    .join(name.partition_dir_name(p))
                    .join(data_dir::PARTITION_METADATA),
            )?;
        }
        checkpoint::remove_if_exists(&metadata::path(&data_dir, &name))?;
        checkpoint::sync_dir(&data_dir)?;
        remove_partition_dirs(&data_dir, &name, 0)?;
        dir.remove_topic(&name)
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
    fn read_isolated(
        &self,
        partition: u32,
        from_offset: i64,
        max_bytes: usize,
        isolation: IsolationLevel,
    ) -> Result<LogRead> {
        self.partition(partition)?
            .read_isolated(from_offset, max_bytes, isolation)
    }
}

/// The data directory's `node.id`: the broker's id.
fn node_id(options: &TopicOptions) -> Result<i32> {
    i32::try_from(options.broker.0).map_err(|_| Error::Config {
        knob: "broker",
        value: options.broker.0.to_string(),
        reason: "must fit Kafka's node.id (an i32)",
    })
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
/// mid-add or mid-delete), after checking that none holds a topic id: those are not leftovers
/// but a broker's (see [`TopicError::ForeignPartitionDir`]), and nothing is removed.
fn remove_partition_dirs(data_dir: &Path, name: &TopicName, from: u32) -> Result<()> {
    let entries = match fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(data_dir, "list", e)),
    };
    let mut leftovers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(data_dir, "list"))?;
        let file_name = entry.file_name();
        let Some((topic, p)) = file_name.to_str().and_then(parse_partition_dir_name) else {
            continue;
        };
        if &topic == name && p >= from {
            let path = entry.path();
            if path.join(data_dir::PARTITION_METADATA).exists() {
                return Err(TopicError::ForeignPartitionDir {
                    topic: name.to_string(),
                    partition: p,
                }
                .into());
            }
            leftovers.push(path);
        }
    }
    let removed = !leftovers.is_empty();
    for path in leftovers {
        fs::remove_dir_all(&path).map_err(io(&path, "remove directory"))?;
    }
    if removed {
        checkpoint::sync_dir(data_dir)?;
    }
    Ok(())
}
