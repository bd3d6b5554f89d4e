#!/usr/bin/env bash
# partlog against Kafka 4.4's log layer (issue 21), row by row, same machine, same run:
# benches/vs_kafka.rs (criterion) and interop/kafka/src/jmh/java/partlog/bench/VsKafka.java (JMH,
# `mvn -Pjmh`) on the same workloads and the same bytes. Prints one line per row: each side's
# median over the runs, the spread (min-max over the runs, in % of the median), and the ratio.
# After each run it checks that both sides appended the same batches (size and CRC of each
# shape, as each side prints them) and stops if not.
#
#   benches/vs-kafka.sh            quick: 3 runs, short measurements, small fixtures (200k
#                                  records, 128 MiB recovery, 1,000 segments); ~15 min on 2
#                                  busy cores (RUNS=1: ~5 min)
#   benches/vs-kafka.sh --full     full: 5 runs, longer measurements, 1M records, 1 GiB recovery,
#                                  10,000 segments
#   RUNS=n, VS_KAFKA_DIR=dir (temp files; default target/vs-kafka/work), VS_KAFKA_OUT=dir (the
#   JSON of every run and the summary; default target/vs-kafka/<mode>), NICE=n (default 5)
#   benches/vs-kafka.sh --summary  only summarise the runs already in VS_KAFKA_OUT
#
# Not part of CI (.ci/run builds the Rust side with `cargo bench --no-run` only).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODE=quick
SUMMARY_ONLY=0
for a in "$@"; do
    case "$a" in
        --full) MODE=full ;;
        --summary) SUMMARY_ONLY=1 ;;
        *) echo "usage: $0 [--full] [--summary]" >&2; exit 2 ;;
    esac
done
if [[ $MODE == full ]]; then
    RUNS=${RUNS:-5}
    export VS_KAFKA_FULL=1
    CRIT=(--warm-up-time 2 --measurement-time 5 --sample-size 10)
    JMH_AVG=(-wi 5 -w 2s -i 5 -r 2s)
    JMH_SS=(-wi 3 -i 10)
else
    RUNS=${RUNS:-3}
    export VS_KAFKA_FULL=0
    CRIT=(--warm-up-time 1 --measurement-time 2 --sample-size 10)
    # Kafka's read path reaches its steady state after ~100k calls (1-2 s here): shorter
    # warm-ups measure the JIT at work.
    JMH_AVG=(-wi 3 -w 1s -i 2 -r 1s)
    JMH_SS=(-wi 2 -i 6)
fi
NICE=${NICE:-5}
OUT="${VS_KAFKA_OUT:-$ROOT/target/vs-kafka/$MODE}"
export VS_KAFKA_DIR="${VS_KAFKA_DIR:-$ROOT/target/vs-kafka/work}"
HERE="$ROOT/interop/kafka"

if [[ $SUMMARY_ONLY == 0 ]]; then
    mkdir -p "$OUT" "$VS_KAFKA_DIR"
    rm -rf "$OUT"/run* "$VS_KAFKA_DIR"/vsk*
    echo "== vs-kafka ($MODE, $RUNS runs): building both sides"
    (cd "$ROOT" && nice -n "$NICE" cargo bench --bench vs_kafka --no-run -q)
    nice -n "$NICE" mvn -q -B -Pjmh -f "$HERE/pom.xml" package dependency:build-classpath \
        -Dmdep.outputFile="$HERE/target/jmh/classpath.txt" -DskipTests
    CP="$HERE/target/jmh/classes:$(cat "$HERE/target/jmh/classpath.txt")"
    AVG='VsKafka\.(append|appendFlush|follower|consume|readRecord|offsetForTimestamp)$'
    SS='VsKafka\.(recovery|cleanOpen|retention|truncate)$'
    for run in $(seq 1 "$RUNS"); do
        dir="$OUT/run$run"
        mkdir -p "$dir"
        echo "== vs-kafka run $run/$RUNS: partlog (criterion)"
        rm -rf "$ROOT"/target/criterion/vs_kafka_*
        (cd "$ROOT" && nice -n "$NICE" cargo bench --bench vs_kafka -q -- "${CRIT[@]}" --noplot) \
            >"$dir/partlog.txt" 2>&1 || { cat "$dir/partlog.txt"; exit 1; }
        python3 - "$ROOT/target/criterion" "$dir/partlog.json" <<'EOF'
import json, os, sys
root, out = sys.argv[1], sys.argv[2]
rows = {}
for group in sorted(os.listdir(root)):
    if not group.startswith("vs_kafka_"):
        continue
    for side, key in (("partlog", "ns"), ("raw_write", "raw_ns")):
        fn = os.path.join(root, group, side)
        if not os.path.isdir(fn):
            continue
        for param in sorted(os.listdir(fn)):
            new = os.path.join(fn, param, "new")
            if not os.path.exists(os.path.join(new, "estimates.json")):
                continue
            est = json.load(open(os.path.join(new, "estimates.json")))
            bench = json.load(open(os.path.join(new, "benchmark.json")))
            row = rows.setdefault(group[len("vs_kafka_"):] + "/" + param, {})
            row[key] = est["median"]["point_estimate"]
            row["throughput"] = bench.get("throughput")
