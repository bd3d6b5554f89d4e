//! Replays the committed fuzz corpora on the stable toolchain: every file under
//! `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/` goes through the same target logic as
//! the cargo-fuzz binaries (`fuzz/logic/`), so `cargo test` exercises them in CI.
//!
//! The seeds are made by `generate_seeds` below (ignored; run it with
//! `cargo test --test fuzz_corpus -- --ignored generate_seeds`), including real Kafka batches
//! encoded by the independent `kafka-protocol` crate.

#[path = "../fuzz/logic/mod.rs"]
mod logic;

use std::path::{Path, PathBuf};

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("list corpus").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs `run` on every corpus file of `target`, reporting every failing file at the end.
fn replay(target: &str, min_files: usize, run: fn(&[u8])) {
    let files = corpus_files(target);
    assert!(
        files.len() >= min_files,
        "{target}: expected at least {min_files} corpus files, found {}",
        files.len()
    );
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("read corpus file");
        let r = std::panic::catch_unwind(|| run(&data));
        if r.is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: failing inputs: {failed:#?}");
}

#[test]
#[cfg_attr(miri, ignore)]
fn replay_batch_decode() {
    replay("batch_decode", 10, logic::batch_decode::run);
}

#[test]
#[cfg_attr(miri, ignore)]
fn replay_index_load() {
    replay("index_load", 5, logic::index_load::run);
}

#[test]
#[cfg_attr(miri, ignore)]
fn replay_segment_recover() {
    replay("segment_recover", 5, logic::segment_recover::run);
}

#[test]
#[cfg_attr(miri, ignore)]
fn replay_compressed_batch() {
    replay("compressed_batch", 10, logic::compressed_batch::run);
}

#[test]
#[cfg_attr(miri, ignore)]
fn replay_log_ops() {
    replay("log_ops", 3, logic::log_ops::run);
}

// ---------------------------------------------------------------------------------------------
// Seed generation.

mod generate {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as KCompression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KTimestampType,
    };
    use partlog::batch::{BatchBuilder, SimpleRecord, TimestampType};
    use partlog::segment::SegmentPaths;
    use partlog::Log;
    use std::path::{Path, PathBuf};

    use super::logic;

    /// `compressed_batch`: for each codec, a real stream of each codec (Kafka's framing, from
    /// kafka-protocol's batches and partlog's encoder), a raw snappy block, and one input per
    /// mode (round trip and damage, batch, bomb).
    fn compressed_batch() {
        use partlog::batch::compression::compress;
        use partlog::batch::{Compression, CompressionLevel};
        let codecs = [
            (Compression::Gzip, KCompression::Gzip),
            (Compression::Snappy, KCompression::Snappy),
            (Compression::Lz4, KCompression::Lz4),
            (Compression::Zstd, KCompression::Zstd),
        ];
        let text: Vec<u8> = (0..3000u32)
            .map(|i| b"kafka ride fare "[(i % 16) as usize])
            .collect();
        for (i, (codec, kcodec)) in codecs.into_iter().enumerate() {
            let first = |mode: u8| i as u8 | (mode << 2);
            // Mode 0: a real stream, bound 64 KiB.
            let mut stream = Vec::new();
            compress(
                codec,
                CompressionLevel::default_for(codec),
                &text,
                &mut stream,
            )
            .unwrap();
            let mut seed = vec![first(0), 0xff, 0xff];
            seed.extend_from_slice(&stream);
            write("compressed_batch", &format!("{codec}_stream.bin"), &seed);
            // Mode 0: kafka-protocol's records section in the codec.
            let recs: Vec<Rec> = (0..20)
                .map(|n| {
                    (
                        1000 + n,
                        Some("key"),
                        Some(format!("value {n} repeats")),
                        vec![],
                    )
                })
                .collect();
            let batch = kafka_with(&PLAIN, &recs, kcodec);
            let mut seed = vec![first(0), 0x40, 0x00];
            seed.extend_from_slice(&batch[61..]);
            write(
                "compressed_batch",
                &format!("{codec}_kafka_protocol.bin"),
                &seed,
            );
            // Mode 1: round trip, then damage.
            let mut seed = vec![first(1), 0x10, 0x00, 3, 0x0b, 0xb8];
            seed.extend_from_slice(&text);
            seed.extend_from_slice(&[2, 10, 1, 0x55, 1, 20, 2]);
            write("compressed_batch", &format!("{codec}_damaged.bin"), &seed);
            // Mode 2: a batch of records, then damage to its records section.
            let seed: Vec<u8> = [first(2), 0x20, 0x00, 1, 12]
                .into_iter()
                .chain((0..200u32).map(|n| (n * 37 % 251) as u8))
                .collect();
            write("compressed_batch", &format!("{codec}_batch.bin"), &seed);
            // Mode 3: a bomb of 200 KiB under a 1 KiB bound.
            write(
                "compressed_batch",
                &format!("{codec}_bomb.bin"),
                &[first(3), 0x04, 0x00, 0, 3, 0x0d, 0x40, 0, 0, 0, 0, 0x61, 0],
            );
        }
        let raw = snap::raw::Encoder::new().compress_vec(&text).unwrap();
        let mut seed = vec![1, 0xff, 0xff];
        seed.extend_from_slice(&raw);
        write("compressed_batch", "snappy_raw_block.bin", &seed);
    }

    fn seeds(target: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds")
            .join(target);
        std::fs::create_dir_all(&dir).expect("create seed dir");
        dir
    }

    fn write(target: &str, name: &str, bytes: &[u8]) {
        std::fs::write(seeds(target).join(name), bytes).expect("write seed");
    }

    struct Meta {
        base_offset: i64,
        epoch: i32,
        producer: (i64, i16, i32),
        transactional: bool,
        control: bool,
    }

    const PLAIN: Meta = Meta {
        base_offset: 0,
        epoch: -1,
        producer: (-1, -1, -1),
        transactional: false,
        control: false,
    };

    type Rec = (
        i64,
        Option<&'static str>,
        Option<String>,
        Vec<(&'static str, Option<&'static str>)>,
    );

    /// One batch encoded by kafka-protocol.
    fn kafka(meta: &Meta, records: &[Rec]) -> Vec<u8> {
        kafka_with(meta, records, KCompression::None)
    }

    /// One batch encoded by kafka-protocol in `codec`.
    fn kafka_with(meta: &Meta, records: &[Rec], codec: KCompression) -> Vec<u8> {
        let krecords: Vec<KRecord> = records
            .iter()
            .enumerate()
            .map(|(i, (ts, key, value, headers))| {
                let mut map = IndexMap::new();
                for (k, v) in headers {
                    map.insert(
                        StrBytes::from_static_str(k),
                        v.map(|v| Bytes::from_static(v.as_bytes())),
                    );
                }
                KRecord {
                    transactional: meta.transactional,
                    control: meta.control,
                    delete_horizon: false,
                    partition_leader_epoch: meta.epoch,
                    producer_id: meta.producer.0,
                    producer_epoch: meta.producer.1,
                    timestamp_type: KTimestampType::Creation,
                    offset: meta.base_offset + i as i64,
                    sequence: meta.producer.2.wrapping_add(i as i32),
                    timestamp: *ts,
                    key: key.map(|k| Bytes::from_static(k.as_bytes())),
                    value: value.clone().map(Bytes::from),
                    headers: map,
                }
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            &krecords,
            &RecordEncodeOptions {
                version: 2,
                compression: codec,
            },
        )
        .expect("kafka-protocol encodes");
        out.to_vec()
    }

    fn kafka_batches() -> Vec<(&'static str, Vec<u8>)> {
        let s = |x: &str| Some(x.to_string());
        vec![
            (
                "kafka_one_record",
                kafka(&PLAIN, &[(1_700_000_000_000, Some("k"), s("v"), vec![])]),
            ),
            (
                "kafka_nulls_and_headers",
                kafka(
                    &Meta {
                        base_offset: 1,
                        ..PLAIN
                    },
                    &[
                        (1_000, None, s("null key"), vec![]),
                        (1_001, Some("tombstone"), None, vec![]),
                        (1_001, Some(""), s(""), vec![]),
                        (
                            5_000,
                            Some("k"),
                            Some("x".repeat(300)),
                            vec![
                                ("trace-id", Some("abc")),
                                ("null-value", None),
                                ("", Some("e")),
                            ],
                        ),
                    ],
                ),
            ),
            (
                "kafka_idempotent_transactional",
                kafka(
                    &Meta {
                        base_offset: 10,
                        epoch: 4,
                        producer: (123_456, 7, 42),
                        transactional: true,
                        control: false,
                    },
                    &(0..20)
                        .map(|i| {
                            (
                                10_000 + i,
                                Some("key"),
                                Some("v".repeat(i as usize)),
                                vec![],
                            )
                        })
                        .collect::<Vec<_>>(),
                ),
            ),
            (
                "kafka_control",
                kafka(
                    &Meta {
                        base_offset: 30,
                        epoch: 2,
                        producer: (9, 1, -1),
                        transactional: true,
                        control: true,
                    },
                    &[(2_000, Some("\0\0\0\x01"), s("\0\0\0\0\0\0"), vec![])],
                ),
            ),
            (
                "kafka_out_of_order_timestamps",
                kafka(
                    &Meta {
                        base_offset: 6,
                        epoch: 3,
                        ..PLAIN
                    },
                    &[
                        (2_000, Some("a"), s("1"), vec![]),
                        (1_500, Some("b"), s("2"), vec![]),
                        (-1, Some("no timestamp"), s("3"), vec![]),
                        (2_500, Some("c"), s("4"), vec![("h", Some("v"))]),
                    ],
                ),
            ),
        ]
    }

    fn partlog_batch(base: i64, ts_type: TimestampType, records: &[SimpleRecord]) -> Vec<u8> {
        let mut b = BatchBuilder::new()
            .base_offset(base)
            .timestamp_type(ts_type)
            .partition_leader_epoch(5);
        for r in records {
            b.push(r).expect("push");
        }
        b.build().expect("build").as_bytes().to_vec()
    }

    fn batch_decode() {
        let kafka = kafka_batches();
        for (name, bytes) in &kafka {
            write("batch_decode", &format!("{name}.bin"), bytes);
        }
        let recs = vec![
            SimpleRecord::new(3_000, Some("a"), Some("first")),
            SimpleRecord::new(1_000, None::<&str>, Some("earlier")),
            SimpleRecord::new(i64::from(i32::MAX) * 4, Some("far"), None::<&str>)
                .with_header("h1", Some("v1"))
                .with_header("h1", None::<&str>),
        ];
        let plain = partlog_batch(0, TimestampType::CreateTime, &recs);
        let log_append = partlog_batch(1 << 40, TimestampType::LogAppendTime, &recs);
        write("batch_decode", "partlog_create_time.bin", &plain);
        write("batch_decode", "partlog_log_append_time.bin", &log_append);
        // Two batches end to end, as in a segment or a fetch response.
        let mut two = kafka[0].1.clone();
        two.extend_from_slice(&plain);
        write("batch_decode", "two_batches.bin", &two);
        // Torn: the last bytes missing.
        write("batch_decode", "torn.bin", &plain[..plain.len() - 5]);
        // A flipped byte in the records (bad CRC; the fix-up pass then sees bad records).
        let mut flipped = kafka[1].1.clone();
        flipped[70] ^= 0x40;
        write("batch_decode", "flipped.bin", &flipped);
        // recordCount 0: a header alone.
        let empty = logic::write_batch(
            &logic::RawHeader {
                base_offset: 0,
                partition_leader_epoch: -1,
                attributes: 0,
                last_offset_delta: 0,
                base_timestamp: -1,
                max_timestamp: -1,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                record_count: 0,
            },
            &[],
        );
        write("batch_decode", "no_records.bin", &empty);
        // A "gzip" batch: stored as opaque bytes.
        let gz = logic::write_batch(
            &logic::RawHeader {
                base_offset: 7,
                partition_leader_epoch: 1,
                attributes: 1,
                last_offset_delta: 1,
                base_timestamp: 10,
                max_timestamp: 20,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                record_count: 2,
            },
            b"\x1f\x8b\x08\0compressed?",
        );
        write("batch_decode", "compressed.bin", &gz);
        // A non-minimal varint (0x80 0x00 for a 0 header count) in an otherwise canonical batch.
        let mut body = Vec::new();
        let mut rec = vec![0u8, 0, 0];
        logic::put_varint(&mut rec, -1);
        logic::put_varint(&mut rec, 1);
        rec.push(b'v');
        rec.extend_from_slice(&[0x80, 0x00]);
        logic::put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
        let long = logic::write_batch(
            &logic::RawHeader {
                base_offset: 0,
                partition_leader_epoch: -1,
                attributes: 0,
                last_offset_delta: 0,
                base_timestamp: 5,
                max_timestamp: 5,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                record_count: 1,
            },
            &body,
        );
        write("batch_decode", "non_minimal_varint.bin", &long);
        write("batch_decode", "zeros.bin", &[0u8; 80]);
    }

    fn index_load() {
        let t = logic::index_load::template();
        let dir = tempfile::tempdir().expect("tempdir");
        for (variant, files, crashed) in [("clean", &t.clean, 0u8), ("crashed", &t.crashed, 0x10)] {
            logic::restore_dir(dir.path(), files);
            for (s, &base) in t.bases.iter().enumerate().take(4) {
                let p = SegmentPaths::new(dir.path(), base);
                let index = std::fs::read(&p.index).unwrap_or_default();
                let time = std::fs::read(&p.time_index).unwrap_or_default();
                let seg = s as u8;
                let trim = |v: &[u8]| {
                    // Crashed images keep preallocated zeros: keep the seeds small.
                    let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                    v[..end.min(v.len())].to_vec()
                };
                let mut one = vec![seg | crashed];
                one.extend(trim(&index));
                write("index_load", &format!("{variant}_seg{s}_index.bin"), &one);
                let mut one = vec![seg | 4 | crashed];
                one.extend(trim(&time));
                write(
                    "index_load",
                    &format!("{variant}_seg{s}_timeindex.bin"),
                    &one,
                );
                if s == 1 {
                    // XOR mode with a few bits flipped in the real index.
                    write(
                        "index_load",
                        &format!("{variant}_seg{s}_index_xor.bin"),
                        &[seg | 0x20 | crashed, 0, 0, 0, 1, 0, 0, 0, 0x40],
                    );
                    let mut both = vec![seg | 8 | crashed];
                    let idx = trim(&index);
                    let tim = trim(&time);
                    let half = idx.len().max(tim.len());
                    let mut a = idx.clone();
                    a.resize(half, 0);
                    let mut b = tim.clone();
                    b.resize(half, 0);
                    both.extend(a);
                    both.extend(b);
                    write("index_load", &format!("{variant}_seg{s}_both.bin"), &both);
                }
            }
        }
        write(
            "index_load",
            "garbage_index.bin",
            &[0x01, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0, 1],
        );
        write("index_load", "deleted_index.bin", &[0x0e]);
    }

    fn segment_recover() {
        // A real segment file from a log with segment_recover's config.
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), logic::segment_recover::config()).expect("open");
        for i in 0..6i64 {
            let records: Vec<SimpleRecord> = (0..=i % 3)
                .map(|j| {
                    SimpleRecord::new(
                        1_000 + i * 10 - j,
                        Some(format!("k{i}")),
                        Some(vec![b'x'; 20 + j as usize]),
                    )
                })
                .collect();
            log.append(&records).expect("append");
        }
        log.close().expect("close");
        let real = std::fs::read(SegmentPaths::new(dir.path(), 0).log).expect("read segment");
        let with = |layout: u8, bytes: &[u8]| {
            let mut v = vec![layout];
            v.extend_from_slice(bytes);
            v
        };
        write("segment_recover", "real_segment.bin", &with(0, &real));
        write(
            "segment_recover",
            "real_segment_second.bin",
            &with(1, &real),
        );
        write(
            "segment_recover",
            "real_segment_zero_tail.bin",
            &with(4, &real),
        );
        write(
            "segment_recover",
            "torn_last_batch.bin",
            &with(0, &real[..real.len() - 7]),
        );
        let mut flipped = real.clone();
        let mid = real.len() / 2;
        flipped[mid] ^= 0x10;
        write("segment_recover", "flipped_middle.bin", &with(2, &flipped));
        let mut kafka = Vec::new();
        let mut next = 0i64;
        for (_, b) in kafka_batches() {
            let mut b = b;
            let lod = i32::from_be_bytes([b[23], b[24], b[25], b[26]]);
            b[..8].copy_from_slice(&next.to_be_bytes());
            next += i64::from(lod) + 1;
            kafka.extend(b);
        }
        write("segment_recover", "kafka_batches.bin", &with(0, &kafka));
        let mut absurd = real[..61].to_vec();
        absurd[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        write("segment_recover", "absurd_length.bin", &with(0, &absurd));
        write("segment_recover", "empty.bin", &[1]);
    }

    /// Op encodings of `fuzz/logic/log_ops.rs`, for hand-written sequences.
    mod ops {
        pub const ROLL: u8 = 5;
        pub const FLUSH: u8 = 7;
        pub const REOPEN: u8 = 8;
        pub const CRASH: u8 = 9;
        pub const CHECK: u8 = 11;
        pub const RETENTION: u8 = 13;
        pub const TICK: u8 = 14;

        /// `n` records (1..=8), value sizes ~ `size` * 37 bytes.
        pub fn append(n: u8, size: u8) -> Vec<u8> {
            let mut v = vec![0, n - 1, 3];
            for i in 0..n {
                v.extend([((size & 7) << 4) | 2, i.wrapping_mul(37), 5 + i]);
                if (1..=6).contains(&(size & 7)) {
                    v.push(i);
                }
            }
            v
        }
        pub fn append_batch(kind: u8) -> Vec<u8> {
            match kind & 3 {
                0 => {
                    let mut v = vec![2, kind];
                    v.extend(&append(3, 2)[1..]);
                    v.extend([0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 7, 0, 9, 1, 0, 4]);
                    v
                }
                1 => vec![2, kind, 2, 3, 40, 1, 20],
                2 => vec![2, kind, 2, 1, 10, 2, 20, 0, 30, 1],
                _ => {
                    let mut v = vec![2, kind];
                    v.extend(&append(2, 1)[1..]);
                    v.extend([30, 0x40]);
                    v
                }
            }
        }
        pub fn read(from: u8, max_mode: u8) -> Vec<u8> {
            vec![3, from, max_mode, 1, 0]
        }
        pub fn time(pick: u8) -> Vec<u8> {
            vec![4, 1, pick]
        }
        pub fn truncate(to: u8) -> Vec<u8> {
            vec![6, to]
        }
        pub fn clock(hundreds_ms: u16) -> Vec<u8> {
            let [a, b] = hundreds_ms.to_be_bytes();
            vec![10, a, b]
        }
        pub fn delete_records(before: u8) -> Vec<u8> {
            vec![12, before]
        }
    }

    fn log_ops() {
        use ops::*;
        let seq = |config: [u8; 5], parts: Vec<Vec<u8>>| -> Vec<u8> {
            let mut v = config.to_vec();
            for p in parts {
                v.extend(p);
            }
            v
        };
        // config bytes: segment size, index size/interval, batch limit, segment age / CRC /
        // mapped segments / flush.ms, retention and flush knobs (see log_ops::config).
        let mut parts = Vec::new();
        for i in 0..12u8 {
            parts.push(append(1 + i % 8, i % 5));
            if i % 4 == 3 {
                parts.push(read(i * 3, i % 4));
            }
        }
        parts.push(vec![CHECK]);
        write(
            "log_ops",
            "appends_and_reads.bin",
            &seq([0, 2 + 6, 0, 0, 0], parts),
        );

        let mut parts = vec![append(4, 2), append_batch(0), append_batch(0x20)];
        parts.extend([
            append_batch(1),
            append_batch(2),
            append_batch(0x12),
            append_batch(3),
        ]);
        parts.extend([
            append(8, 3),
            time(5),
            time(17),
            read(2, 1),
            vec![ROLL],
            append(2, 1),
        ]);
        parts.extend([
            truncate(9),
            vec![CHECK],
            append(3, 4),
            truncate(2),
            vec![CHECK],
        ]);
        write(
            "log_ops",
            "batches_truncate.bin",
            &seq([4, 1 + 12, 0x80 | 40, 0, 0], parts),
        );

        let mut parts = Vec::new();
        for i in 0..10u8 {
            parts.push(append(2 + i % 6, 4));
            if i % 3 == 0 {
                parts.push(vec![FLUSH]);
            }
        }
        parts.extend([
            vec![CRASH],
            vec![CHECK],
            append(3, 2),
            vec![REOPEN],
            vec![CHECK],
        ]);
        parts.extend([append(5, 5), vec![CRASH], append(1, 1), vec![CHECK]]);
        write(
            "log_ops",
            "flush_crash_reopen.bin",
            &seq([12, 5 + 6, 0, 0x1b, 0], parts),
        );

        let mut parts = Vec::new();
        for i in 0..14u8 {
            parts.push(append(3 + i % 5, 3));
            parts.push(clock(600));
        }
        parts.extend([
            delete_records(20),
            vec![CHECK],
            time(3),
            vec![RETENTION],
            vec![CHECK],
        ]);
        parts.extend([
            clock(6000),
            vec![TICK],
            vec![CHECK],
            delete_records(255),
            vec![CRASH],
        ]);
        parts.extend([
            vec![CHECK],
            append(2, 2),
            vec![RETENTION],
            vec![REOPEN],
            vec![CHECK],
        ]);
        // retention.ms 60 s, retention.bytes 6000, flush.messages 7, delete delay 1 s.
        write(
            "log_ops",
            "retention.bin",
            &seq(
                [2, 4 + 12, 0, 0x21, 2 | (3 << 2) | (3 << 4) | (1 << 6)],
                parts.clone(),
            ),
        );
        // retention.bytes 0: everything but the active segment goes.
        write(
            "log_ops",
            "retention_bytes_zero.bin",
            &seq([0, 5 + 6, 0, 1, 1 << 2], parts),
        );
    }

    #[test]
    #[ignore = "writes the seed corpora under fuzz/seeds; run by hand"]
    fn generate_seeds() {
        compressed_batch();
        batch_decode();
        index_load();
        segment_recover();
        log_ops();
    }
}
