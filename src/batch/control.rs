//! Control records: the records of a control batch (attributes bit 5), as Kafka writes them.
//!
//! A control record's key is `version: i16 = 0, type: i16` (Kafka's `ControlRecordType`: 0
//! ABORT, 1 COMMIT, 2 LEADER_CHANGE, 3-6 KRaft's snapshot and voter records). The value of a
//! COMMIT or ABORT marker (Kafka's `EndTransactionMarker`) is `version: i16 = 0,
//! coordinatorEpoch: i32`. As Kafka's readers do, a key or value with a higher version is read
//! as version 0, and a negative version is refused.
//!
//! A transaction marker batch (Kafka's `MemoryRecords.withEndTransactionMarker`) holds one such
//! record, uncompressed, with attributes `0x30` (control and transactional), the transaction's
//! producer id and epoch, and base sequence -1. [`EndTxnMarker::build_batch`] builds one.

use bytes::Bytes;

use super::{BatchBuilder, BatchError, RecordBatch, SimpleRecord};

/// Key size of a control record.
const KEY_SIZE: usize = 4;
/// Value size of a version-0 COMMIT / ABORT marker.
const MARKER_VALUE_SIZE: usize = 6;

/// How a transaction ended: the type of a transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnResult {
    /// ABORT (control type 0): the transaction's records are discarded by `read_committed`
    /// readers.
    Abort,
    /// COMMIT (control type 1): the transaction's records become visible.
    Commit,
}

impl TxnResult {
    /// Kafka's control record type number.
    pub fn control_type(self) -> i16 {
        match self {
            TxnResult::Abort => 0,
            TxnResult::Commit => 1,
        }
    }
}

/// A COMMIT or ABORT marker (Kafka's `EndTransactionMarker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTxnMarker {
    /// Commit or abort.
    pub result: TxnResult,
    /// The epoch of the transaction coordinator that wrote it (a marker from an older
    /// coordinator than the last one the log saw for the producer is fenced).
    pub coordinator_epoch: i32,
}

/// The control type in a control record's key (`None` for a key Kafka refuses).
fn control_type(key: &[u8]) -> Option<i16> {
    let k = key.get(..KEY_SIZE)?;
    let version = i16::from_be_bytes([k[0], k[1]]);
    (version >= 0).then(|| i16::from_be_bytes([k[2], k[3]]))
}

impl EndTxnMarker {
    /// A marker.
    pub fn new(result: TxnResult, coordinator_epoch: i32) -> Self {
        EndTxnMarker {
            result,
            coordinator_epoch,
        }
    }

