package partlog.bench;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.server.storage.log.FetchIsolation;
import org.apache.kafka.server.util.KafkaScheduler;
import org.apache.kafka.storage.internals.log.FetchDataInfo;
import org.apache.kafka.storage.internals.log.LogAppendInfo;
import org.apache.kafka.storage.internals.log.LogConfig;
import org.apache.kafka.storage.internals.log.LogDirFailureChannel;
import org.apache.kafka.storage.internals.log.ProducerStateManagerConfig;
import org.apache.kafka.storage.internals.log.UnifiedLog;
import org.apache.kafka.storage.log.metrics.BrokerTopicStats;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Kafka 4.4's log layer ({@code UnifiedLog}, no broker, no network) on the rows of partlog's
 * {@code benches/vs_kafka.rs}, on the same bytes: records with null keys, no headers, timestamps
 * {@code TS0 + offset} (appends: {@code TS0 + i} within the batch) and values from the same
 * xorshift generator (seed 1). {@code benches/vs-kafka.sh} runs both sides and prints the ratios.
 *
 * <p>Sizes: {@code VS_KAFKA_FULL=1} the full ones, otherwise the quick ones (as the Rust side).
 * Files go under {@code VS_KAFKA_DIR} (default the system temp dir); fixtures that take long to
 * write are kept under {@code VS_KAFKA_DIR/vsk-fixtures} and reused by later forks and runs.
 *
 * <p>Test-only code: it drives Kafka's classes; nothing here is copied from Kafka.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
public class VsKafka {
    static final long TS0 = 1_704_067_200_000L;
    static final boolean FULL = "1".equals(System.getenv("VS_KAFKA_FULL"));
    static final long RECORDS = FULL ? 1_000_000 : 200_000;
    static final long RECOVERY_BYTES = FULL ? (1L << 30) - (64 << 10) : 128L << 20;
    static final int CLEAN_OPEN_SEGMENTS = FULL ? 10_000 : 1_000;
    static final int RETENTION_SEGMENTS = 150;
    static final int RETENTION_DELETE = 100;
    static final int TRUNCATE_BATCHES = 10_000;
    static final int TRUNCATE_CUT = 1_000;

    static Path base() {
        String d = System.getenv("VS_KAFKA_DIR");
        return Path.of(d != null ? d : System.getProperty("java.io.tmpdir"));
    }

    // ---- the same bytes as the Rust side -----------------------------------------------------

    /** {@code size} bytes of the xorshift stream of {@code benches/common::value}. */
    static byte[] value(int size, long seed) {
        long x = seed * 0x9E3779B97F4A7C15L | 1;
        byte[] v = new byte[size];
        for (int i = 0; i < size; i++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            v[i] = (byte) x;
        }
        return v;
    }

    /** A batch of {@code n} records of {@code valueSize} bytes, timestamps from {@code ts0}. */
    static MemoryRecords batch(int n, int valueSize, long ts0) {
        byte[] v = value(valueSize, 1);
        SimpleRecord[] recs = new SimpleRecord[n];
        for (int i = 0; i < n; i++) recs[i] = new SimpleRecord(ts0 + i, null, v);
        return MemoryRecords.withRecords(Compression.NONE, recs);
    }

    /** Reads every byte of {@code b} (xor of 8-byte words), as {@code benches/common::touch}. */
    static long touch(ByteBuffer b) {
        long acc = 0;
        int i = b.position();
        int end = b.limit();
        for (; i + 8 <= end; i += 8) acc ^= b.getLong(i);
        for (; i < end; i++) acc = Long.rotateLeft(acc, 8) ^ (b.get(i) & 0xff);
        return acc;
    }

    /** {@code benches/common::Rng}. */
    static final class Rng {
        long x;

        Rng(long seed) {
            x = seed;
        }

