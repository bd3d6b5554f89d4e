#!/usr/bin/env bash
# partlog -> Kafka, producer state (issue 20): partlog writes idempotent producers' batches and
# closes the log; Kafka 4.4's ProducerStateManager.readSnapshot reads every .snapshot file it
# wrote (version, CRC-32C, entries) and must find what partlog meant (tests/interop_producer_state.rs).
# Transactions: partlog writes a log of interleaved transactions with commits and aborts; Kafka's
# TransactionIndex (sanityCheck, allAbortedTxns) reads every .txnindex and must find partlog's entries.
# (Kafka -> partlog: 20-kafka-to-partlog.sh has partlog read Kafka's snapshots.)
# Run by interop/kafka/run.sh, which exports INTEROP_ROOT, INTEROP_WORK and kafka_java.
set -euo pipefail
out="$INTEROP_WORK/pstate"
rm -rf "$out" && mkdir -p "$out"
echo "pstate: partlog writes a log with idempotent producers into $out"
cd "$INTEROP_ROOT"
PARTLOG_INTEROP_OUT="$out" cargo test -q --release --all-features --target-dir "$INTEROP_ROOT/target" \
    --test interop_producer_state -- --ignored --exact partlog_writes_producer_snapshots_kafka_reads \
    partlog_writes_txn_indexes_kafka_reads
echo "pstate: Kafka reads its snapshots"
kafka_java partlog.interop.ReadSnapshots "$out/log" 2>&1 | grep -v '^SLF4J' > "$out/kafka.txt"
if ! diff -u "$out/expected.txt" "$out/kafka.txt"; then
    echo "pstate: Kafka read the snapshots differently (above: - partlog, + Kafka)"
    exit 1
fi
echo "pstate: $(ls "$out/log" | grep -c '\.snapshot$') snapshots, $(wc -l < "$out/kafka.txt") entries: Kafka reads what partlog wrote"
echo "pstate: Kafka reads partlog's aborted-transaction indexes"
kafka_java partlog.interop.ReadTxnIndexes "$out/txnlog" 2>&1 | grep -v '^SLF4J' > "$out/kafka-txn.txt"
if ! diff -u "$out/expected-txn.txt" "$out/kafka-txn.txt"; then
    echo "pstate: Kafka read the .txnindex files differently (above: - partlog, + Kafka)"
    exit 1
fi
echo "pstate: $(ls "$out/txnlog" | grep -c '\.txnindex$') .txnindex files, $(wc -l < "$out/kafka-txn.txt") aborted transactions: Kafka reads what partlog wrote"
