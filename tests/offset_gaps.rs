//! Offset gaps, as Kafka's logs have them (issue 18): a follower's copy of a compacted leader,
//! `truncateTo` an offset inside a batch (the next batch then starts above the log end), a
//! cleaned segment's sparse batches. Kafka's rule, and partlog's: a batch whose base offset is
//! ABOVE the offset after the previous batch (or above its segment's base offset) leaves a gap,
//! which is legal; one whose base offset is BELOW it (an overlap, offsets going backwards) is
//! damage, as are a bad CRC, a torn length, or a batch running past the next segment's base.
//!
//! Reads by offset land on the first batch at or after an offset inside a gap (Kafka's
//! `LogSegment.read` does the same); `Log::read_record` of an offset inside a gap answers
//! `None` (no record has it); time lookups pass over gaps.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use partlog::batch::{BatchBuilder, Compression, SimpleRecord};
use partlog::log::{AppendOrigin, CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_FILE};
use partlog::{Config, Log};

const T0: i64 = 1_700_000_000_000;

fn config() -> Config {
    Config {
        segment_bytes: 1 << 20,
        segment_index_bytes: 64 << 10,
        // An index entry for every batch, so that lookups start from entries too.
        index_interval_bytes: 1,
        ..Config::default()
    }
}

/// One batch at `offset` of `n` records, record `offset + i` stamped `T0 + offset + i`.
fn batch_bytes(offset: i64, n: usize) -> Bytes {
    compressed_batch_bytes(offset, n, Compression::None)
}

/// [`batch_bytes`] with its records compressed by `codec`.
fn compressed_batch_bytes(offset: i64, n: usize, codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new()
        .base_offset(offset)
        .partition_leader_epoch(1)
        .compression(codec);
    for i in 0..n {
        b.push(&SimpleRecord::new(
            T0 + offset + i as i64,
            Some("key"),
            Some("value"),
        ))
        .unwrap();
    }
    Bytes::copy_from_slice(b.build().unwrap().as_bytes())
}

/// Writes a segment file at `base` holding one batch per `(base offset, records)` pair, as Kafka
/// leaves it (no index files: partlog rebuilds them); returns each batch's position.
fn write_segment(dir: &Path, base: i64, batches: &[(i64, usize)]) -> Vec<u64> {
    let plain: Vec<_> = batches
        .iter()
        .map(|&(o, n)| (o, n, Compression::None))
        .collect();
    write_compressed_segment(dir, base, &plain)
}

/// [`write_segment`] with a codec per batch.
fn write_compressed_segment(
    dir: &Path,
    base: i64,
    batches: &[(i64, usize, Compression)],
) -> Vec<u64> {
    let mut data = Vec::new();
    let mut positions = Vec::new();
    for &(offset, n, codec) in batches {
        positions.push(data.len() as u64);
        data.extend_from_slice(&compressed_batch_bytes(offset, n, codec));
    }
    fs::write(dir.join(format!("{base:020}.log")), data).unwrap();
    positions
}

/// Segment 0: offsets 0-2, then 6-8 (3-5 compacted away), ending at 9 (legal: the gap 9 is
/// before segment 11's first batch); segment 11: 12-13 (11 truncated away inside its batch),
/// then 16-17. The batches after the gaps inside a segment are compressed (zstd, gzip): record
/// lookups and time lookups open them.
fn gapped_log(dir: &Path) {
    write_compressed_segment(
        dir,
        0,
        &[(0, 3, Compression::None), (6, 3, Compression::Zstd)],
    );
    write_compressed_segment(
        dir,
        11,
        &[(12, 2, Compression::None), (16, 2, Compression::Gzip)],
    );
}

fn mark_clean(dir: &Path, recovery_point: i64) {
    fs::write(
        dir.join(RECOVERY_POINT_FILE),
        format!("0\n1\n{recovery_point}\n"),
    )
    .unwrap();
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").unwrap();
}

