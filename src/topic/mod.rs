//! Topics, producers' partitioning, and consumer groups: the layer over
//! [`Partition`](crate::replica::Partition) that Kafka's clients see.
//!
//! - [`Topic`]: a data directory holding one sub-directory per partition, `<topic>-<partition>`
//!   as Kafka names them, and a metadata file per topic; create, open, describe, delete, add
//!   partitions. The data directory is a Kafka log directory ([`DataDir`]: `meta.properties`,
//!   the shared checkpoint files, `partition.metadata`, Kafka's `.kafka_cleanshutdown`). Names are [`TopicName`]s, validated as Kafka validates them, so a name is always
//!   one safe path component.
//! - [`murmur2`], [`partition_for_key`], [`Partitioner`]: Kafka's default partitioner, byte for
//!   byte (keyed records), and its sticky behaviour (keyless records).
//! - [`Producer`]: per-partition batches through the partitioner.
//! - [`OffsetStore`], [`GroupCoordinator`], [`Consumer`]: consumer groups with durable committed
//!   offsets, generations, session timeouts and Kafka's [`Assignor`]s. A data directory's
//!   store is the file [`DATA_DIR_OFFSETS_FILE`] at its top
//!   ([`GroupCoordinator::open_data_dir`]), which a Kafka broker ignores; a sub-directory (the
//!   old `__consumer_offsets/`, taken over on open) would make a broker refuse the directory.
//!
//! Dependencies point down: this module uses `replica` and `log`, nothing uses it but the CLI.

mod assignor;
mod consumer;
mod data_dir;
mod group;
mod metadata;
mod name;
mod offsets;
mod partitioner;
mod producer;
mod store;

pub use crate::error::{GroupError, TopicError};
pub use assignor::{assign, Assignor, MemberSubscription, TopicPartition};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset};
pub use data_dir::{
    read_partition_metadata, write_partition_metadata, DataDir, MetaProperties,
    PartitionCheckpoint, Uuid, UuidParseError, CHECKPOINT_LOCK_FILE, CLEANER_OFFSET_CHECKPOINT,
    KAFKA_CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_CHECKPOINT, META_PROPERTIES, PARTITION_METADATA,
    RECOVERY_POINT_CHECKPOINT, REPLICATION_OFFSET_CHECKPOINT,
};
pub use group::{
    CoordinatorConfig, GroupCoordinator, GroupDescription, JoinRequest, MemberDescription,
    Membership, DEFAULT_MAX_SESSION_TIMEOUT_MS, DEFAULT_MIN_SESSION_TIMEOUT_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
};
pub use metadata::{TopicConfig, TOPIC_METADATA_SUFFIX};
pub use name::{parse_partition_dir_name, TopicName, MAX_TOPIC_NAME_LEN};
pub use offsets::{
    OffsetStore, OffsetsRecovery, DATA_DIR_OFFSETS_FILE, DATA_DIR_OFFSETS_LOCK, LEGACY_OFFSETS_DIR,
    MAX_FRAME_BYTES, OFFSETS_FILE,
};
pub use partitioner::{murmur2, partition_for_key, to_positive, Partitioner, DEFAULT_BATCH_SIZE};
pub use producer::{Producer, ProducerConfig};
pub use store::{
    delete_topic, list_topics, PartitionDescription, PartitionOffsets, ReplicaAssignment, Topic,
    TopicDescription, TopicOptions, TopicSource,
};

pub use crate::error::MAX_PARTITIONS;
