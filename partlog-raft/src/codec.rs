//! Entries as Kafka v2 record batches: one batch of one record per entry.
//!
//! - offset = Raft index, `partitionLeaderEpoch` = Raft term (openraft's standard leader id:
//!   the term alone names the leader);
//! - a normal entry is a data batch whose record value is the application data, as JSON;
//! - a blank entry (a new leader's first) and a membership entry are control batches
//!   (attributes bit 5, so Kafka consumers skip them) whose record key is Kafka's control key,
//!   version 0 and a type ([`BLANK_CONTROL_TYPE`], [`MEMBERSHIP_CONTROL_TYPE`]), and whose value
//!   is nothing (blank) or the membership as JSON;
//! - an offset without an entry (see [`HOLE_CONTROL_TYPE`]) is a control batch that reads skip.
//!
//! One batch per entry because openraft truncates at any index and partlog cuts whole batches:
//! a batch of several entries would lose the ones before the cut.

use openraft::{Entry, EntryPayload, LogId, RaftTypeConfig};
use partlog::batch::{BatchBuilder, RecordBatch, HEADER_SIZE};

use crate::error::{Error, Result};

/// Control record type of a blank entry. Kafka's own types are 0-6 (transaction markers and
/// KRaft's); these are far above them, so Kafka's tools report them as unknown control records.
pub const BLANK_CONTROL_TYPE: i16 = 0x7f00;
/// Control record type of a membership entry.
pub const MEMBERSHIP_CONTROL_TYPE: i16 = 0x7f01;
/// Control record type of a hole: an offset that holds no entry (an append past the log end
/// filled the gap with these; reads skip them).
pub const HOLE_CONTROL_TYPE: i16 = 0x7f02;

fn control_key(control_type: i16) -> [u8; 4] {
    let [a, b] = 0i16.to_be_bytes();
    let [c, d] = control_type.to_be_bytes();
    [a, b, c, d]
}

/// The partition leader epoch for `term`.
pub(crate) fn epoch_of(term: u64) -> Result<i32> {
    i32::try_from(term).map_err(|_| Error::TermOutOfRange { term })
}

/// The offset of `index`.
pub(crate) fn offset_of(index: u64) -> Result<i64> {
    i64::try_from(index).map_err(|_| Error::IndexOutOfRange { index })
}

/// The log id of the record at `offset` in a batch of `epoch`.
pub(crate) fn log_id<C: RaftTypeConfig>(epoch: i32, offset: i64) -> Result<LogId<C::NodeId>> {
    let (Ok(term), Ok(index)) = (u64::try_from(epoch), u64::try_from(offset)) else {
        return Err(Error::Decode {
            offset,
            reason: format!("batch leader epoch {epoch} is not a Raft term"),
        });
    };
    Ok(LogId::new(
        openraft::CommittedLeaderId::new(term, C::NodeId::default()),
        index,
    ))
}

/// Encodes `entry` as one batch, its record stamped `timestamp` (milliseconds).
pub(crate) fn encode<C>(entry: &Entry<C>, timestamp: i64) -> Result<RecordBatch>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    let offset = offset_of(entry.log_id.index)?;
    let epoch = epoch_of(entry.log_id.leader_id.term)?;
    let json = |r: serde_json::Result<Vec<u8>>| {
        r.map_err(|e| Error::Decode {
            offset,
            reason: format!("cannot encode the entry: {e}"),
        })
    };
    let (key, value) = match &entry.payload {
        EntryPayload::Blank => (Some(control_key(BLANK_CONTROL_TYPE)), None),
        EntryPayload::Normal(data) => (None, Some(json(serde_json::to_vec(data))?)),
        EntryPayload::Membership(m) => (
            Some(control_key(MEMBERSHIP_CONTROL_TYPE)),
            Some(json(serde_json::to_vec(m))?),
        ),
    };
    let size = HEADER_SIZE + 24 + value.as_ref().map_or(0, Vec::len);
    let mut builder = BatchBuilder::with_capacity(size)
        .base_offset(offset)
        .partition_leader_epoch(epoch)
        .control(key.is_some());
    let built = builder
        .push_parts(
            timestamp,
            key.as_ref().map(|k| &k[..]),
            value.as_deref(),
            &[],
        )
        .and_then(|()| builder.build());
    built.map_err(|e| Error::Log(partlog::Error::InvalidBatch(e)))
}

/// A hole marker at `offset` (see [`HOLE_CONTROL_TYPE`]), in a batch of `epoch`.
pub(crate) fn hole(offset: i64, epoch: i32, timestamp: i64) -> Result<RecordBatch> {
    let mut builder = BatchBuilder::with_capacity(HEADER_SIZE + 16)
        .base_offset(offset)
        .partition_leader_epoch(epoch)
        .control(true);
    let key = control_key(HOLE_CONTROL_TYPE);
    let built = builder
        .push_parts(timestamp, Some(&key[..]), None, &[])
        .and_then(|()| builder.build());
    built.map_err(|e| Error::Log(partlog::Error::InvalidBatch(e)))
}

/// Decodes the records of `batch` whose offsets lie in `[from, to)` into `out`.
pub(crate) fn decode<C>(
    batch: &RecordBatch,
    from: i64,
    to: i64,
    out: &mut Vec<Entry<C>>,
) -> Result<()>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    let epoch = batch.partition_leader_epoch();
    let control = batch.header().is_control();
    let bad = |offset: i64, reason: String| Error::Decode { offset, reason };
    let records = batch
        .records()
        .map_err(|e| bad(batch.base_offset(), e.to_string()))?;
    for record in records {
        let record = record.map_err(|e| bad(batch.base_offset(), e.to_string()))?;
        let offset = record.offset;
        if offset < from {
            continue;
        }
        if offset >= to {
            break;
        }
        let log_id = log_id::<C>(epoch, offset)?;
        let payload = if control {
            let key = record.key.as_deref().unwrap_or_default();
            let control_type = match key {
                [0, 0, a, b] => i16::from_be_bytes([*a, *b]),
                _ => return Err(bad(offset, "control record key is not version 0".into())),
            };
            match control_type {
                BLANK_CONTROL_TYPE => EntryPayload::Blank,
                HOLE_CONTROL_TYPE => continue,
                MEMBERSHIP_CONTROL_TYPE => {
                    let value = record.value.as_deref().unwrap_or_default();
                    let m = serde_json::from_slice(value)
                        .map_err(|e| bad(offset, format!("membership: {e}")))?;
                    EntryPayload::Membership(m)
                }
                t => {
                    return Err(bad(
                        offset,
                        format!("control record type {t} is not a Raft entry"),
                    ))
                }
            }
        } else {
            let value = record.value.as_deref().unwrap_or_default();
            let data = serde_json::from_slice(value)
                .map_err(|e| bad(offset, format!("application data: {e}")))?;
            EntryPayload::Normal(data)
        };
        out.push(Entry { log_id, payload });
    }
    Ok(())
}
