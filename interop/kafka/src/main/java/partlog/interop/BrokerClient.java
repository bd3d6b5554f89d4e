package partlog.interop;

import java.io.BufferedWriter;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The client side of the broker round trip (checks/30-broker.sh): a real Kafka 4.4 producer,
 * consumer and Admin client against a single-node KRaft broker the script runs in a child JVM.
 *
 * <pre>
 *   BrokerClient ports                                  two free loopback ports, one line
 *   BrokerClient produce BOOTSTRAP RIDES_CSV MANIFEST   create `rides` and `rides-partlog`,
 *                                                       produce the rides into `rides`
 *   BrokerClient consume BOOTSTRAP MANIFEST             read `rides-partlog`, compare
 * </pre>
 *
 * A manifest has one line per record: partition, offset, key, timestamp, value, tab-separated
 * (a ride is a CSV line: no tabs). Every wait is bounded; a broker that is still starting is
 * retried until {@link #READY_MS}.
 */
public final class BrokerClient {
    private BrokerClient() {}

    /** How long the broker may take to answer at all (a loaded 2-core machine). */
    static final long READY_MS = 120_000;
    /** Partitions of both topics. */
    static final int PARTITIONS = 2;

    public static void main(String[] args) throws Exception {
        switch (args.length == 0 ? "" : args[0]) {
            case "ports" -> ports();
            case "produce" -> produce(args[1], Path.of(args[2]), Path.of(args[3]));
            case "consume" -> consume(args[1], Path.of(args[2]));
            default -> {
                System.err.println("usage: BrokerClient ports | produce BOOTSTRAP CSV MANIFEST"
                        + " | consume BOOTSTRAP MANIFEST");
                System.exit(2);
            }
        }
    }

    static void ports() throws IOException {
        InetAddress lo = InetAddress.getByName("127.0.0.1");
        try (ServerSocket a = new ServerSocket(0, 1, lo); ServerSocket b = new ServerSocket(0, 1, lo)) {
            System.out.println(a.getLocalPort() + " " + b.getLocalPort());
        }
    }

    static Properties common(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "30000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        return p;
    }

    /** Creates `topic` (PARTITIONS partitions, RF 1, `configs`), retrying while the broker is not ready. */
    static void createTopic(Admin admin, String topic, Map<String, String> configs, long deadline)
            throws Exception {
        while (true) {
            try {
                admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1).configs(configs)))
                        .all().get(30, TimeUnit.SECONDS);
                return;
            } catch (ExecutionException e) {
                if (e.getCause() instanceof TopicExistsException) {
                    return;
                }
                retryOrThrow("create topic " + topic, e, deadline);
            } catch (java.util.concurrent.TimeoutException e) {
                retryOrThrow("create topic " + topic, e, deadline);
            }
        }
    }

    /** Waits until `topic` has a leader for every partition; returns its description. */
    static TopicDescription awaitLeaders(Admin admin, String topic, long deadline) throws Exception {
        while (true) {
            try {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                        .get(30, TimeUnit.SECONDS).get(topic);
                if (d.partitions().size() == PARTITIONS
                        && d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
                    return d;
                }
                retryOrThrow("leaders of " + topic, new IllegalStateException(d.toString()), deadline);
            } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                retryOrThrow("describe " + topic, e, deadline);
            }
        }
    }

    static void retryOrThrow(String what, Exception e, long deadline) throws Exception {
        if (System.currentTimeMillis() > deadline) {
            throw new IllegalStateException("broker not ready after " + READY_MS + " ms: " + what, e);
        }
        System.out.println("  (broker not ready: " + what + ": " + e + "; retrying)");
        Thread.sleep(1000);
    }

    record Ride(String key, String value) {}

    static List<Ride> rides(Path csv) throws IOException {
        List<String> lines = Files.readAllLines(csv, StandardCharsets.UTF_8);
        List<Ride> rides = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            if (line.isEmpty()) {
                continue;
            }
            rides.add(new Ride(line.substring(0, line.indexOf(',')), line));
        }
        return rides;
    }

    static void produce(String bootstrap, Path csv, Path manifest) throws Exception {
        long deadline = System.currentTimeMillis() + READY_MS;
        try (Admin admin = Admin.create(common(bootstrap))) {
            // A dense offset index (an entry per batch), which partlog's lookups then walk.
            createTopic(admin, "rides", Map.of("index.interval.bytes", "128"), deadline);
            createTopic(admin, "rides-partlog", Map.of(), deadline);
            for (String t : List.of("rides", "rides-partlog")) {
                TopicDescription d = awaitLeaders(admin, t, deadline);
                System.out.println("  topic " + t + " id " + d.topicId() + ", " + d.partitions().size()
                        + " partitions");
            }
        }
        List<Ride> rides = rides(csv);
        Properties p = common(bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        // Several rides per batch, so that the lz4 batches hold more than one record.
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (Ride r : rides) {
                acks.add(producer.send(new ProducerRecord<>("rides", r.key(), r.value())));
            }
            producer.flush();
            try (BufferedWriter w = Files.newBufferedWriter(manifest, StandardCharsets.UTF_8)) {
                for (int i = 0; i < rides.size(); i++) {
                    RecordMetadata m = acks.get(i).get(120, TimeUnit.SECONDS);
                    w.write(m.partition() + "\t" + m.offset() + "\t" + rides.get(i).key() + "\t"
                            + m.timestamp() + "\t" + rides.get(i).value() + "\n");
                }
            }
        }
        System.out.println("  produced " + rides.size() + " rides into `rides` (acks=all, idempotent, lz4)");
    }

    record Expected(long offset, String key, long timestamp, String value) {}

    static void consume(String bootstrap, Path manifest) throws Exception {
        Map<Integer, List<Expected>> expected = new HashMap<>();
        for (int p = 0; p < PARTITIONS; p++) {
            expected.put(p, new ArrayList<>());
        }
        for (String line : Files.readAllLines(manifest, StandardCharsets.UTF_8)) {
            String[] f = line.split("\t", 5);
            expected.get(Integer.parseInt(f[0]))
                    .add(new Expected(Long.parseLong(f[1]), f[2], Long.parseLong(f[3]), f[4]));
        }
        long deadline = System.currentTimeMillis() + READY_MS;
        try (Admin admin = Admin.create(common(bootstrap))) {
            TopicDescription d = awaitLeaders(admin, "rides-partlog", deadline);
            System.out.println("  topic rides-partlog id " + d.topicId() + " after restart");
        }
        Properties p = common(bootstrap);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        List<String> problems = new ArrayList<>();
        int total = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < PARTITIONS; i++) {
                tps.add(new TopicPartition("rides-partlog", i));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(tps, Duration.ofSeconds(60));
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, Duration.ofSeconds(60));
            Map<Integer, List<ConsumerRecord<String, String>>> got = new HashMap<>();
            for (TopicPartition tp : tps) {
                got.put(tp.partition(), new ArrayList<>());
                long want = expected.get(tp.partition()).size();
                if (begin.get(tp) != 0 || end.get(tp) != want) {
                    problems.add(tp + ": broker offsets [" + begin.get(tp) + ", " + end.get(tp)
                            + "), partlog wrote [0, " + want + ")");
                }
            }
            int want = expected.values().stream().mapToInt(List::size).sum();
            int seen = 0;
            while (seen < want && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofSeconds(2))) {
                    got.get(r.partition()).add(r);
                    seen++;
                }
            }
            // Anything past partlog's records would show here (end offsets are checked above).
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                got.get(r.partition()).add(r);
            }
            // The time indexes: a record's timestamp (partlog wrote them strictly increasing) must
            // lead back to that record's offset (ListOffsets by timestamp). Every third record and
            // each partition's last, both partitions in one request.
            int timeLookups = 0;
            int longest = expected.values().stream().mapToInt(List::size).max().orElse(0);
            for (int i = 0; i < longest; i++) {
                Map<TopicPartition, Long> query = new HashMap<>();
                Map<TopicPartition, Expected> asked = new HashMap<>();
                for (int part = 0; part < PARTITIONS; part++) {
                    List<Expected> exp = expected.get(part);
                    if (i < exp.size() && (i % 3 == 0 || i == exp.size() - 1)) {
                        TopicPartition tp = new TopicPartition("rides-partlog", part);
                        query.put(tp, exp.get(i).timestamp());
                        asked.put(tp, exp.get(i));
                    }
                }
                if (query.isEmpty()) {
                    continue;
                }
                Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(query, Duration.ofSeconds(60));
                for (Map.Entry<TopicPartition, Expected> q : asked.entrySet()) {
                    OffsetAndTimestamp at = found.get(q.getKey());
                    Expected e = q.getValue();
                    timeLookups++;
                    if (at == null || at.offset() != e.offset() || at.timestamp() != e.timestamp()) {
                        problems.add(q.getKey() + ": offsetsForTimes(" + e.timestamp() + ") = " + at
                                + ", partlog wrote it at " + e.offset());
                    }
                }
            }
            System.out.println("  " + timeLookups + " offsetsForTimes lookups");
            for (int part = 0; part < PARTITIONS; part++) {
                List<Expected> exp = expected.get(part);
                List<ConsumerRecord<String, String>> act = got.get(part);
                if (exp.size() != act.size()) {
                    problems.add("partition " + part + ": consumer read " + act.size() + " records, partlog wrote "
                            + exp.size());
                }
                for (int i = 0; i < Math.min(exp.size(), act.size()); i++) {
                    Expected e = exp.get(i);
                    ConsumerRecord<String, String> a = act.get(i);
                    if (e.offset() != a.offset() || !e.key().equals(a.key()) || !e.value().equals(a.value())
                            || e.timestamp() != a.timestamp()) {
                        problems.add("partition " + part + " #" + i + ": partlog wrote offset " + e.offset() + " key "
                                + e.key() + " ts " + e.timestamp() + " `" + e.value() + "`; consumer read offset "
                                + a.offset() + " key " + a.key() + " ts " + a.timestamp() + " `" + a.value() + "`");
                    }
                }
                total += act.size();
            }
        }
        if (!problems.isEmpty()) {
            problems.stream().limit(20).forEach(s -> System.out.println("  MISMATCH " + s));
            System.out.println("  " + problems.size() + " mismatches");
            System.exit(1);
        }
        System.out.println("  a Kafka consumer read all " + total + " rides partlog wrote, in order, at partlog's"
                + " offsets, keys, timestamps and values equal");
    }
}
