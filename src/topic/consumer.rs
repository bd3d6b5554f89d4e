//! [`Consumer`]: a group member that polls its assigned partitions and commits its progress.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::assignor::{Assignor, TopicPartition};
use super::group::{GroupCoordinator, JoinRequest, Membership, DEFAULT_SESSION_TIMEOUT_MS};
use super::name::TopicName;
use super::store::TopicSource;
use crate::batch::Header;
use crate::error::{Error, Result};
use crate::error::{GroupError, TopicError};
use crate::log::{IsolationLevel, ReadCommittedFilter};

/// Where to start a partition that has no committed offset, or whose committed offset is no
/// longer in the log (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OffsetReset {
    /// The log start offset.
    Earliest,
    /// The high watermark: only records produced from now on. Kafka's default.
    #[default]
    Latest,
}

/// A consumer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The group to join.
    pub group: String,
    /// The client's name.
    pub client_id: String,
    /// Kafka's `session.timeout.ms`.
    pub session_timeout_ms: i64,
    /// Kafka's `partition.assignment.strategy`.
    pub assignor: Assignor,
    /// Kafka's `auto.offset.reset`.
    pub auto_offset_reset: OffsetReset,
    /// Kafka's `max.poll.records`.
    pub max_poll_records: usize,
    /// Bytes read from one partition per poll (Kafka's `max.partition.fetch.bytes`).
    pub max_partition_fetch_bytes: usize,
    /// Kafka's `isolation.level` (default `read_uncommitted`): with
    /// [`IsolationLevel::ReadCommitted`] the consumer reads only below the last stable offset
    /// and drops the records of aborted transactions. Control batches (transaction markers)
    /// are never delivered as records, at either level.
    pub isolation_level: IsolationLevel,
}

impl ConsumerConfig {
    /// Kafka's consumer defaults for `group`.
    pub fn new(group: impl Into<String>) -> Self {
        ConsumerConfig {
            group: group.into(),
            client_id: "consumer".into(),
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            assignor: Assignor::Range,
            auto_offset_reset: OffsetReset::Latest,
            max_poll_records: 500,
            max_partition_fetch_bytes: 1 << 20,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }
}

/// A record as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: TopicName,
    /// The partition.
    pub partition: u32,
    /// The record's offset.
    pub offset: i64,
    /// Its timestamp.
    pub timestamp: i64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Option<Bytes>,
    /// Its headers.
    pub headers: Vec<Header>,
}

/// A member of a consumer group reading from [`TopicSource`]s. See the module docs.
///
/// Each [`poll`](Consumer::poll) first heartbeats (so it sees any rebalance and adopts its new
/// assignment), then reads from its partitions, never past their high watermarks, from its
/// position: the committed offset, or [`OffsetReset`] when there is none (or it is outside the
/// log). [`commit`](Consumer::commit) commits the positions; records polled but not committed
/// when partitions move are read again by their new owner (at least once).
pub struct Consumer<'a> {
    coordinator: &'a GroupCoordinator,
    sources: BTreeMap<String, &'a dyn TopicSource>,
    config: ConsumerConfig,
    membership: Membership,
    positions: BTreeMap<TopicPartition, i64>,
    /// Where the next poll starts in the assignment, so every partition gets its turn.
    next: usize,
}