/// Every batch's base offset, read from `from` to the log end.
fn bases_from(log: &Log, from: i64) -> Vec<i64> {
    let mut bases = Vec::new();
    let mut next = from;
    while next < log.log_end_offset() {
        let read = log.read(next, 1 << 20).unwrap();
        bases.extend(read.batches.iter().map(|b| b.base_offset()));
        assert!(read.next_offset > next, "no progress at {next}");
        next = read.next_offset;
    }
    bases
}

/// The reads, record lookups and time lookups a gapped log must answer as Kafka does.
fn check_gapped_reads(log: &Log) {
    assert_eq!(log.segment_base_offsets(), vec![0, 11]);
    assert_eq!(log.log_end_offset(), 18);
    assert_eq!(bases_from(log, 0), vec![0, 6, 12, 16]);
    // An offset inside a gap is answered with the next batch, within a segment and across the
    // end of one.
    for (wanted, first) in [
        (3, 6),
        (5, 6),
        (9, 12),
        (10, 12),
        (11, 12),
        (14, 16),
        (15, 16),
    ] {
        let read = log.read(wanted, 1 << 20).unwrap();
        assert_eq!(read.batches[0].base_offset(), first, "read at {wanted}");
    }
    // No record has an offset inside a gap.
    for gap in [3, 4, 5, 9, 10, 11, 14, 15] {
        assert!(log.read_record(gap).unwrap().is_none(), "record {gap}");
    }
    for present in [0, 2, 6, 8, 12, 13, 16, 17] {
        let found = log.read_record(present).unwrap().expect("present");
        assert_eq!(found.record().offset(), present);
    }
    // Time lookups pass over gaps: the first record stamped at or after T0 + 4 is offset 6.
    assert_eq!(log.offset_for_timestamp(T0 + 4).unwrap(), Some(6));
    assert_eq!(log.offset_for_timestamp(T0 + 7).unwrap(), Some(7));
    assert_eq!(log.offset_for_timestamp(T0 + 9).unwrap(), Some(12));
    assert_eq!(log.offset_for_timestamp(T0 + 14).unwrap(), Some(16));
    assert_eq!(log.offset_for_timestamp(T0 + 18).unwrap(), None);
}

#[test]
fn full_recovery_keeps_offset_gaps_within_and_between_segments() {
    let dir = tempfile::tempdir().unwrap();
    gapped_log(dir.path());
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(log.open_report().segments_removed, 0);
    check_gapped_reads(&log);
    log.close().unwrap();
    // And again from the files recovery left (indexes rebuilt with the gaps in them).
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    check_gapped_reads(&log);
    log.close().unwrap();
}

#[test]
fn a_clean_open_reads_across_offset_gaps_and_rebuilds_missing_indexes() {
    let dir = tempfile::tempdir().unwrap();
    gapped_log(dir.path());
    // Cleanly closed (nothing to recover): the inactive segment's indexes are rebuilt when it
    // is first mapped, and its reads walk the batches meanwhile.
    mark_clean(dir.path(), 18);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    check_gapped_reads(&log);
    log.close().unwrap();
}

#[test]
fn an_overlapping_batch_is_still_damage_that_recovery_cuts() {
    let dir = tempfile::tempdir().unwrap();
    // The second batch starts at 2, inside the first (0-2): offsets go backwards.
    let positions = write_segment(dir.path(), 0, &[(0, 3), (2, 3), (5, 1)]);
    let log = Log::open(dir.path(), config()).unwrap();
    let (base, position, reason) = log.open_report().truncated.clone().expect("cut");
    assert_eq!((base, position), (0, positions[1]), "{reason}");
    assert!(reason.contains("base offset 2"), "{reason}");
    assert_eq!(log.log_end_offset(), 3);
    log.close().unwrap();
}

