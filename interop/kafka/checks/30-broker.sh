#!/usr/bin/env bash
# A real Kafka 4.4 broker round trip (issue 18), single node, KRaft, on 127.0.0.1:
#  1. a Kafka producer (acks=all, idempotent, lz4) writes the rides into `rides` (2 partitions)
#     through the broker; the broker stops cleanly; partlog opens a copy of the broker's partition
#     directories and finds every ride at the offset the broker acknowledged, in the partition
#     Kafka's partitioner chose (tests/interop_broker.rs);
#  2. partlog adopts the broker's `rides-partlog` topic (created by the broker, its topic id
#     kept) through its topic layer, writes the rides with its producer, commits a consumer
#     group's offsets in the data directory and closes it cleanly (shared checkpoints, Kafka's
#     clean-shutdown marker); the broker starts on it with no recovery, and a Kafka consumer
#     reads every ride, in order, at partlog's offsets.
# The broker runs in a child JVM; every wait is bounded and the broker is killed on any exit.
set -euo pipefail
: "${INTEROP_ROOT:?run through interop/kafka/run.sh}"
W="$INTEROP_WORK/broker"
rm -rf "$W" && mkdir -p "$W"
DATA="$W/data"
BROKER_PID=""

stop_broker_hard() {
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    BROKER_PID=""
}
trap stop_broker_hard EXIT

RIDES="${INTEROP_RIDES:-$INTEROP_ROOT/../shared/data/rides.csv}"
if [[ ! -f "$RIDES" ]]; then
    # CI's machine has the rides beside the repo; elsewhere a generated set stands in.
    echo "  $RIDES is absent: using 300 generated rides"
    RIDES="$W/rides.csv"
    {
        echo "VendorID,tpep_pickup_datetime,fare_amount"
        for i in $(seq 1 300); do echo "$((i % 3 + 1)),2020-07-01 00:$((i % 60)):00,$((i % 40)).5"; done
    } >"$RIDES"
fi

# Build partlog's side first, so that the compile does not eat into the broker's waits.
cargo test --release --all-features --manifest-path "$INTEROP_ROOT/Cargo.toml" \
    --test interop_broker --no-run -q 2>&1 | { grep -v '^ *Executable' || true; }

read -r PORT CPORT < <(timeout 60 java -cp "$INTEROP_CP" partlog.interop.BrokerClient ports)
BOOTSTRAP="127.0.0.1:$PORT"
cat >"$W/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Nothing may be deleted or compacted under the check.
log.retention.check.interval.ms=3600000
log.cleaner.enable=false
EOF
CLUSTER_ID="$(timeout 60 java -cp "$INTEROP_CP" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
timeout 120 java -Xmx256m -cp "$INTEROP_CP" kafka.tools.StorageTool format -t "$CLUSTER_ID" \
    -c "$W/server.properties" >"$W/format.log" 2>&1 || { cat "$W/format.log"; exit 1; }

# The pom pins slf4j-api 2.0 (Kafka's poms bring 1.7, which would log nothing); putting the 2.0 jar
# first again is harmless, and keeps the broker's log (what it did with partlog's directories).
SIMPLE_JAR="$(tr ':' '\n' <<<"$INTEROP_CP" | grep -m1 '/slf4j-simple-2' || true)"
API2_JAR="${SIMPLE_JAR%/slf4j-simple/*}/slf4j-api/2.0.16/slf4j-api-2.0.16.jar"
BROKER_CP="$INTEROP_CP"
[[ -n "$SIMPLE_JAR" && -f "$API2_JAR" ]] && BROKER_CP="$API2_JAR:$INTEROP_CP"

start_broker() { # $1: log name
    java -Xmx512m -Dorg.slf4j.simpleLogger.defaultLogLevel=info -cp "$BROKER_CP" \
        kafka.Kafka "$W/server.properties" >"$W/$1.log" 2>&1 &
    BROKER_PID=$!
    echo "  broker started (pid $BROKER_PID, $BOOTSTRAP, log $W/$1.log)"
}

stop_broker() { # a clean shutdown (SIGTERM), bounded at 120 s
    kill -TERM "$BROKER_PID"
    for _ in $(seq 1 240); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$BROKER_PID" 2>/dev/null; then
        echo "  broker did not stop within 120 s"
        exit 1
    fi
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
    [[ -f "$DATA/.kafka_cleanshutdown" ]] || { echo "  broker left no .kafka_cleanshutdown"; exit 1; }
    echo "  broker stopped cleanly"
}

# The clients bound their own waits (120 s for a broker that is not ready); `timeout` backs them.
client() { timeout 300 java -Xmx256m -cp "$INTEROP_CP" partlog.interop.BrokerClient "$@"; }