json.dump(rows, open(out, "w"), indent=1)
EOF
        echo "== vs-kafka run $run/$RUNS: Kafka (JMH)"
        for part in avg ss; do
            if [[ $part == avg ]]; then args=("$AVG" "${JMH_AVG[@]}"); else args=("$SS" "${JMH_SS[@]}"); fi
            nice -n "$NICE" java -cp "$CP" org.openjdk.jmh.Main "${args[@]}" -f 1 \
                -rf json -rff "$dir/kafka-$part.json" >"$dir/kafka-$part.txt" 2>&1 \
                || { tail -50 "$dir/kafka-$part.txt"; exit 1; }
        done
        # Both sides must have appended the same bytes: each shape's batch, its size and CRC.
        same_bytes() { grep -ao 'vs_kafka: batch [^:]*: [0-9]* bytes, crc [0-9a-f]*' "$1" | sort -u; }
        if [[ "$(same_bytes "$dir/partlog.txt")" != "$(same_bytes "$dir/kafka-avg.txt")" ]] \
            || [[ -z "$(same_bytes "$dir/partlog.txt")" ]]; then
            echo "vs-kafka: the two sides appended different batches:" >&2
            diff <(same_bytes "$dir/partlog.txt") <(same_bytes "$dir/kafka-avg.txt") >&2 || true
            exit 1
        fi
        echo "== vs-kafka run $run/$RUNS: same batches on both sides ($(same_bytes "$dir/partlog.txt" | wc -l) shapes, sizes and CRCs equal)"
    done
fi

python3 - "$OUT" "$MODE" <<'EOF'
import json, os, statistics, sys
out, mode = sys.argv[1], sys.argv[2]
# JMH method -> the Rust group; JMH params are the Rust parameters.
GROUP = {"append": "append", "appendFlush": "append_flush", "follower": "follower",
         "consume": "consume", "readRecord": "read_record", "offsetForTimestamp": "offset_for_timestamp",
         "recovery": "recovery", "cleanOpen": "clean_open", "retention": "retention", "truncate": "truncate"}
SINGLE = {"recovery": "unclean_open", "cleanOpen": "segments", "retention": "delete100",
          "truncate": "tail1000", "consume": "100x100B", "offsetForTimestamp": "10perbatch"}
THROUGHPUT = {"append", "append_flush", "follower", "consume"}
runs = sorted(d for d in os.listdir(out) if d.startswith("run"))
partlog, kafka, tput, raw = {}, {}, {}, {}
for r in runs:
    p = json.load(open(os.path.join(out, r, "partlog.json")))
    for row, v in p.items():
        if "ns" in v:
            partlog.setdefault(row, []).append(v["ns"])
        if "raw_ns" in v:
            raw.setdefault(row, []).append(v["raw_ns"])
        if v["throughput"]:
            tput[row] = v["throughput"]
    for part in ("avg", "ss"):
        path = os.path.join(out, r, f"kafka-{part}.json")
        if not os.path.exists(path):
            continue
        try:
            entries = json.load(open(path))
        except ValueError:
            continue  # a run still going (JMH writes its JSON at the end)
        for e in entries:
            method = e["benchmark"].rsplit(".", 1)[1]
            params = e.get("params") or {}
            param = next(iter(params.values())) if params else SINGLE[method]
            row = GROUP[method] + "/" + param
            samples = [x for it in e["primaryMetric"]["rawData"] for x in it]
            unit = e["primaryMetric"]["scoreUnit"]
            scale = {"ns/op": 1, "us/op": 1e3, "ms/op": 1e6, "s/op": 1e9}[unit]
            kafka.setdefault(row, []).append(statistics.median(samples) * scale)

def fmt_ns(ns):
    for unit, s in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= s:
            return f"{ns / s:.3g} {unit}"
    return f"{ns:.3g} ns"

def fmt(row, ns):
    t = tput.get(row)
    if row.split("/")[0] in THROUGHPUT and t and "Bytes" in t:
        mib = t['Bytes'] / ns * 1e9 / 2**20
        return f"{mib:,.0f} MiB/s" if mib >= 100 else f"{mib:.3g} MiB/s"
    return fmt_ns(ns)

def spread(xs):
    m = statistics.median(xs)
    return f"±{(max(xs) - min(xs)) / 2 / m * 100:.0f}%" if len(xs) > 1 else "-"

order = ["append", "append_flush", "follower", "consume", "read_record", "offset_for_timestamp",
         "recovery", "clean_open", "retention", "truncate"]
rows = sorted(set(partlog) | set(kafka), key=lambda r: (order.index(r.split("/")[0]), r))
lines = [f"vs-kafka, {mode} mode, {len(runs)} runs: medians over the runs, spread = half the min-max range",
         "ratio: throughput rows partlog/Kafka throughput (> 1: partlog faster); latency rows partlog/Kafka time (< 1: partlog faster)",
         "raw write: the same bytes written at the end of a plain file (synced after each in append_flush), the floor",
         "of the append rows (the follower rows write the same bytes: their floor is the append row's)",
         "",
         "| row | kind | partlog | spread | Kafka 4.4 | spread | ratio | raw write |",
         "|---|---|---|---|---|---|---|---|"]
for row in rows:
    p, k = partlog.get(row), kafka.get(row)
    kind = "throughput" if row.split("/")[0] in THROUGHPUT else "latency"
    pm = statistics.median(p) if p else None
    km = statistics.median(k) if k else None
    if pm and km:
        ratio = km / pm if kind == "throughput" else pm / km
        r = f"**{ratio:.2f}x**"
    else:
        r = "-"
    floor = raw.get(row) or raw.get(row.replace("follower/", "append/", 1))
    fl = fmt(row, statistics.median(floor)) if floor else "-"
    lines.append(f"| {row} | {kind} | {fmt(row, pm) if pm else '-'} | {spread(p) if p else '-'} | "
                 f"{fmt(row, km) if km else '-'} | {spread(k) if k else '-'} | {r} | {fl} |")
text = "\n".join(lines)
print(text)
open(os.path.join(out, "summary.md"), "w").write(text + "\n")
EOF
