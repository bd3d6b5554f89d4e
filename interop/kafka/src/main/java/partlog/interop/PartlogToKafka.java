package partlog.interop;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.FileRecords;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.server.storage.log.FetchIsolation;
import org.apache.kafka.server.util.KafkaScheduler;
import org.apache.kafka.storage.internals.log.EpochEntry;
import org.apache.kafka.storage.internals.log.FetchDataInfo;
import org.apache.kafka.storage.internals.log.LogConfig;
import org.apache.kafka.storage.internals.log.LogDirFailureChannel;
import org.apache.kafka.storage.internals.log.ProducerStateManagerConfig;
import org.apache.kafka.storage.internals.log.UnifiedLog;
import org.apache.kafka.storage.log.metrics.BrokerTopicStats;

/**
 * partlog -> Kafka: Kafka 4.4's log layer judges the partition directories partlog wrote
 * ({@code tests/interop_partlog_writes.rs}). For each case directory (holding {@code p2k-0/},
 * {@code manifest.txt} and {@code batches.bin}) it opens a copy of the partition directory with
 * {@code UnifiedLog.create} as a broker does at startup, compares Kafka's log start, log end and
 * leader-epoch cache with partlog's, reads every batch through {@code UnifiedLog.read} and compares
 * its bytes, asks {@code fetchOffsetByTimestamp} for partlog's timestamps, and runs
 * {@code DumpLogSegments} (deep iteration, index sanity check, index verification) on every segment.
 * Prints one summary line per case; exits 1 on any difference.
 *
 * <p>Usage: {@code PartlogToKafka <dir with case directories>}
 */
public final class PartlogToKafka {
    private PartlogToKafka() {}

    /** partlog's answers for one case, from its manifest. */
    static final class Manifest {
        final Map<String, String> values = new HashMap<>();
        final List<long[]> epochs = new ArrayList<>();
        final List<long[]> batches = new ArrayList<>();
        final List<long[]> timestamps = new ArrayList<>();

        static Manifest read(Path path) throws IOException {
            Manifest m = new Manifest();
            for (String line : Files.readAllLines(path)) {
                String[] f = line.split(" ");
                switch (f[0]) {
                    case "epoch" -> m.epochs.add(longs(f));
                    case "batch" -> m.batches.add(longs(f));
                    case "ts" -> m.timestamps.add(longs(f));
                    default -> m.values.put(f[0], line.substring(f[0].length()).trim());
                }
            }
            return m;
        }

        private static long[] longs(String[] f) {
            return Arrays.stream(f, 1, f.length).mapToLong(Long::parseLong).toArray();
        }

        long get(String key) {
            String v = values.get(key);
            if (v == null) throw new IllegalStateException("manifest lacks " + key);
            return Long.parseLong(v);
        }
    }

    /** The differences found in one case. */
    static final class Findings {
        final String caseName;
        final List<String> problems = new ArrayList<>();
        /** Kafka's own DumpLogSegments quirk, seen and tolerated (see {@link #controlQuirks}). */
        long tolerated;
        /** Offset gaps partlog wrote on purpose that DumpLogSegments reported (see {@link #gapPairs}). */
        long gapsSeen;

        Findings(String caseName) {
            this.caseName = caseName;
        }

        void check(boolean ok, String what) {
            if (!ok) problems.add(what);
        }

        void equal(Object kafka, Object partlog, String what) {
            if (!kafka.equals(partlog)) problems.add(what + ": kafka " + kafka + ", partlog " + partlog);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: PartlogToKafka <dir>");
            System.exit(2);
        }
        List<Path> cases;
        try (Stream<Path> s = Files.list(Path.of(args[0]))) {
            cases = s.filter(p -> Files.exists(p.resolve("manifest.txt"))).sorted().toList();
        }
        if (cases.isEmpty()) {
            System.err.println("partlog->kafka: no cases under " + args[0]);
            System.exit(1);
        }
        KafkaScheduler scheduler = new KafkaScheduler(1);
        scheduler.startup();
        int failed = 0;
        try {
            tolerated = controlQuirks(Path.of(args[0]).resolve("_kafka-control"), scheduler);
            for (Path c : cases) {
                Findings f = judge(c, scheduler);
                if (!f.problems.isEmpty()) {
                    failed++;
                    System.out.println("partlog->kafka " + f.caseName + ": " + f.problems.size() + " DIFFERENCES");
                    f.problems.stream().limit(20).forEach(p -> System.out.println("    " + p));
                }
            }
        } finally {
            scheduler.shutdown();
        }
        System.out.println("partlog->kafka: " + cases.size() + " cases, " + failed + " with differences");
        System.exit(failed == 0 ? 0 : 1);
    }