impl std::fmt::Debug for Consumer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("membership", &self.membership)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl<'a> Consumer<'a> {
    /// Joins `config.group` at `coordinator`, subscribed to `sources`' topics.
    ///
    /// # Errors
    /// [`GroupError::InvalidSubscription`] for no source or two with the same topic; as
    /// [`GroupCoordinator::join`].
    pub fn join(
        coordinator: &'a GroupCoordinator,
        sources: &[&'a dyn TopicSource],
        config: ConsumerConfig,
    ) -> Result<Self> {
        let mut by_name = BTreeMap::new();
        for s in sources {
            if by_name.insert(s.topic_name().to_string(), *s).is_some() {
                return Err(GroupError::InvalidSubscription {
                    reason: "two sources for one topic",
                }
                .into());
            }
        }
        let membership = coordinator.join(&JoinRequest {
            group: config.group.clone(),
            client_id: config.client_id.clone(),
            subscription: by_name
                .iter()
                .map(|(n, s)| (n.clone(), s.partition_count()))
                .collect(),
            session_timeout_ms: config.session_timeout_ms,
            assignor: config.assignor,
        })?;
        let mut consumer = Consumer {
            coordinator,
            sources: by_name,
            config,
            membership: Membership {
                assignment: Vec::new(),
                ..membership.clone()
            },
            positions: BTreeMap::new(),
            next: 0,
        };
        consumer.adopt(membership)?;
        Ok(consumer)
    }

    /// This member's id.
    pub fn member_id(&self) -> &str {
        &self.membership.member_id
    }

    /// The generation it acts in.
    pub fn generation(&self) -> i32 {
        self.membership.generation
    }

    /// Its partitions.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.membership.assignment
    }

