#!/usr/bin/env bash
# partlog's Kafka interop harness: Kafka 4.4.0's own code judges partlog's files, and partlog
# judges Kafka's. Everything it needs comes from Maven Central (the pinned pom.xml) and crates.io.
#
#   interop/kafka/run.sh           the bounded run CI makes (.ci/run calls it)
#   interop/kafka/run.sh --long    the longer matrix
#
# Each check is a script in checks/ (run in name order); each gets the variables below and prints
# what Kafka reported. Work files go to $INTEROP_WORK (kept for a look after a failure).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export INTEROP_LONG=0
[[ "${1:-}" == "--long" ]] && INTEROP_LONG=1
export INTEROP_ROOT="$ROOT" INTEROP_HERE="$HERE"
export INTEROP_WORK="${INTEROP_WORK:-$ROOT/target/interop}"
rm -rf "$INTEROP_WORK" && mkdir -p "$INTEROP_WORK"

command -v java >/dev/null || { echo "interop: java not found (Java 17+ is required)"; exit 1; }
command -v mvn >/dev/null || { echo "interop: mvn not found (Maven is required)"; exit 1; }

echo "== interop: building the Kafka side (Maven, Kafka 4.4.0)"
mvn -q -B -f "$HERE/pom.xml" package dependency:build-classpath \
    -Dmdep.outputFile="$HERE/target/classpath.txt" -DskipTests
export INTEROP_CP="$HERE/target/classes:$(cat "$HERE/target/classpath.txt")"
# `kafka_java Class args...` runs one of the harness's Java programs on Kafka's jars.
kafka_java() { java -Xmx1g -cp "$INTEROP_CP" "$@"; }
export -f kafka_java
kafka_java partlog.interop.Version

for check in "$HERE"/checks/*.sh; do
    [[ -e "$check" ]] || continue
    echo "== interop: $(basename "$check")"
    start=$SECONDS
    bash "$check"
    echo "== interop: $(basename "$check") passed in $((SECONDS - start)) s"
done
echo "== interop: all checks passed"
