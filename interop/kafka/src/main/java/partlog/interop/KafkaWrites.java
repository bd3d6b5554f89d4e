package partlog.interop;

import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.stream.Stream;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.FileLogInputStream.FileChannelRecordBatch;
import org.apache.kafka.common.record.internal.FileRecords;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.server.common.RequestLocal;
import org.apache.kafka.server.storage.log.FetchIsolation;
import org.apache.kafka.server.util.KafkaScheduler;
import org.apache.kafka.storage.internals.log.AppendOrigin;
import org.apache.kafka.storage.internals.log.EpochEntry;
import org.apache.kafka.storage.internals.log.FetchDataInfo;
import org.apache.kafka.storage.internals.log.LogConfig;
import org.apache.kafka.storage.internals.log.LogDirFailureChannel;
import org.apache.kafka.storage.internals.log.LogSegment;
import org.apache.kafka.storage.internals.log.LogStartOffsetIncrementReason;
import org.apache.kafka.storage.internals.log.OffsetResultHolder;
import org.apache.kafka.storage.internals.log.ProducerStateManagerConfig;
import org.apache.kafka.storage.internals.log.UnifiedLog;
import org.apache.kafka.storage.internals.log.VerificationGuard;
import org.apache.kafka.storage.log.metrics.BrokerTopicStats;

/**
 * Writes partitions with Kafka 4.4's own log layer ({@code UnifiedLog}) for partlog to open:
 * {@code KafkaWrites <out> <long 0|1>}. Each case goes to {@code <out>/<case>/clean/<topic>-0/}
 * (closed cleanly), {@code <out>/<case>/crash/<topic>-0/} (a copy taken while the log was open,
 * after a flush and a further unflushed append) and {@code <out>/<case>/torn/<topic>-0/} (the
 * crash copy with the last 10 bytes of its active segment gone). Next to each partition directory a
 * {@code manifest.txt} holds Kafka's answers for that directory (for the crash copy: the answers
 * Kafka gives after recovering a second copy of it):
 *
 * <pre>
 * log_start N | log_end N | recovery_point N | segment BASE
 * epoch EPOCH START_OFFSET
 * batch BASE LAST SEGMENT_BASE POSITION SIZE FNV1A64_HEX CODEC TRANSACTIONAL CONTROL
 * ts TARGET OFFSET_OR_-1
 * </pre>
 *
 * Test-only code: it drives Kafka's classes as a judge; nothing here is copied from Kafka.
 */
public final class KafkaWrites {
    private KafkaWrites() {}