#[test]
fn a_segment_running_into_the_next_one_is_still_damage_that_recovery_cuts() {
    let dir = tempfile::tempdir().unwrap();
    // Segment 0's second batch holds 4-6, but segment 5 begins at 5.
    let positions = write_segment(dir.path(), 0, &[(0, 3), (4, 3)]);
    write_segment(dir.path(), 5, &[(7, 2)]);
    let log = Log::open(dir.path(), config()).unwrap();
    let (base, position, reason) = log.open_report().truncated.clone().expect("cut");
    assert_eq!((base, position), (0, positions[1]), "{reason}");
    assert_eq!(log.segment_base_offsets(), vec![0]);
    assert_eq!(log.log_end_offset(), 3);
    log.close().unwrap();
}

#[test]
fn appends_after_a_gap_continue_from_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    gapped_log(dir.path());
    let log = Log::open(dir.path(), config()).unwrap();
    let info = log
        .append(&[SimpleRecord::new(T0 + 100, Some("k"), Some("v"))])
        .unwrap();
    assert_eq!(info.first_offset, 18);
    assert_eq!(log.log_end_offset(), 19);
    // A truncation to an offset inside a gap cuts the batch after it, and the log end is that
    // offset (Kafka's `truncateTo`); the next append takes it.
    log.truncate_to(4).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(bases_from(&log, 0), vec![0]);
    let info = log
        .append(&[SimpleRecord::new(T0 + 200, Some("k"), Some("v"))])
        .unwrap();
    assert_eq!(info.first_offset, 4);
    log.close().unwrap();
    // Reopened (clean, then after a crash), 0-2 and 4 with the gap at 3 between them.
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(bases_from(&log, 0), vec![0, 4]);
    assert!(log.read_record(3).unwrap().is_none());
    log.abandon();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(bases_from(&log, 0), vec![0, 4]);
    // A truncation into a gap, closed before any append: the log end comes back as the kept
    // batches' end (Kafka's reload also takes it from the last batch).
    log.truncate_to(4).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    let info = log
        .append(&[SimpleRecord::new(T0 + 300, Some("k"), Some("v"))])
        .unwrap();
    assert_eq!(info.first_offset, 3);
    log.close().unwrap();
}

#[test]
fn a_follower_append_may_start_above_the_log_end_and_leave_gaps_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let run = [batch_bytes(0, 3), batch_bytes(6, 3)].concat().into();
    log.append_batches(&run as &Bytes, AppendOrigin::Follower)
        .unwrap();
    assert_eq!(log.log_end_offset(), 9);
    // The leader's next batch starts above this log's end (9 and 10 compacted away).
    log.append_batches(&batch_bytes(11, 2), AppendOrigin::Follower)
        .unwrap();
    assert_eq!(log.log_end_offset(), 13);
    assert_eq!(bases_from(&log, 0), vec![0, 6, 11]);
    assert!(log.read_record(10).unwrap().is_none());
    // Below the log end, or overlapping within one fetch, is still refused.
    assert!(log
        .append_batches(&batch_bytes(12, 2), AppendOrigin::Follower)
        .is_err());
    let overlapping: Bytes = [batch_bytes(13, 3), batch_bytes(15, 1)].concat().into();
    assert!(log
        .append_batches(&overlapping, AppendOrigin::Follower)
        .is_err());
    assert_eq!(log.log_end_offset(), 13);
    log.close().unwrap();
    // Reopened with full recovery, the gaps are kept.
    fs::remove_file(dir.path().join(CLEAN_SHUTDOWN_FILE)).unwrap();
    fs::write(dir.path().join(RECOVERY_POINT_FILE), "0\n1\n0\n").unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(log.log_end_offset(), 13);
    assert_eq!(bases_from(&log, 0), vec![0, 6, 11]);
    log.close().unwrap();
}

/// A batch of producer 7 (epoch 0) at `offset`: `n` records from sequence `seq`, stamped now
/// (producers older than a day expire at open).
fn idempotent_batch(offset: i64, seq: i32, n: i32) -> Bytes {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut b = BatchBuilder::new()
        .base_offset(offset)
        .partition_leader_epoch(1)
        .producer(7, 0, seq);
    for i in 0..n {
        b.push(&SimpleRecord::new(
            now,
            Some("key"),
            Some(format!("s{}", seq + i)),
        ))
        .unwrap();
    }
    Bytes::copy_from_slice(b.build().unwrap().as_bytes())
}

