#!/usr/bin/env bash
# partlog -> Kafka: partlog writes a matrix of partition directories (tests/interop_partlog_writes.rs)
# and Kafka 4.4's log layer opens, reads and dumps each (PartlogToKafka.java). See interop/README.md.
set -euo pipefail
out="$INTEROP_WORK/partlog-to-kafka"
mkdir -p "$out"
cd "$INTEROP_ROOT"
PARTLOG_INTEROP_OUT="$out" PARTLOG_INTEROP_LONG="$INTEROP_LONG" \
    cargo test -q --release --all-features --test interop_partlog_writes -- \
    --ignored --exact write_partition_dirs_for_kafka
kafka_java partlog.interop.PartlogToKafka "$out"