    /// The marker of a control record with this key and value, `None` if the record is a
    /// control record of another type (a KRaft record, or a type Kafka does not know).
    ///
    /// # Errors
    /// [`BatchError::InvalidControlRecord`] for a key or a COMMIT / ABORT value Kafka refuses.
    pub fn from_record(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Option<EndTxnMarker>, BatchError> {
        let key = key.ok_or(BatchError::InvalidControlRecord {
            reason: "control record without a key",
        })?;
        let kind = control_type(key).ok_or(BatchError::InvalidControlRecord {
            reason: "control record key shorter than 4 bytes or of a negative version",
        })?;
        let result = match kind {
            0 => TxnResult::Abort,
            1 => TxnResult::Commit,
            _ => return Ok(None),
        };
        let v = value
            .and_then(|v| v.get(..MARKER_VALUE_SIZE))
            .filter(|v| i16::from_be_bytes([v[0], v[1]]) >= 0)
            .ok_or(BatchError::InvalidControlRecord {
                reason: "transaction marker value shorter than 6 bytes or of a negative version",
            })?;
        Ok(Some(EndTxnMarker {
            result,
            coordinator_epoch: i32::from_be_bytes([v[2], v[3], v[4], v[5]]),
        }))
    }

    /// The control record's key: version 0, the type.
    pub fn key_bytes(&self) -> [u8; KEY_SIZE] {
        let mut k = [0; KEY_SIZE];
        k[2..].copy_from_slice(&self.result.control_type().to_be_bytes());
        k
    }

    /// The marker's value: version 0, the coordinator epoch.
    pub fn value_bytes(&self) -> [u8; MARKER_VALUE_SIZE] {
        let mut v = [0; MARKER_VALUE_SIZE];
        v[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        v
    }

    /// The marker batch a transaction coordinator writes for `producer_id` at `producer_epoch`
    /// (see the module docs): base offset 0 and leader epoch -1 until the log assigns them.
    ///
    /// ```
    /// use partlog::batch::{EndTxnMarker, TxnResult};
    ///
    /// let batch = EndTxnMarker::new(TxnResult::Abort, 7).build_batch(42, 3, 1_000)?;
    /// assert!(batch.header().is_control() && batch.header().is_transactional());
    /// assert_eq!(batch.end_txn_marker()?, Some(EndTxnMarker::new(TxnResult::Abort, 7)));
    /// # Ok::<(), partlog::batch::BatchError>(())
    /// ```
    ///
    /// # Errors
    /// None in practice (a one-record batch always fits); as [`BatchBuilder::build`].
    pub fn build_batch(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        timestamp: i64,
    ) -> Result<RecordBatch, BatchError> {
        let mut b = BatchBuilder::new()
            .producer(producer_id, producer_epoch, -1)
            .transactional(true)
            .control(true);
        b.push(&SimpleRecord::new(
            timestamp,
            Some(Bytes::copy_from_slice(&self.key_bytes())),
            Some(Bytes::copy_from_slice(&self.value_bytes())),
        ))?;
        b.build()
    }
}

impl RecordBatch {
    /// The transaction marker this batch holds: `None` unless it is a control batch whose first
    /// record is a COMMIT or ABORT (Kafka reads only the first record of a control batch).
    ///
    /// # Errors
    /// [`BatchError::InvalidControlRecord`] for a control batch with no record or a bad control
    /// record; the record decoding errors of [`RecordBatch::record_views`].
    pub fn end_txn_marker(&self) -> Result<Option<EndTxnMarker>, BatchError> {
        if !self.header().is_control() {
            return Ok(None);
        }
        let mut records = self.record_views()?;
        let first = records.next().ok_or(BatchError::InvalidControlRecord {
            reason: "control batch without a record",
        })??;
        EndTxnMarker::from_record(first.key(), first.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_batch_is_laid_out_as_kafkas() {
        let b = EndTxnMarker::new(TxnResult::Commit, 5)
            .build_batch(9, 2, 77)
            .unwrap();
        let h = b.header();
        assert_eq!(h.attributes, 0x30);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (9, 2, -1)
        );
        assert_eq!(h.record_count, 1);
        let r = b.record_views().unwrap().next().unwrap().unwrap();
        assert_eq!(r.key(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(r.value(), Some(&[0u8, 0, 0, 0, 0, 5][..]));
    }

    #[test]
    fn higher_versions_read_as_version_zero_and_negative_ones_are_refused() {
        let m = EndTxnMarker::from_record(Some(&[0, 3, 0, 0, 9]), Some(&[0, 1, 0, 0, 0, 4, 1]));
        assert_eq!(m, Ok(Some(EndTxnMarker::new(TxnResult::Abort, 4))));
        assert!(EndTxnMarker::from_record(Some(&[0xff, 0xff, 0, 0]), Some(&[0; 6])).is_err());
        assert!(
            EndTxnMarker::from_record(Some(&[0, 0, 0, 1]), Some(&[0xff, 0, 0, 0, 0, 0])).is_err()
        );
        assert!(EndTxnMarker::from_record(Some(&[0, 0, 0]), Some(&[0; 6])).is_err());
        assert_eq!(
            EndTxnMarker::from_record(Some(&[0, 0, 0, 2]), None),
            Ok(None)
        );
    }
}