        long below(long n) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            return Long.remainderUnsigned(x, n);
        }
    }

    // ---- Kafka logs ---------------------------------------------------------------------------

    /** A {@code UnifiedLog} with a scheduler of its own. */
    static final class KLog implements AutoCloseable {
        final KafkaScheduler scheduler = new KafkaScheduler(1);
        final UnifiedLog log;

        KLog(File dir, LogConfig config, long recoveryPoint, boolean clean) throws IOException {
            scheduler.startup();
            log = UnifiedLog.create(dir, config, 0L, recoveryPoint, scheduler, new BrokerTopicStats(), Time.SYSTEM,
                900_000, new ProducerStateManagerConfig(86_400_000, false), 600_000, new LogDirFailureChannel(1),
                clean, Optional.empty());
        }

        @Override
        public void close() throws InterruptedException {
            log.close();
            scheduler.shutdown();
        }
    }

    static LogConfig config(Map<String, Object> extra) {
        return new LogConfig(new HashMap<>(extra));
    }

    /*
     * ACTIVE_INDEX: Kafka 4.4's UnifiedLog.close leaves the active segment's .index and
     * .timeindex at their preallocated size (10 MiB), and UnifiedLog.create with
     * lastShutdownClean=true then takes every slot of them for an entry: 1,310,720 "entries",
     * reads by offset scan the segment from its start and fetchOffsetByTimestamp finds nothing.
     * An inactive segment's indexes are trimmed at the roll, and an open with
     * lastShutdownClean=false checks the active segment. So the read fixtures are rolled before
     * they are closed (the data is in an inactive segment), and the truncation fixture is opened
     * as unclean with its recovery point at the log end.
     */
    static final LogConfig DEFAULT = config(Map.of());
    static final LogConfig SMALL_INDEX = config(Map.of("segment.index.bytes", "4096", "retention.ms", "-1"));

    /** A fresh partition directory {@code <tmp>/vsk-0} (UnifiedLog reads the partition from the name). */
    static File freshDir() throws IOException {
        Path p = Files.createTempDirectory(base(), "vsk").resolve("vsk-0");
        Files.createDirectories(p);
        return p.toFile();
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(q);
        }
    }

    /** Removes a directory made by {@link #freshDir} (and its temp parent). */
    static void removeFresh(File dir) throws IOException {
        deleteTree(dir.toPath().getParent());
    }

    /**
     * Copies the files of {@code from} (flat) into a fresh partition directory, synced: a timed
     * operation that syncs must not pay for writing back the copy.
     */
    static File copyDir(Path from) throws IOException {
        File to = freshDir();
        try (Stream<Path> s = Files.list(from)) {
            for (Path f : s.toList()) Files.copy(f, to.toPath().resolve(f.getFileName()));
        }
        syncFiles(to.toPath());
        return to;
    }

    /** {@code sync -f}: syncfs(2) of the file system holding {@code dir} (the Rust side calls it too). */
    static void syncFiles(Path dir) throws IOException {
        try {
            int rc = new ProcessBuilder("sync", "-f", dir.toString()).inheritIO().start().waitFor();
            if (rc != 0) throw new IOException("sync -f " + dir + ": exit " + rc);
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
    }

    /**
     * The fixture {@code name}: {@code VS_KAFKA_DIR/vsk-fixtures/<name>/vsk-0}, written by
     * {@code build} (into that directory, or on tmpfs with {@code tmpfs}, then copied) once.
     */
    static Path fixture(String name, boolean tmpfs, Builder build) throws Exception {
        Path root = base().resolve("vsk-fixtures").resolve(name);
        Path dir = root.resolve("vsk-0");
        if (Files.exists(root.resolve("ready"))) return dir;
        deleteTree(root);
        Files.createDirectories(dir);
        Path shm = Path.of("/dev/shm");
        if (tmpfs && Files.isDirectory(shm)) {
            Path tmp = Files.createTempDirectory(shm, "vsk").resolve("vsk-0");
            Files.createDirectories(tmp);
            build.build(tmp.toFile());
            try (Stream<Path> s = Files.list(tmp)) {
                for (Path f : s.toList()) Files.copy(f, dir.resolve(f.getFileName()));
            }
            deleteTree(tmp.getParent());
            syncFiles(dir);
        } else {
            build.build(dir.toFile());
        }
        Files.createFile(root.resolve("ready"));
        return dir;
    }

    interface Builder {
        void build(File dir) throws Exception;
    }

    /** {@code records} 100 B records, {@code perBatch} to a batch, timestamps {@code TS0 + offset}. */
    static Path readFixture(int perBatch) throws Exception {
        return fixture("read-" + perBatch + "-" + RECORDS, false, dir -> {
            try (KLog k = new KLog(dir, DEFAULT, 0, true)) {
                for (long written = 0; written < RECORDS; written += perBatch) {
                    int n = (int) Math.min(perBatch, RECORDS - written);
                    k.log.appendAsLeader(batch(n, 100, TS0 + written), 0);
                }
                // Rolled, so that the data is in an inactive segment, whose indexes Kafka trims
                // (see ACTIVE_INDEX below).
                k.log.roll();
                k.log.flush(true);
            }
        });
    }

    /** {@code segments} full segments of 4 batches of 10 x 100 B, and an empty active one. */
    static void manySegments(File dir, int segments) throws Exception {
        try (KLog k = new KLog(dir, SMALL_INDEX, 0, true)) {
            long offset = 0;
            for (int s = 0; s < segments; s++) {
                for (int b = 0; b < 4; b++) {
                    k.log.appendAsLeader(batch(10, 100, TS0 + offset), 0);
                    offset += 10;
                }
                k.log.roll();
            }
            k.log.flush(true);
        }
    }

    // ---- append / append_flush / follower -----------------------------------------------------

    @State(Scope.Thread)
    public static class Append {
        @Param({"1x100B", "100x100B", "100x1KiB"})
        public String shape;
        MemoryRecords records;
        ByteBuffer raw;
        File dir;
        KLog k;

        @Setup(Level.Trial)
        public void records() {
            records = switch (shape) {
                case "1x100B" -> batch(1, 100, TS0);
                case "100x100B" -> batch(100, 100, TS0);
                default -> batch(100, 1024, TS0);
            };
            raw = records.buffer();
            for (MutableRecordBatch b : records.batches()) b.setPartitionLeaderEpoch(0);
            System.err.printf("vs_kafka: batch %s: %d bytes, crc %08x%n", shape, records.sizeInBytes(),
                records.batches().iterator().next().checksum());
        }

        /** A fresh log per iteration (untimed), as the Rust side starts one every 512 MiB. */
        @Setup(Level.Iteration)
        public void open() throws IOException {
            dir = freshDir();
            k = new KLog(dir, DEFAULT, 0, true);
        }

        @TearDown(Level.Iteration)
        public void close() throws Exception {
            k.close();
            removeFresh(dir);
        }
    }

    /** {@code appendAsLeader} of a producer's batch (base offset 0, as a producer sends it). */
    @Benchmark
    public LogAppendInfo append(Append s) throws IOException {
        s.raw.putLong(0, 0L);
        return s.k.log.appendAsLeader(s.records, 0);
    }

    /** The same and {@code flush(false)}: every segment with unflushed data forced to disk. */
    @Benchmark
    public LogAppendInfo appendFlush(Append s) throws IOException {
        s.raw.putLong(0, 0L);
        LogAppendInfo info = s.k.log.appendAsLeader(s.records, 0);
        s.k.log.flush(false);
        return info;
    }

    /** {@code appendAsFollower} of the leader's batch, its base offset set to the log end. */
    @Benchmark
    public LogAppendInfo follower(Append s) {
        s.raw.putLong(0, s.k.log.logEndOffset());
        return s.k.log.appendAsFollower(s.records, 0);
    }

    // ---- consume / read_record / offset_for_timestamp -----------------------------------------

    @State(Scope.Benchmark)
    public static class Consume {
        KLog k;

        @Setup(Level.Trial)
        public void open() throws Exception {
            k = new KLog(readFixture(100).toFile(), DEFAULT, RECORDS, true);
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            k.close();
        }
    }

    /** The whole log in 1 MiB reads, each batch's CRC checked, every record's value touched. */
    @Benchmark
    public long consume(Consume s) throws IOException {
        long next = 0;
        long acc = 0;
        while (next < RECORDS) {
            FetchDataInfo info = s.k.log.read(next, 1 << 20, FetchIsolation.LOG_END, true);
            for (RecordBatch b : info.records.batches()) {
                b.ensureValid();
                for (Record r : b) acc ^= touch(r.value());
                next = b.nextOffset();
            }
        }
        return acc;
    }

    @State(Scope.Thread)
    public static class Lookup {
        @Param({"1perbatch", "10perbatch", "100perbatch"})
        public String layout;
        KLog k;
        Rng offsets = new Rng(0x1234_5678L);
        @Setup(Level.Trial)
        public void open() throws Exception {
            int perBatch = Integer.parseInt(layout.replace("perbatch", ""));
            k = new KLog(readFixture(perBatch).toFile(), DEFAULT, RECORDS, true);
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            k.close();
        }
    }

    @State(Scope.Thread)
    public static class TimeLookup {
        KLog k;
        Rng times = new Rng(0x8765_4321L);

        @Setup(Level.Trial)
        public void open() throws Exception {
            k = new KLog(readFixture(10).toFile(), DEFAULT, RECORDS, true);
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            k.close();
        }
    }

    /** One record by a random offset: the batch holding it read, its CRC checked, the value touched. */
    @Benchmark
    public long readRecord(Lookup s) throws IOException {
        long offset = s.offsets.below(RECORDS);
        FetchDataInfo info = s.k.log.read(offset, 1, FetchIsolation.LOG_END, true);
        for (RecordBatch b : info.records.batches()) {
            b.ensureValid();
            for (Record r : b) if (r.offset() == offset) return touch(r.value());
        }
        throw new IllegalStateException("offset " + offset + " not found");
    }

    /** The first offset whose timestamp is at or after a random timestamp. */
    @Benchmark
    public long offsetForTimestamp(TimeLookup s) {
        long ts = TS0 + s.times.below(RECORDS);
        return s.k.log.fetchOffsetByTimestamp(ts, Optional.empty()).timestampAndOffsetOpt().orElseThrow().offset;
    }

    // ---- recovery / clean_open / retention / truncate -----------------------------------------

    @State(Scope.Thread)
    public static class Recovery {
        File dir;
        long bytes;
        KLog k;

        @Setup(Level.Trial)
        public void fixture() throws Exception {
            dir = VsKafka.fixture("recovery-" + RECOVERY_BYTES, false, d -> {
                try (KLog w = new KLog(d, DEFAULT, 0, true)) {
                    MemoryRecords b = batch(16, 1024, TS0);
                    ByteBuffer raw = b.buffer();
                    while (w.log.size() + b.sizeInBytes() <= RECOVERY_BYTES) {
                        raw.putLong(0, 0L);
                        w.log.appendAsLeader(b, 0);
                    }
                    w.log.flush(true);
                }
            }).toFile();
        }

        /** Back to "crashed": no producer snapshot; the open is told recovery point 0, unclean. */
        @Setup(Level.Iteration)
        public void crash() throws IOException {
            try (Stream<Path> s = Files.list(dir.toPath())) {
                for (Path f : s.toList()) if (f.toString().endsWith(".snapshot")) Files.delete(f);
            }
        }

        @TearDown(Level.Iteration)
        public void close() throws Exception {
            if (k.log.logSegments().size() != 1) throw new IllegalStateException("one segment expected");
            k.close();
        }
    }

    /** {@code UnifiedLog.create} after a crash: every batch after the recovery point validated, indexes rebuilt. */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    public UnifiedLog recovery(Recovery s) throws IOException {
        s.k = new KLog(s.dir, DEFAULT, 0, false);
        return s.k.log;
    }

    @State(Scope.Thread)
    public static class CleanOpen {
        File dir;
        long leo;
        KLog k;

        @Setup(Level.Trial)
        public void fixture() throws Exception {
            dir = VsKafka.fixture("segments-" + CLEAN_OPEN_SEGMENTS, true,
                d -> manySegments(d, CLEAN_OPEN_SEGMENTS)).toFile();
            leo = CLEAN_OPEN_SEGMENTS * 40L;
        }

        @TearDown(Level.Iteration)
        public void close() throws Exception {
            if (k.log.logSegments().size() != CLEAN_OPEN_SEGMENTS + 1 || k.log.logEndOffset() != leo)
                throw new IllegalStateException("unexpected log: " + k.log.logSegments().size() + " segments");
            k.close();
        }
    }

    /** {@code UnifiedLog.create} of a cleanly closed log of many segments. */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    public UnifiedLog cleanOpen(CleanOpen s) throws IOException {
        s.k = new KLog(s.dir, SMALL_INDEX, s.leo, true);
        return s.k.log;
    }

    @State(Scope.Thread)
    public static class Retention {
        Path template;
        LogConfig config;
        File dir;
        KLog k;
        int deleted;

        @Setup(Level.Trial)
        public void fixture() throws Exception {
            template = VsKafka.fixture("retention-" + RETENTION_SEGMENTS, true,
                d -> manySegments(d, RETENTION_SEGMENTS));
            long segmentBytes = 4L * batch(10, 100, TS0).sizeInBytes();
            config = config(Map.of("segment.index.bytes", "4096", "retention.ms", "-1",
                "retention.bytes", Long.toString((RETENTION_SEGMENTS - RETENTION_DELETE) * segmentBytes)));
        }

        @Setup(Level.Iteration)
        public void open() throws IOException {
            dir = copyDir(template);
            k = new KLog(dir, config, RETENTION_SEGMENTS * 40L, true);
            // Kafka deletes only below the high watermark.
            k.log.updateHighWatermark(k.log.logEndOffset());
        }

        @TearDown(Level.Iteration)
        public void close() throws Exception {
            if (deleted != RETENTION_DELETE) throw new IllegalStateException("deleted " + deleted);
            k.close();
            removeFresh(dir);
        }
    }

    /** {@code deleteOldSegments}: size-based retention removes 100 segments (renamed .deleted; unlinked later). */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    public int retention(Retention s) throws IOException {
        s.deleted = s.k.log.deleteOldSegments();
        return s.deleted;
    }

    @State(Scope.Thread)
    public static class Truncate {
        Path template;
        File dir;
        KLog k;

        @Setup(Level.Trial)
        public void fixture() throws Exception {
            template = VsKafka.fixture("truncate-" + TRUNCATE_BATCHES, true, d -> {
                try (KLog w = new KLog(d, DEFAULT, 0, true)) {
                    for (int b = 0; b < TRUNCATE_BATCHES; b++) w.log.appendAsLeader(batch(10, 100, TS0 + b * 10L), 0);
                    w.log.flush(true);
                }
            });
        }

        @Setup(Level.Iteration)
        public void open() throws IOException {
            dir = copyDir(template);
            // Unclean (at a recovery point at the log end): see ACTIVE_INDEX.
            k = new KLog(dir, DEFAULT, TRUNCATE_BATCHES * 10L, false);
        }

        @TearDown(Level.Iteration)
        public void close() throws Exception {
            if (k.log.logEndOffset() != (TRUNCATE_BATCHES - TRUNCATE_CUT) * 10L) throw new IllegalStateException("truncate");
            k.close();
            removeFresh(dir);
        }
    }

    /** {@code truncateTo}: the last 1,000 of 10,000 batches cut from the active segment. */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    public boolean truncate(Truncate s) {
        return s.k.log.truncateTo((TRUNCATE_BATCHES - TRUNCATE_CUT) * 10L);
    }
}