    /// The next offset it will read from `tp`, if `tp` is assigned.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    /// Moves the position of an assigned partition (Kafka's `seek`).
    ///
    /// # Errors
    /// [`TopicError::UnknownPartition`] if `tp` is not assigned to this member.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        match self.positions.get_mut(tp) {
            Some(p) => {
                *p = offset;
                Ok(())
            }
            None => Err(TopicError::UnknownPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
                partition_count: 0,
            }
            .into()),
        }
    }

    fn source(&self, topic: &str) -> Result<&'a dyn TopicSource> {
        self.sources.get(topic).copied().ok_or_else(|| {
            TopicError::NotFound {
                topic: topic.to_owned(),
            }
            .into()
        })
    }

    /// Takes a new membership: positions of kept partitions stay; new ones start from the
    /// committed offset or the reset policy.
    fn adopt(&mut self, membership: Membership) -> Result<()> {
        let mut positions = BTreeMap::new();
        for tp in &membership.assignment {
            // A partition kept from the previous generation (the one right before) was read
            // by nobody else meanwhile: its position, committed or not, stands. Otherwise
            // another member may have moved it on: start from the committed offset.
            let kept = membership.generation <= self.membership.generation.saturating_add(1);
            let pos = match self.positions.get(tp) {
                Some(&p) if kept => p,
                _ => self.starting_offset(tp)?,
            };
            positions.insert(tp.clone(), pos);
        }
        self.positions = positions;
        self.membership = membership;
        Ok(())
    }

    /// The committed offset of `tp`, or where [`OffsetReset`] says, if none or out of range.
    fn starting_offset(&self, tp: &TopicPartition) -> Result<i64> {
        let offsets = self.source(&tp.topic)?.offsets(tp.partition)?;
        let committed = self
            .coordinator
            .committed(&self.config.group, tp)
            .filter(|&o| o >= offsets.log_start_offset && o <= offsets.log_end_offset);
        Ok(committed.unwrap_or(match self.config.auto_offset_reset {
            OffsetReset::Earliest => offsets.log_start_offset,
            OffsetReset::Latest => offsets.high_watermark,
        }))
    }

    /// Heartbeats and adopts a new assignment if the group rebalanced.
    ///
    /// # Errors
    /// As [`GroupCoordinator::heartbeat`].
    pub fn heartbeat(&mut self) -> Result<()> {
        let m = self.coordinator.heartbeat(
            &self.config.group,
            &self.membership.member_id,
            self.membership.generation,
        )?;
        if m.generation != self.membership.generation || m.assignment != self.membership.assignment
        {
            self.adopt(m)?;
        }
        Ok(())
    }

    /// Heartbeats, then reads up to `max_poll_records` records from the assigned partitions
    /// (each below its high watermark) and advances the positions past them.
    ///
    /// # Errors
    /// As [`Consumer::heartbeat`] (after [`GroupError::UnknownMember`] the consumer must be
    /// joined again); as [`TopicSource::read_committed`]; [`Error::InvalidBatch`] for a
    /// compressed batch whose records do not decompress.
    pub fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        self.heartbeat()?;
        let mut out = Vec::new();
        let assigned = self.membership.assignment.clone();
        let n = assigned.len();
        for k in 0..n {
            if out.len() >= self.config.max_poll_records {
                break;
            }
            let tp = &assigned[(self.next + k) % n];
            self.poll_partition(tp, &mut out)?;
        }
        if n > 0 {
            self.next = (self.next + 1) % n;
        }
        Ok(out)
    }

    fn poll_partition(&mut self, tp: &TopicPartition, out: &mut Vec<ConsumerRecord>) -> Result<()> {
        let source = self.source(&tp.topic)?;
        let Some(&position) = self.positions.get(tp) else {
            return Ok(());
        };
        let hw = source.offsets(tp.partition)?.high_watermark;
        if position >= hw {
            return Ok(());
        }
        let read = match source.read_isolated(
            tp.partition,
            position,
            self.config.max_partition_fetch_bytes,
            self.config.isolation_level,
        ) {
            Ok(r) => r,
            // Retention removed what the position points at: reset, as Kafka does.
            Err(Error::OffsetOutOfRange { .. }) => {
                let reset = match self.config.auto_offset_reset {
                    OffsetReset::Earliest => source.offsets(tp.partition)?.log_start_offset,
                    OffsetReset::Latest => hw,
                };
                self.positions.insert(tp.clone(), reset);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let topic = source.topic_name().clone();
        let mut next = position;
        let mut filter =
            ReadCommittedFilter::new(read.aborted_transactions.as_deref().unwrap_or(&[]));
        'batches: for batch in &read.batches {
            // Markers, and under read_committed aborted transactions, are passed over.
            let keep = if self.config.isolation_level == IsolationLevel::ReadCommitted {
                filter.keep(batch)?
            } else {
                !batch.header().is_control()
            };
            if !keep {
                if batch.next_offset() <= hw {
                    next = next.max(batch.next_offset());
                }
                continue;
            }
            for record in batch.records()? {
                let record = record?;
                if record.offset < next {
                    continue;
                }
                if record.offset >= hw || out.len() >= self.config.max_poll_records {
                    break 'batches;
                }
                next = record.offset + 1;
                out.push(ConsumerRecord {
                    topic: topic.clone(),
                    partition: tp.partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key,
                    value: record.value,
                    headers: record.headers,
                });
            }
            // A whole batch consumed (or only offsets below the position in it): past it.
            if batch.next_offset() <= hw {
                next = next.max(batch.next_offset());
            }
        }
        self.positions.insert(tp.clone(), next);
        Ok(())
    }

    /// Commits the positions of all assigned partitions, durably.
    ///
    /// # Errors
    /// [`GroupError::IllegalGeneration`] if the group rebalanced since this member's last
    /// heartbeat (the positions are then not committed: poll again, which adopts the new
    /// assignment); as [`GroupCoordinator::commit`].
    pub fn commit(&mut self) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = self
            .positions
            .iter()
            .map(|(tp, &o)| (tp.clone(), o))
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        self.coordinator.commit(
            &self.config.group,
            &self.membership.member_id,
            self.membership.generation,
            &offsets,
        )
    }

    /// Per assigned partition, how far the position is below the high watermark.
    ///
    /// # Errors
    /// As [`TopicSource::offsets`].
    pub fn lag(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        self.positions
            .iter()
            .map(|(tp, &pos)| {
                let hw = self
                    .source(&tp.topic)?
                    .offsets(tp.partition)?
                    .high_watermark;
                Ok((tp.clone(), (hw - pos).max(0)))
            })
            .collect()
    }

    /// Leaves the group (its partitions move to the others at once). Commit first to keep the
    /// progress.
    ///
    /// # Errors
    /// As [`GroupCoordinator::leave`].
    pub fn leave(self) -> Result<()> {
        self.coordinator
            .leave(&self.config.group, &self.membership.member_id)
    }
}
