#!/usr/bin/env bash
# Kafka -> partlog: Kafka 4.4's log layer (UnifiedLog) writes partitions, partlog opens them and
# must give Kafka's answers (tests/interop_kafka_writes.rs; interop/README.md (Kafka -> partlog)).
# Run by interop/kafka/run.sh, which exports INTEROP_ROOT, INTEROP_WORK, INTEROP_LONG and kafka_java.
set -euo pipefail
out="$INTEROP_WORK/k2p"
rm -rf "$out" && mkdir -p "$out"
echo "k2p: Kafka writes the cases into $out (long=$INTEROP_LONG)"
kafka_java partlog.interop.KafkaWrites "$out" "$INTEROP_LONG" 2>&1 | grep -v '^SLF4J'
echo "k2p: partlog opens them"
cd "$INTEROP_ROOT"
PARTLOG_INTEROP_IN="$out" cargo test --release --all-features --target-dir "$INTEROP_ROOT/target" \
    --test interop_kafka_writes -- --ignored --exact partlog_reads_what_kafkas_log_layer_wrote --nocapture