# --- 1. Kafka producer -> broker -> partlog reads the broker's directories
start_broker broker1
client produce "$BOOTSTRAP" "$RIDES" "$W/kafka-acks.tsv" || { tail -40 "$W/broker1.log"; exit 1; }
stop_broker
mkdir -p "$W/copy" && cp -r "$DATA/rides-0" "$DATA/rides-1" "$W/copy/"
PARTLOG_BROKER_LOGS="$W/copy" PARTLOG_BROKER_ACKS="$W/kafka-acks.tsv" \
    cargo test --release --all-features --manifest-path "$INTEROP_ROOT/Cargo.toml" -q \
    --test interop_broker -- --ignored --exact --nocapture partlog_finds_every_ride_at_the_offset_the_broker_acknowledged

# --- 2. partlog writes the broker's `rides-partlog` topic through its topic layer -> broker ->
# Kafka consumer. partlog adopts the topic the broker created (Topic::adopt: its topic id from
# partition.metadata, node 1 of the broker's cluster per meta.properties), writes the rides with
# its producer and default partitioner, commits a consumer group's offsets in the data directory
# (DATA/partlog-consumer-offsets.log) and closes: the shared checkpoints and Kafka's
# clean-shutdown marker are partlog's. The broker must start on that as after its own clean
# shutdown: no recovery, nothing refused or repaired.
PARTLOG_BROKER_DATA="$DATA" PARTLOG_BROKER_RIDES="$RIDES" PARTLOG_BROKER_WROTE="$W/partlog-wrote.tsv" \
    cargo test --release --all-features --manifest-path "$INTEROP_ROOT/Cargo.toml" -q \
    --test interop_broker -- --ignored --exact partlog_writes_rides_into_the_brokers_partition_directories
start_broker broker2
client consume "$BOOTSTRAP" "$W/partlog-wrote.tsv" || { tail -40 "$W/broker2.log"; exit 1; }
stop_broker
# What the broker made of partlog's data directory at startup.
grep -E "Skipping recovery of|Recovering [0-9]+ logs|Loaded [0-9]+ logs|handleBrokerUncleanShutdown" \
    "$W/broker2.log" | sed -e 's/^.* - /  broker: /' | head -4 || true
# (The KRaft metadata log, __cluster_metadata-0, is not the LogManager's: KafkaRaftLog opens it
# with recovery point 0 and no clean shutdown at every start, so it always shows a recovery.)
# Kafka's loader logs "rebuilding producer state from offset N" at every load of a log with
# records, after it loaded the newest producer snapshot; with N at that log's end offset it
# replayed nothing (partlog's clean close left the snapshot at the end, as Kafka's does). Any
# other N is a rebuild, a finding.
rebuilt_from_below_the_end() {
    awk '
        match($0, /LogLoader partition=rides-partlog-[01],.*rebuilding producer state from offset [0-9]+/) {
            p = $0; sub(/.*LogLoader partition=/, "", p); sub(/,.*/, "", p)
            n = $0; sub(/.*from offset /, "", n); sub(/[^0-9].*/, "", n)
            from[p] = n; line[p] = $0
        }
        match($0, /Completed load of Log\(.*topic=rides-partlog, partition=[01],.*logEndOffset=[0-9]+/) {
            q = $0; sub(/.*topic=rides-partlog, partition=/, "", q); sub(/,.*/, "", q)
            e = $0; sub(/.*logEndOffset=/, "", e); sub(/[^0-9].*/, "", e)
            end["rides-partlog-" q] = e
        }
        END { for (p in from) if (from[p] != end[p]) print line[p] }
    ' "$1"
}
if { grep -E "since no clean shutdown file was found|Recovering unflushed segment|rides-partlog-[01].*(runcat|orrupt|nvalid|tray|ebuil|elet)" \
        "$W/broker2.log" | grep -v "partition=__cluster_metadata-0," \
        | grep -v "rebuilding producer state from offset"; rebuilt_from_below_the_end "$W/broker2.log"; } \
    | head -10 | sed -e 's/^/  FINDING /' | grep .; then
    echo "  the broker recovered or repaired partlog's data directory (above; log $W/broker2.log)"
    exit 1
fi
grep -q "Skipping recovery of .* since clean shutdown file was found" "$W/broker2.log" \
    || { echo "  the broker did not report skipping recovery"; exit 1; }
# ... and partlog reads its rides back from what the broker left, and its group's offsets.
mkdir -p "$W/copy2" && cp -r "$DATA/rides-partlog-0" "$DATA/rides-partlog-1" "$W/copy2/"
PARTLOG_BROKER_LOGS="$W/copy2" PARTLOG_BROKER_WROTE="$W/partlog-wrote.tsv" \
    cargo test --release --all-features --manifest-path "$INTEROP_ROOT/Cargo.toml" -q \
    --test interop_broker -- --ignored --exact partlog_reads_its_rides_back_after_the_broker_loaded_them
PARTLOG_BROKER_DATA="$DATA" PARTLOG_BROKER_WROTE="$W/partlog-wrote.tsv" \
    cargo test --release --all-features --manifest-path "$INTEROP_ROOT/Cargo.toml" -q \
    --test interop_broker -- --ignored --exact partlogs_group_offsets_survive_the_broker_starting_on_the_data_directory
