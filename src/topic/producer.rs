//! [`Producer`]: batches records per partition, as Kafka's producer accumulates them, and
//! appends each partition's batch once it reaches `batch_size` bytes (or on flush).

use crate::batch::{BatchBuilder, Compression, CompressionLevel, SimpleRecord};
use crate::error::Result;
use crate::AppendInfo;

use super::partitioner::{Partitioner, DEFAULT_BATCH_SIZE};
use super::store::Topic;

/// A producer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Kafka's `batch.size`: bytes per partition batch before it is appended, and the bytes
    /// after which the sticky partition of keyless records moves on.
    pub batch_size: usize,
    /// Seed of the sticky partitioner's random draws.
    pub seed: u64,
    /// Kafka's producer `compression.type` (with its level, KIP-390): the codec each batch is
    /// compressed with before it is appended. The topic's own `compression.type` then decides
    /// whether it is stored so or re-encoded.
    pub compression: CompressionLevel,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            batch_size: DEFAULT_BATCH_SIZE,
            seed: 0,
            compression: CompressionLevel::default_for(Compression::None),
        }
    }
}

/// A producer to one [`Topic`]. Records sit in per-partition batches until a batch is full or
/// [`flush`](Producer::flush) is called; drop without flushing loses the unsent ones, as a
/// Kafka producer closed without flushing does.
///
/// ```
/// use partlog::batch::SimpleRecord;
/// use partlog::topic::{partition_for_key, Producer, ProducerConfig, Topic, TopicConfig};
///
/// let data = tempfile::tempdir()?;
/// let topic = Topic::create(data.path(), "rides", 2, TopicConfig::default())?;
/// let mut producer = Producer::new(&topic, ProducerConfig::default());
/// let p = producer.send(SimpleRecord::new(0, Some("2"), Some("a ride")))?;
/// assert_eq!(Some(p), partition_for_key(b"2", 2));
/// let acked = producer.flush()?;
/// assert_eq!(acked.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Producer<'a> {
    topic: &'a Topic,
    config: ProducerConfig,
    partitioner: Partitioner,
    /// Per partition: the records waiting and their estimated bytes.
    pending: Vec<(Vec<SimpleRecord>, usize)>,
}

fn size_of(r: &SimpleRecord) -> usize {
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(0, bytes::Bytes::len);
    len(&r.key)
        + len(&r.value)
        + r.headers
            .iter()
            .map(|h| h.key.len() + len(&h.value))
            .sum::<usize>()
        + 16
}

impl<'a> Producer<'a> {
    /// A producer to `topic`.
    pub fn new(topic: &'a Topic, config: ProducerConfig) -> Self {
        Producer {
            topic,
            config,
            partitioner: Partitioner::new(config.batch_size, config.seed),
            pending: Vec::new(),
        }
    }

    /// Queues `record` for the partition the default partitioner picks, appending that
    /// partition's batch if it is now full. Returns the partition.
    ///
    /// # Errors
    /// As [`Topic::append`] when a full batch is appended (the batch is then dropped).
    pub fn send(&mut self, record: SimpleRecord) -> Result<u32> {
        let partitions = self.topic.partitions().len() as u32;
        let size = size_of(&record);
        let p = self
            .partitioner
            .partition(record.key.as_deref(), size, partitions)
            .unwrap_or(0);
        if self.pending.len() < partitions as usize {
            self.pending
                .resize_with(partitions as usize, Default::default);
        }
        let slot = &mut self.pending[p as usize];
        slot.0.push(record);
        slot.1 += size;
        if slot.1 >= self.config.batch_size {
            self.send_batch(p)?;
        }
        Ok(p)
    }

    fn send_batch(&mut self, p: u32) -> Result<Option<AppendInfo>> {
        let Some(slot) = self.pending.get_mut(p as usize) else {
            return Ok(None);
        };
        let (records, _) = std::mem::take(slot);
        if records.is_empty() {
            return Ok(None);
        }
        if self.config.compression.codec() == Compression::None {
            return self.topic.append(p, &records).map(Some);
        }
        let mut b = BatchBuilder::new().compression_level(self.config.compression);
        for r in &records {
            b.push(r)?;
        }
        self.topic.append_batch(p, &b.build()?).map(Some)
    }

    /// Appends every waiting batch. Returns where each landed, by partition.
    ///
    /// # Errors
    /// As [`Topic::append`]; batches of other partitions stay queued.
    pub fn flush(&mut self) -> Result<Vec<(u32, AppendInfo)>> {
        let mut acked = Vec::new();
        for p in 0..self.pending.len() as u32 {
            if let Some(info) = self.send_batch(p)? {
                acked.push((p, info));
            }
        }
        Ok(acked)
    }
}