/// The producer state is rebuilt by replaying batches across a gap (no snapshot: full
/// recovery), with each batch at its own offsets: a retry of the batch after the gap is a
/// duplicate answered with offsets 6-8 (not 3-5, where a contiguous count would put it), and
/// the producer's next batch lands at the log end.
#[test]
fn producer_state_replays_across_an_offset_gap_at_the_batches_own_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let data = [idempotent_batch(0, 0, 3), idempotent_batch(6, 3, 3)].concat();
    fs::write(dir.path().join(format!("{:020}.log", 0)), data).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(log.log_end_offset(), 9);
    let entry = log.producer_state(7).unwrap().expect("producer 7 replayed");
    assert_eq!(entry.last_sequence(), 5);
    let last = entry.batches.back().unwrap();
    assert_eq!((last.first_offset(), last.last_offset), (6, 8));
    let retry = partlog::batch::RecordBatch::parse(idempotent_batch(0, 3, 3)).unwrap();
    let again = log.append_batch(&retry).unwrap();
    assert!(again.duplicate);
    assert_eq!((again.first_offset, again.last_offset), (6, 8));
    let next = partlog::batch::RecordBatch::parse(idempotent_batch(0, 6, 1)).unwrap();
    let info = log.append_batch(&next).unwrap();
    assert!(!info.duplicate);
    assert_eq!(info.first_offset, 9);
    log.close().unwrap();
    // From the snapshot the close wrote, the same.
    let log = Log::open(dir.path(), config()).unwrap();
    let entry = log.producer_state(7).unwrap().unwrap();
    assert_eq!(entry.last_sequence(), 6);
    assert_eq!(entry.batches.back().unwrap().last_offset, 9);
    log.close().unwrap();
}

/// `truncate_to` an offset in a gap of the active segment (cut in place): the batch after the
/// gap goes, the log end is the offset asked for, and the next append takes it; a crash then
/// keeps the gap left below it.
#[test]
fn truncation_into_a_gap_of_the_active_segment_leaves_the_log_end_there() {
    let dir = tempfile::tempdir().unwrap();
    gapped_log(dir.path());
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.truncate_to(15).unwrap(), 15);
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(bases_from(&log, 11), vec![12]);
    let info = log
        .append(&[SimpleRecord::new(T0 + 100, Some("k"), Some("v"))])
        .unwrap();
    assert_eq!(info.first_offset, 15);
    log.flush().unwrap();
    log.abandon();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(log.log_end_offset(), 16);
    assert_eq!(bases_from(&log, 0), vec![0, 6, 12, 15]);
    assert!(log.read_record(14).unwrap().is_none());
    log.close().unwrap();
}

/// A follower batch above the log end that starts a new segment: the roll is at the batch's
/// base offset (as Kafka's), and the recovery point never passes the log end on the way
/// (the roll moved it to the new base while the log end was still below the gap: a debug
/// assertion panicked, and the checkpoint claimed offsets the log did not have yet).
#[test]
fn a_follower_batch_above_the_log_end_that_rolls_keeps_the_recovery_point_below_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_bytes(0, 36);
    let config = Config {
        segment_bytes: 1024,
        ..config()
    };
    // Room for one batch per segment.
    assert!(one.len() > 512 && one.len() < 1024, "{}", one.len());
    let log = Log::open(dir.path(), config.clone()).unwrap();
    log.append_batches(&one, AppendOrigin::Follower).unwrap();
    log.append_batches(&batch_bytes(40, 36), AppendOrigin::Follower)
        .unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 40]);
    assert_eq!(log.log_end_offset(), 76);
    assert!(log.recovery_point() <= log.log_end_offset());
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 76);
    log.abandon();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(bases_from(&log, 0), vec![0, 40]);
    log.close().unwrap();
}