    private static final long NOW = System.currentTimeMillis();
    private static final Time TIME = Time.SYSTEM;
    private static boolean longRun;

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        longRun = args.length > 1 && args[1].equals("1");
        plain(out);
        compressed(out);
        transactional(out);
        follower(out);
        retention(out);
        truncation(out);
        appendTime(out);
        gaps(out);
    }

    // ---- cases -------------------------------------------------------------------------------

    /** Keyed, unkeyed, null values, headers, many small segments, explicit rolls, epoch changes. */
    static void plain(Path out) throws Exception {
        new Case(out, "plain", Map.of()) {
            void write(UnifiedLog log, Random rnd, boolean tail) throws Exception {
                int batches = longRun ? 600 : 150;
                int epoch = 0;
                for (int i = 0; i < batches; i++) {
                    if (i % 40 == 39) epoch += 1 + rnd.nextInt(2);
                    if (i % 57 == 56) log.roll();
                    log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 1 + rnd.nextInt(6))), epoch);
                }
            }
            void tail(UnifiedLog log, Random rnd) throws Exception {
                for (int i = 0; i < 5; i++)
                    log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 3)), log.latestEpoch().orElse(0));
            }
        }.run();
    }

    /** Batches compressed with each codec Kafka offers, between plain ones. */
    static void compressed(Path out) throws Exception {
        new Case(out, "compressed", Map.of()) {
            void write(UnifiedLog log, Random rnd, boolean tail) throws Exception {
                Compression[] codecs = {
                    Compression.NONE, Compression.gzip().build(), Compression.snappy().build(),
                    Compression.lz4().build(), Compression.zstd().build()
                };
                int batches = longRun ? 400 : 100;
                for (int i = 0; i < batches; i++) {
                    Compression c = codecs[i % codecs.length];
                    log.appendAsLeader(MemoryRecords.withRecords(c, records(rnd, 1 + rnd.nextInt(20))), i / 30);
                }
            }
            void tail(UnifiedLog log, Random rnd) throws Exception {
                log.appendAsLeader(MemoryRecords.withRecords(Compression.zstd().build(), records(rnd, 7)), log.latestEpoch().orElse(0));
                log.appendAsLeader(MemoryRecords.withRecords(Compression.gzip().build(), records(rnd, 7)), log.latestEpoch().orElse(0));
            }
        }.run();
    }

    /** Idempotent and transactional producers (plain and compressed), COMMIT and ABORT markers. */
    static void transactional(Path out) throws Exception {
        new Case(out, "transactional", Map.of()) {
            final Map<Long, Integer> seq = new HashMap<>();

            void write(UnifiedLog log, Random rnd, boolean tail) throws Exception {
                int rounds = longRun ? 200 : 60;
                for (int i = 0; i < rounds; i++) {
                    long pid = 1000 + rnd.nextInt(3);
                    short pepoch = 0;
                    Compression c = i % 3 == 0 ? Compression.lz4().build() : Compression.NONE;
                    switch (rnd.nextInt(3)) {
                        case 0 -> {
                            SimpleRecord[] rs = records(rnd, 1 + rnd.nextInt(5));
                            int s = seq.merge(500 + pid, rs.length, Integer::sum) - rs.length;
                            log.appendAsLeader(MemoryRecords.withIdempotentRecords(c, 500 + pid, pepoch, s, rs), 2);
                        }
                        default -> {
                            int n = 1 + rnd.nextInt(3);
                            for (int b = 0; b < n; b++) {
                                SimpleRecord[] rs = records(rnd, 1 + rnd.nextInt(5));
                                int s = seq.merge(pid, rs.length, Integer::sum) - rs.length;
                                log.appendAsLeader(MemoryRecords.withTransactionalRecords(c, pid, pepoch, s, rs), 2);
                            }
                            ControlRecordType type = rnd.nextBoolean() ? ControlRecordType.COMMIT : ControlRecordType.ABORT;
                            MemoryRecords marker = MemoryRecords.withEndTransactionMarker(pid, pepoch, new EndTransactionMarker(type, 7));
                            log.appendAsLeader(marker, 2, AppendOrigin.COORDINATOR, RequestLocal.noCaching(), VerificationGuard.SENTINEL, (short) 0);
                        }
                    }
                }
            }
            void tail(UnifiedLog log, Random rnd) throws Exception {
                long pid = 4242;
                log.appendAsLeader(MemoryRecords.withTransactionalRecords(Compression.NONE, pid, (short) 0, 0, records(rnd, 3)), 2);
                // Left open: a transaction without its marker, as after a crash of the coordinator.
            }
        }.run();
    }

    /** Follower appends: batches with the leader's offsets and epochs, some compressed. */
    static void follower(Path out) throws Exception {
        new Case(out, "follower", Map.of()) {
            void write(UnifiedLog log, Random rnd, boolean tail) throws Exception {
                int batches = longRun ? 400 : 120;
                int epoch = 3;
                for (int i = 0; i < batches; i++) {
                    if (i % 45 == 44) epoch += 2;
                    Compression c = i % 4 == 3 ? Compression.snappy().build() : Compression.NONE;
                    log.appendAsFollower(leaderBatch(log.logEndOffset(), epoch, c, records(rnd, 1 + rnd.nextInt(8))), epoch);
                }
            }
            void tail(UnifiedLog log, Random rnd) throws Exception {
                int epoch = log.latestEpoch().orElse(0) + 1;
                log.appendAsFollower(leaderBatch(log.logEndOffset(), epoch, Compression.NONE, records(rnd, 4)), epoch);
            }
        }.run();
    }

    /** Retention by size and time, then delete-records (log start inside a segment). */
    static void retention(Path out) throws Exception {
        Map<String, Object> cfg = new HashMap<>();
        cfg.put("retention.bytes", "20000");
        cfg.put("retention.ms", String.valueOf(2L * 24 * 3600 * 1000));
        cfg.put("file.delete.delay.ms", "0");
        new Case(out, "retention", cfg) {
            void write(UnifiedLog log, Random rnd, boolean tail) throws Exception {
                int batches = longRun ? 500 : 200;
                for (int i = 0; i < batches; i++) {
                    // The first batches are older than retention.ms.
                    long base = i < 30 ? NOW - 3L * 24 * 3600 * 1000 : NOW - 3600_000L;
                    log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 1 + rnd.nextInt(5), base)), 1);
                    if (i == 60) log.deleteOldSegments();
                }
                log.updateHighWatermark(log.logEndOffset());
                log.deleteOldSegments();
                long mid = log.logStartOffset() + (log.logEndOffset() - log.logStartOffset()) / 3 + 1;
                log.maybeIncrementLogStartOffset(mid, LogStartOffsetIncrementReason.ClientRecordDeletion);
                log.deleteOldSegments();
            }
            void tail(UnifiedLog log, Random rnd) throws Exception {
                log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 5, NOW)), 1);
            }
        }.run();
    }

    /**
     * Truncation as replication does it (to an epoch's end offset, a batch boundary), then
     * appends in new epochs.
     */
    static void truncation(Path out) throws Exception {
        new Case(out, "truncation", Map.of()) {
            void write(UnifiedLog log, Random rnd, boolean tail) throws Exception {
                List<Long> starts = new ArrayList<>();
                for (int i = 0; i < 80; i++)
                    starts.add(log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 1 + rnd.nextInt(5))), i < 50 ? 1 : 2).firstOffset());
                log.truncateTo(starts.get(65));
                for (int i = 0; i < 40; i++)
                    starts.add(log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 1 + rnd.nextInt(5))), 4).firstOffset());
                // Truncate into an older segment: later segments go.
                long second = log.logSegments().get(1).baseOffset();
                log.truncateTo(starts.stream().filter(o -> o > second).findFirst().orElseThrow());
                for (int i = 0; i < 30; i++)
                    log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 1 + rnd.nextInt(5))), 6);
            }
            void tail(UnifiedLog log, Random rnd) throws Exception {
                log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 2)), 6);
            }
        }.run();
    }

    /** A LogAppendTime topic: Kafka stamps each batch with its append time (plain and gzip). */
    static void appendTime(Path out) throws Exception {
        new Case(out, "append_time", Map.of("message.timestamp.type", "LogAppendTime")) {
            void write(UnifiedLog log, Random rnd, boolean tail) throws Exception {
                int batches = longRun ? 300 : 80;
                for (int i = 0; i < batches; i++) {
                    Compression c = i % 2 == 0 ? Compression.NONE : Compression.gzip().build();
                    log.appendAsLeader(MemoryRecords.withRecords(c, records(rnd, 1 + rnd.nextInt(5))), 1);
                    if (i % 10 == 9) Thread.sleep(2); // distinct append times
                }
            }
            void tail(UnifiedLog log, Random rnd) throws Exception {
                log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 3)), 1);
            }
        }.run();
    }

    /**
     * Offset gaps, which Kafka's logs may hold: a truncation to an offset inside a batch (the
     * log end moves to that offset, the batch goes: its offsets are never reused), and a
     * follower's copy of a compacted leader (batches that skip offsets). partlog keeps the gaps
     * as Kafka does (issue 18; see interop/README.md (Kafka -> partlog)).
     */
    static void gaps(Path out) throws Exception {
        new Case(out, "gaps", Map.of()) {
            void write(UnifiedLog log, Random rnd, boolean tail) throws Exception {
                for (int i = 0; i < 60; i++)
                    log.appendAsLeader(MemoryRecords.withRecords(Compression.NONE, records(rnd, 3)), 1);
                log.truncateTo(log.logEndOffset() - 40);
                for (int i = 0; i < 60; i++) {
                    long next = log.logEndOffset() + (i % 3 == 0 ? 5 : 0);
                    log.appendAsFollower(leaderBatch(next, 2, Compression.NONE, records(rnd, 3)), 2);
                }
            }
            void tail(UnifiedLog log, Random rnd) throws Exception {
                log.appendAsFollower(leaderBatch(log.logEndOffset() + 2, 2, Compression.NONE, records(rnd, 3)), 2);
            }
        }.run();
    }

    // ---- the case runner -----------------------------------------------------------------------

    abstract static class Case {
        final Path out;
        final String name;
        final Map<String, Object> extra;
        final Uuid topicId = Uuid.randomUuid();
        final Map<String, KafkaScheduler> schedulers = new HashMap<>();

        Case(Path out, String name, Map<String, Object> extra) {
            this.out = out;
            this.name = name;
            this.extra = extra;
        }

        abstract void write(UnifiedLog log, Random rnd, boolean tail) throws Exception;

        abstract void tail(UnifiedLog log, Random rnd) throws Exception;

        LogConfig config() {
            Map<String, Object> m = new HashMap<>();
            m.put(LogConfig.INTERNAL_SEGMENT_BYTES_CONFIG, "8192");
            m.put("segment.index.bytes", "4096");
            m.put("index.interval.bytes", "512");
            m.putAll(extra);
            return new LogConfig(m);
        }

        void run() throws Exception {
            String topic = "k2p-" + name;
            // Clean: written, flushed, closed.
            Path cleanDir = out.resolve(name).resolve("clean").resolve(topic + "-0");
            Files.createDirectories(cleanDir);
            UnifiedLog log = open(cleanDir.toFile(), 0, 0, true);
            write(log, new Random(name.hashCode()), false);
            log.flush(true);
            manifest(log, cleanDir.resolveSibling("manifest.txt"));
            close(log);

            // Crash: written, flushed, one more unflushed append, copied while open.
            Path work = out.resolve(name).resolve("work").resolve(topic + "-0");
            Files.createDirectories(work);
            log = open(work.toFile(), 0, 0, true);
            Random rnd = new Random(name.hashCode());
            write(log, rnd, true);
            log.flush(true);
            long recoveryPoint = log.recoveryPoint();
            long logStart = log.logStartOffset();
            tail(log, rnd);
            Path crashDir = out.resolve(name).resolve("crash").resolve(topic + "-0");
            Path judgeDir = out.resolve(name).resolve("judge").resolve(topic + "-0");
            copy(work, crashDir);
            // Torn: the same, but the active segment lost the last 10 bytes of its tail (a batch
            // torn by the crash).
            Path tornDir = out.resolve(name).resolve("torn").resolve(topic + "-0");
            copy(work, tornDir);
            long activeBase = log.logSegments().get(log.logSegments().size() - 1).baseOffset();
            close(log);
            Path activeLog = tornDir.resolve(String.format("%020d.log", activeBase));
            try (var ch = java.nio.channels.FileChannel.open(activeLog, java.nio.file.StandardOpenOption.WRITE)) {
                ch.truncate(ch.size() - 10);
            }
            // Kafka's answers for the crash copies: what Kafka itself recovers from them.
            for (Path dir : List.of(crashDir, tornDir)) {
                deleteTree(judgeDir);
                copy(dir, judgeDir);
                UnifiedLog judged = open(judgeDir.toFile(), logStart, recoveryPoint, false);
                manifest(judged, dir.resolveSibling("manifest.txt"), recoveryPoint);
                close(judged);
            }
            deleteTree(out.resolve(name).resolve("work"));
            deleteTree(out.resolve(name).resolve("judge"));
            System.out.println("k2p: wrote case " + name);
        }

        /**
         * Opens a log with a scheduler of its own: {@link #close} shuts it down, so that the
         * asynchronous checkpoint writes Kafka schedules (the leader-epoch file after a log-start
         * move) are done before the directory is copied, judged or deleted.
         */
        UnifiedLog open(File dir, long logStart, long recoveryPoint, boolean clean) throws IOException {
            KafkaScheduler scheduler = new KafkaScheduler(1);
            scheduler.startup();
            schedulers.put(dir.getAbsolutePath(), scheduler);
            return UnifiedLog.create(dir, config(), logStart, recoveryPoint, scheduler, new BrokerTopicStats(), TIME,
                900_000, new ProducerStateManagerConfig(86_400_000, false), 600_000, new LogDirFailureChannel(1),
                clean, Optional.of(topicId));
        }

        void close(UnifiedLog log) throws InterruptedException {
            log.close();
            schedulers.remove(log.dir().getAbsolutePath()).shutdown();
        }

        void manifest(UnifiedLog log, Path file) throws IOException {
            manifest(log, file, log.recoveryPoint());
        }

        void manifest(UnifiedLog log, Path file, long recoveryPoint) throws IOException {
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file, StandardCharsets.UTF_8))) {
                w.println("log_start " + log.logStartOffset());
                w.println("log_end " + log.logEndOffset());
                w.println("recovery_point " + recoveryPoint);
                for (LogSegment seg : log.logSegments()) w.println("segment " + seg.baseOffset());
                for (EpochEntry e : log.leaderEpochCache().epochEntries())
                    w.println("epoch " + e.epoch() + " " + e.startOffset());
                long minTs = Long.MAX_VALUE;
                long maxTs = Long.MIN_VALUE;
                List<Long> readBases = new ArrayList<>();
                // Kafka's read path, from the log start to the end.
                long next = log.logStartOffset();
                while (next < log.logEndOffset()) {
                    FetchDataInfo info = log.read(next, 1 << 20, FetchIsolation.LOG_END, true);
                    int n = 0;
                    for (RecordBatch b : info.records.batches()) {
                        readBases.add(b.baseOffset());
                        next = b.lastOffset() + 1;
                        n++;
                    }
                    if (n == 0) throw new IllegalStateException(name + ": empty read at " + next);
                }
                int i = 0;
                for (LogSegment seg : log.logSegments()) {
                    FileRecords fr = seg.log();
                    byte[] all = Files.readAllBytes(fr.file().toPath());
                    for (FileChannelRecordBatch b : fr.batches()) {
                        if (b.lastOffset() < log.logStartOffset()) continue;
                        if (i >= readBases.size() || readBases.get(i) != b.baseOffset())
                            throw new IllegalStateException(name + ": read path and segment files disagree at " + b.baseOffset());
                        i++;
                        int pos = b.position();
                        int size = b.sizeInBytes();
                        w.printf("batch %d %d %d %d %d %016x %s %b %b%n", b.baseOffset(), b.lastOffset(), seg.baseOffset(),
                            pos, size, fnv(all, pos, size), b.compressionType().name, b.isTransactional(), b.isControlBatch());
                        if (!b.isControlBatch()) {
                            minTs = Math.min(minTs, b.maxTimestamp());
                            maxTs = Math.max(maxTs, b.maxTimestamp());
                        }
                    }
                }
                if (i != readBases.size()) throw new IllegalStateException(name + ": read path returned more batches");
                if (minTs == Long.MAX_VALUE) return;
                Random rnd = new Random(7 + name.hashCode());
                int lookups = 1000;
                long lo = minTs - 5000;
                long span = maxTs - lo + 5000;
                for (int k = 0; k < lookups; k++) {
                    long target = lo + (long) (rnd.nextDouble() * span);
                    OffsetResultHolder r = log.fetchOffsetByTimestamp(target, Optional.empty());
                    long offset = r.timestampAndOffsetOpt().map(t -> t.offset).orElse(-1L);
                    w.println("ts " + target + " " + offset);
                }
            }
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------

    static SimpleRecord[] records(Random rnd, int n) {
        return records(rnd, n, NOW - 3600_000L);
    }

    /** n records: keys null or set, values null or set, some headers, timestamps around base (not monotonic). */
    static SimpleRecord[] records(Random rnd, int n, long base) {
        SimpleRecord[] rs = new SimpleRecord[n];
        for (int i = 0; i < n; i++) {
            long ts = base + rnd.nextInt(600_000);
            byte[] key = rnd.nextInt(4) == 0 ? null : ("key-" + rnd.nextInt(50)).getBytes(StandardCharsets.UTF_8);
            byte[] value = rnd.nextInt(10) == 0 ? null : bytes(rnd, rnd.nextInt(200));
            Header[] headers = new Header[rnd.nextInt(3)];
            for (int h = 0; h < headers.length; h++)
                headers[h] = new RecordHeader("h" + h, rnd.nextBoolean() ? null : bytes(rnd, rnd.nextInt(10)));
            rs[i] = new SimpleRecord(ts, key, value, headers);
        }
        return rs;
    }

    static byte[] bytes(Random rnd, int n) {
        byte[] b = new byte[n];
        // Text-like, so that the codecs have something to compress.
        for (int i = 0; i < n; i++) b[i] = (byte) ('a' + rnd.nextInt(6));
        return b;
    }

    /** A batch as a leader would send it to a follower: offsets assigned, its epoch stamped. */
    static MemoryRecords leaderBatch(long baseOffset, int epoch, Compression c, SimpleRecord[] rs) {
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        MemoryRecordsBuilder b = MemoryRecords.builder(buf, RecordBatch.MAGIC_VALUE_V2, c, TimestampType.CREATE_TIME, baseOffset,
            RecordBatch.NO_TIMESTAMP, RecordBatch.NO_PRODUCER_ID, RecordBatch.NO_PRODUCER_EPOCH, RecordBatch.NO_SEQUENCE, false, epoch);
        long o = baseOffset;
        for (SimpleRecord r : rs) b.appendWithOffset(o++, r);
        return b.build();
    }

    static long fnv(byte[] data, int pos, int len) {
        long h = 0xcbf29ce484222325L;
        for (int i = pos; i < pos + len; i++) {
            h ^= data[i] & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(from)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                // Files of deleted segments vanish asynchronously (file.delete.delay.ms): skip them.
                if (p.getFileName().toString().endsWith(".deleted")) continue;
                try {
                    Files.copy(p, to.resolve(p.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                } catch (java.nio.file.NoSuchFileException gone) {
                    // Deleted meanwhile.
                }
            }
        }
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted((a, b) -> b.compareTo(a)).toList()) Files.delete(q);
        }
    }
}
