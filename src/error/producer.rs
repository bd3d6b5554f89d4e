//! Refusals of the idempotent-producer rules (Kafka's `ProducerAppendInfo` checks), raised by a
//! client or leader append; a follower's append is never refused by them.

use std::fmt;

/// Why a batch with a producer id was refused. Nothing of the append was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProducerError {
    /// The batch's producer epoch is older than the one the log holds for that producer id
    /// (Kafka's `INVALID_PRODUCER_EPOCH`, error code 47): a zombie producer is fenced.
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        producer_epoch: i16,
        /// The epoch the log holds.
        current_epoch: i16,
    },
    /// The batch's first sequence does not follow the producer's last one (a gap, or a
    /// duplicate older than the retained five batches), or a new epoch does not start at 0
    /// (Kafka's `OUT_OF_ORDER_SEQUENCE_NUMBER`, error code 45).
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        producer_epoch: i16,
        /// The batch's first sequence.
        first_sequence: i32,
        /// The last sequence the log holds for this producer and epoch (-1 for none).
        last_sequence: i32,
    },
    /// A batch with a producer id but a negative base sequence (Kafka's `LogValidator` refuses
    /// it as an invalid record).
    InvalidSequence {
        /// The producer id.
        producer_id: i64,
        /// The batch's base sequence.
        base_sequence: i32,
    },
    /// A non-transactional batch from a producer with an open transaction (Kafka's
    /// `INVALID_TXN_STATE`, error code 48).
    InvalidTxnState {
        /// The producer id.
        producer_id: i64,
        /// First offset of the open transaction.
        txn_first_offset: i64,
    },
    /// A transaction marker written by an older transaction coordinator than the last one the
    /// log saw for the producer (Kafka's `TransactionCoordinatorFencedException`).
    CoordinatorFenced {
        /// The producer id.
        producer_id: i64,
        /// The marker's coordinator epoch.
        coordinator_epoch: i32,
        /// The coordinator epoch the log holds.
        current_coordinator_epoch: i32,
    },
    /// A control batch in a client's (or partition leader's) append: only a transaction
    /// coordinator writes markers (Kafka's validator refuses them for the client origin with
    /// `INVALID_RECORD`, error code 87).
    ControlBatchFromClient {
        /// Index of the batch in the append (0-based).
        batch: usize,
    },
    /// A coordinator's control batch with a producer id that is not a COMMIT or ABORT marker.
    NotATransactionMarker {
        /// The producer id.
        producer_id: i64,
    },
}

impl fmt::Display for ProducerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProducerError::InvalidProducerEpoch {
                producer_id,
                producer_epoch,
                current_epoch,
            } => write!(
                f,
                "producer {producer_id} epoch {producer_epoch} is older than the current epoch {current_epoch} (fenced)"
            ),
            ProducerError::OutOfOrderSequence {
                producer_id,
                producer_epoch,
                first_sequence,
                last_sequence,
            } => write!(
                f,
                "producer {producer_id} epoch {producer_epoch}: sequence {first_sequence} does not follow the last sequence {last_sequence}"
            ),
            ProducerError::InvalidSequence {
                producer_id,
                base_sequence,
            } => write!(
                f,
                "producer {producer_id}: batch has invalid base sequence {base_sequence}"
            ),
            ProducerError::InvalidTxnState {
                producer_id,
                txn_first_offset,
            } => write!(
                f,
                "producer {producer_id}: non-transactional batch while a transaction is open since offset {txn_first_offset}"
            ),
            ProducerError::CoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current_coordinator_epoch,
            } => write!(
                f,
                "producer {producer_id}: marker of coordinator epoch {coordinator_epoch} is older than {current_coordinator_epoch} (fenced)"
            ),
            ProducerError::ControlBatchFromClient { batch } => write!(
                f,
                "batch {batch} is a control batch: only a transaction coordinator appends markers"
            ),
            ProducerError::NotATransactionMarker { producer_id } => write!(
                f,
                "producer {producer_id}: control batch is not a COMMIT or ABORT marker"
            ),
        }
    }
}

impl std::error::Error for ProducerError {}