    /**
     * What DumpLogSegments reports about a log Kafka itself wrote, so that its own quirks are not
     * charged to partlog: Kafka 4.4's Java DumpLogSegments starts its consecutive-offsets check at
     * -1 in every file, so each segment with a non-zero base offset gets "Non-consecutive offsets"
     * and "-1 is followed by BASE". Returns true if Kafka's own log shows that (then, and only
     * then, exactly that pair of lines is tolerated in partlog's dumps); fails if Kafka's own log
     * shows anything else.
     */
    static boolean tolerated;

    static boolean controlQuirks(Path root, KafkaScheduler scheduler) throws Exception {
        Path dir = root.resolve("p2k-0");
        if (Files.exists(root)) deleteDir(root);
        Files.createDirectories(dir);
        Map<String, Object> props = new HashMap<>();
        props.put(LogConfig.INTERNAL_SEGMENT_BYTES_CONFIG, 1 << 20);
        props.put("index.interval.bytes", 1);
        UnifiedLog log = UnifiedLog.create(dir.toFile(), new LogConfig(props), 0L, 0L, scheduler,
                new BrokerTopicStats(), Time.SYSTEM, 300_000, new ProducerStateManagerConfig(86_400_000, false),
                600_000, new LogDirFailureChannel(1), true, Optional.empty());
        try {
            for (int i = 0; i < 6; i++) {
                if (i == 3) log.roll();
                log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE,
                        new SimpleRecord(1_600_000_000_000L + i, null, ("v" + i).getBytes()),
                        new SimpleRecord(1_600_000_000_000L + i, null, ("w" + i).getBytes()),
                        new SimpleRecord(1_600_000_000_000L + i, null, ("x" + i).getBytes())), 0);
            }
            // Kafka's close leaves the active segment's indexes preallocated (it trims them at the
            // next open), which DumpLogSegments' sanity check rejects: roll, so every segment
            // with data is an inactive one, and leave the empty active one out of the dump.
            log.roll();
            log.flush(true);
        } finally {
            log.close();
        }
        Findings f = new Findings("kafka's own log (control)");
        tolerated = true;
        String summary = dumpLogSegments(dir, f, true, Set.of());
        long quirks = f.tolerated;
        System.out.println("partlog->kafka control: Kafka's own 2-segment log: DumpLogSegments: " + summary
                + (quirks > 0 ? "; its '-1 is followed by <segment base>' report is Kafka's own (tolerated)" : ""));
        if (!f.problems.isEmpty()) {
            f.problems.forEach(p -> System.out.println("    " + p));
            throw new IllegalStateException("DumpLogSegments finds fault with a log Kafka wrote itself");
        }
        return quirks > 0;
    }

    static Findings judge(Path caseDir, KafkaScheduler scheduler) throws Exception {
        Manifest m = Manifest.read(caseDir.resolve("manifest.txt"));
        Findings f = new Findings(m.values.get("case"));
        boolean clean = m.get("clean") == 1;
        Path original = caseDir.resolve("p2k-0");
        // Kafka rewrites files on open (recovery, index resizing): it gets a copy.
        Path kafkaCopy = caseDir.resolve("kafka").resolve("p2k-0");
        copyDir(original, kafkaCopy);

        Map<String, Object> props = new HashMap<>();
        props.put(LogConfig.INTERNAL_SEGMENT_BYTES_CONFIG, (int) m.get("segment_bytes"));
        props.put("segment.index.bytes", (int) m.get("segment_index_bytes"));
        props.put("index.interval.bytes", (int) m.get("index_interval_bytes"));
        props.put("retention.ms", -1L);
        LogConfig config = new LogConfig(props);
        long recoveryPoint = m.get("recovery_point");
        UnifiedLog log = UnifiedLog.create(kafkaCopy.toFile(), config, m.get("log_start"), recoveryPoint,
                scheduler, new BrokerTopicStats(), Time.SYSTEM, 300_000,
                new ProducerStateManagerConfig(86_400_000, false), 600_000, new LogDirFailureChannel(1),
                clean, Optional.empty());
        int batches = 0;
        int timestampsAgreed = 0;
        try {
            f.equal(log.logStartOffset(), m.get("log_start"), "log start offset");
            f.equal(log.logEndOffset(), m.get("log_end"), "log end offset");
            f.check(log.logEndOffset() >= recoveryPoint,
                    "kafka cut below partlog's flushed recovery point " + recoveryPoint + ": " + log.logEndOffset());
            List<String> kafkaEpochs = new ArrayList<>();
            for (EpochEntry e : log.leaderEpochCache().epochEntries()) {
                kafkaEpochs.add(e.epoch() + "@" + e.startOffset());
            }
            List<String> partlogEpochs = m.epochs.stream().map(e -> e[0] + "@" + e[1]).toList();
            f.equal(kafkaEpochs, partlogEpochs, "leader epoch cache");
            List<String> segments = new ArrayList<>();
            log.logSegments().forEach(s -> segments.add(Long.toString(s.baseOffset())));
            f.equal(String.join(" ", segments), m.values.get("segments"), "segment base offsets");

            batches = compareBatches(log, m, Files.readAllBytes(caseDir.resolve("batches.bin")), f);
            for (long[] t : m.timestamps) {
                Optional<FileRecords.TimestampAndOffset> answer =
                        log.fetchOffsetByTimestamp(t[0], Optional.empty()).timestampAndOffsetOpt();
                long kafka = answer.map(a -> a.offset).orElse(-1L);
                if (kafka == t[1]) {
                    timestampsAgreed++;
                } else {
                    f.problems.add("offset for timestamp " + t[0] + ": kafka " + kafka + ", partlog " + t[1]);
                }
            }
        } finally {
            log.close();
        }
        // DumpLogSegments judges partlog's own files for a clean directory; for a crash image
        // (preallocated files, as Kafka's own crash images, that a broker recovers before use) it
        // judges the directory as partlog's recovery left it.
        Path dumped = caseDir.resolve("dump").resolve("p2k-0");
        copyDir(clean ? original : caseDir.resolve("recovered").resolve("p2k-0"), dumped);
        String dump = dumpLogSegments(dumped, f, false, gapPairs(m));
        System.out.printf("partlog->kafka %s: log start %d, log end %d, %d segments, %d epochs, %d batches byte-equal,"
                        + " %d/%d timestamp lookups agree; DumpLogSegments: %s%n",
                f.caseName, m.get("log_start"), m.get("log_end"), m.values.get("segments").split(" ").length,
                m.epochs.size(), batches, timestampsAgreed, m.timestamps.size(), dump);
        return f;
    }

    /** Reads the whole log through {@code UnifiedLog.read}; returns the batches that matched. */
    static int compareBatches(UnifiedLog log, Manifest m, byte[] expected, Findings f) throws IOException {
        int index = 0;
        int position = 0;
        int matched = 0;
        long offset = log.logStartOffset();
        while (offset < log.logEndOffset()) {
            FetchDataInfo read = log.read(offset, 1 << 20, FetchIsolation.LOG_END, true);
            long next = offset;
            for (RecordBatch batch : read.records.batches()) {
                ByteBuffer buffer = ByteBuffer.allocate(batch.sizeInBytes());
                batch.writeTo(buffer);
                byte[] bytes = buffer.array();
                if (index >= m.batches.size()) {
                    f.problems.add("kafka reads a batch partlog does not have at " + batch.baseOffset());
                    return matched;
                }
                long[] want = m.batches.get(index++);
                String where = "batch " + want[0] + ".." + want[1];
                f.equal(batch.baseOffset() + ".." + batch.lastOffset() + " (" + bytes.length + " bytes)",
                        want[0] + ".." + want[1] + " (" + want[2] + " bytes)", where);
                if (position + bytes.length <= expected.length
                        && Arrays.equals(bytes, 0, bytes.length, expected, position, position + bytes.length)) {
                    matched++;
                } else {
                    f.problems.add(where + ": kafka's bytes differ from partlog's");
                }
                f.check(batch.isValid(), where + ": kafka finds the batch invalid");
                position += (int) want[2];
                next = batch.nextOffset();
            }
            if (next == offset) {
                f.problems.add("kafka's read at " + offset + " returned nothing before log end " + log.logEndOffset());
                break;
            }
            offset = next;
        }
        f.equal(index, m.batches.size(), "batches read");
        return matched;
    }

    /**
     * Runs {@code DumpLogSegments} twice on every segment's files in {@code dir}: deep iteration with
     * the index sanity check, then index verification against the log. Any error line, mismatch,
     * invalid batch or non-zero exit is a finding. Returns a summary.
     */
    /**
     * The offset gaps partlog wrote on purpose (the {@code offset-gaps} case: a follower's copy
     * of a compacted leader), as DumpLogSegments words its non-consecutive report: "LAST is
     * followed by BASE" for a batch starting above the one before it, and "-1 is followed by
     * BASE" for a segment's first batch (Kafka's own quirk, see {@link #controlQuirks}, with the
     * first offset of a segment that starts above its base). Kafka itself reports its own
     * compacted logs the same way; a gap in any other case is a finding.
     */
    static Set<String> gapPairs(Manifest m) {
        Set<String> pairs = new HashSet<>();
        if (!"offset-gaps".equals(m.values.get("case"))) return pairs;
        for (int i = 0; i < m.batches.size(); i++) {
            long base = m.batches.get(i)[0];
            pairs.add("-1 is followed by " + base);
            if (i > 0 && base > m.batches.get(i - 1)[1] + 1) {
                pairs.add(m.batches.get(i - 1)[1] + " is followed by " + base);
            }
        }
        return pairs;
    }

    static String dumpLogSegments(Path dir, Findings f, boolean skipEmpty, Set<String> gaps) throws Exception {
        List<String> logs = new ArrayList<>();
        List<String> indexes = new ArrayList<>();
        List<String> emptyBases = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.sorted().toList()) {
                String name = p.getFileName().toString();
                if (skipEmpty && name.endsWith(".log") && Files.size(p) == 0) {
                    // An empty segment (the control's active one): its index files too.
                    emptyBases.add(name.substring(0, name.indexOf('.')));
                    continue;
                }
                if (name.endsWith(".log")) logs.add(p.toString());
                if (name.endsWith(".index") || name.endsWith(".timeindex")) indexes.add(p.toString());
            }
        }
        indexes.removeIf(i -> emptyBases.stream().anyMatch(b -> Path.of(i).getFileName().toString().startsWith(b + ".")));
        List<String> all = new ArrayList<>(logs);
        all.addAll(indexes);
        String deep = runDump(f, "--deep-iteration", "--index-sanity-check", "--files", String.join(",", all));
        String verify = runDump(f, "--verify-index-only", "--files", String.join(",", indexes));
        long valid = deep.lines().filter(l -> l.contains("isvalid: true")).count();
        // An index with no entry (a segment smaller than index.interval.bytes) "is empty".
        long sane = deep.lines().filter(l -> l.contains("passed sanity check") || l.endsWith(" is empty.")).count();
        f.check(sane == indexes.size(), "DumpLogSegments: " + sane + " of " + indexes.size() + " indexes pass the sanity check");
        int before = f.problems.size();
        List<String> lines = (deep + "\n" + verify).lines().filter(l -> !l.startsWith("SLF4J:")).toList();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            String l = line.toLowerCase();
            if (line.startsWith("Non-consecutive offsets in ") && i + 1 < lines.size()) {
                String name = Path.of(line.substring("Non-consecutive offsets in ".length()).trim())
                        .getFileName().toString();
                long base = Long.parseLong(name.substring(0, name.indexOf('.')));
                // Every pair below the header must be Kafka's quirk or a gap partlog wrote.
                int j = i + 1;
                boolean known = true;
                long quirks = 0;
                while (j < lines.size() && lines.get(j).trim().matches("-?\\d+ is followed by -?\\d+")) {
                    String pair = lines.get(j).trim();
                    boolean quirk = tolerated && pair.equals("-1 is followed by " + base);
                    if (quirk) quirks++;
                    known &= quirk || gaps.contains(pair);
                    j++;
                }
                if (known && j > i + 1) {
                    f.tolerated += quirks;
                    f.gapsSeen += j - i - 1 - quirks;
                    i = j - 1;
                    continue;
                }
            }
            if (l.contains("isvalid: false") || l.contains("invalid bytes") || l.contains("mismatch")
                    || l.contains("non-consecutive") || l.contains("is followed by") || l.contains("out of order")
                    || l.contains("exception") || l.contains("error") || l.contains("not found")
                    || l.contains("failed") || l.contains("corrupt")) {
                f.problems.add("DumpLogSegments: " + line.trim());
            }
        }
        return String.format("%d segments, %d batches valid, %d/%d indexes sane and verified, %d problems%s",
                logs.size(), valid, sane, indexes.size(), f.problems.size() - before,
                f.gapsSeen > 0 ? ", " + f.gapsSeen + " offset gaps reported as non-consecutive (the case's own)" : "");
    }

    /** Runs DumpLogSegments in a child JVM (it calls exit); returns stdout and stderr together. */
    static String runDump(Findings f, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx512m",
                "-cp", System.getProperty("java.class.path"), "org.apache.kafka.tools.DumpLogSegments"));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out;
        try (InputStream in = process.getInputStream()) {
            ByteArrayOutputStream buffer = new ByteArrayOutputStream();
            in.transferTo(buffer);
            out = buffer.toString();
        }
        int code = process.waitFor();
        if (code != 0) {
            f.problems.add("DumpLogSegments " + args[0] + " exited " + code + ": "
                    + out.lines().filter(l -> !l.startsWith("\t")).limit(5).toList());
        }
        return out;
    }

    static void copyDir(Path from, Path to) throws IOException {
        if (Files.exists(to)) deleteDir(to);
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(from)) {
            for (Path p : s.toList()) {
                Files.copy(p, to.resolve(p.getFileName()), StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
    }

    static void deleteDir(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (File file : s.sorted((a, b) -> b.compareTo(a)).map(Path::toFile).toList()) {
                if (!file.delete()) throw new IOException("cannot delete " + file);
            }
        }
    }
}
