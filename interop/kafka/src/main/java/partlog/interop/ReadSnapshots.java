package partlog.interop;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import org.apache.kafka.storage.internals.log.BatchMetadata;
import org.apache.kafka.storage.internals.log.ProducerStateEntry;
import org.apache.kafka.storage.internals.log.ProducerStateManager;

/**
 * Reads every producer snapshot ({@code <offset>.snapshot}) in a directory with Kafka's own
 * {@code ProducerStateManager.readSnapshot} (which checks the version and the CRC-32C) and prints
 * one line per entry, sorted: {@code file producerId epoch lastSeq lastOffset offsetDelta
 * timestamp coordinatorEpoch currentTxnFirstOffset}. A file Kafka refuses makes it exit non-zero.
 */
public final class ReadSnapshots {
    private ReadSnapshots() {}

    public static void main(String[] args) throws Exception {
        File dir = new File(args[0]);
        File[] files = dir.listFiles((d, name) -> name.endsWith(".snapshot"));
        if (files == null || files.length == 0) {
            System.err.println("no snapshot in " + dir);
            System.exit(2);
        }
        Arrays.sort(files);
        List<String> lines = new ArrayList<>();
        for (File f : files) {
            for (ProducerStateEntry e : ProducerStateManager.readSnapshot(f)) {
                int lastSeq = -1;
                long lastOffset = -1;
                int offsetDelta = 0;
                long timestamp = e.lastTimestamp();
                for (BatchMetadata b : e.batchMetadata()) {
                    lastSeq = b.lastSeq();
                    lastOffset = b.lastOffset();
                    offsetDelta = b.offsetDelta();
                    timestamp = b.timestamp();
                }
                lines.add(String.join(" ", f.getName(), Long.toString(e.producerId()),
                    Short.toString(e.producerEpoch()), Integer.toString(lastSeq),
                    Long.toString(lastOffset), Integer.toString(offsetDelta), Long.toString(timestamp),
                    Integer.toString(e.coordinatorEpoch()),
                    Long.toString(e.currentTxnFirstOffset().orElse(-1L))));
            }
        }
        Collections.sort(lines);
        for (String l : lines) {
            System.out.println(l);
        }
    }
}
