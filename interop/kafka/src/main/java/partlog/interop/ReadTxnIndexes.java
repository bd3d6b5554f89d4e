package partlog.interop;

import java.io.File;
import java.util.Arrays;

import org.apache.kafka.common.message.AbortedTxn;
import org.apache.kafka.storage.internals.log.TransactionIndex;

/**
 * Reads every aborted-transaction index ({@code <base offset>.txnindex}) in a directory with
 * Kafka's own {@code TransactionIndex}: {@code sanityCheck} (no entry below the segment's base
 * offset), then {@code allAbortedTxns}, and prints one line per entry in file order:
 * {@code file producerId firstOffset lastOffset lastStableOffset}. A file Kafka refuses makes it
 * exit non-zero.
 */
public final class ReadTxnIndexes {
    private ReadTxnIndexes() {}

    public static void main(String[] args) throws Exception {
        File dir = new File(args[0]);
        File[] files = dir.listFiles((d, name) -> name.endsWith(".txnindex"));
        if (files == null || files.length == 0) {
            System.err.println("no .txnindex in " + dir);
            System.exit(2);
        }
        Arrays.sort(files);
        for (File f : files) {
            long base = Long.parseLong(f.getName().substring(0, 20));
            try (TransactionIndex index = new TransactionIndex(base, f)) {
                index.sanityCheck();
                for (AbortedTxn t : index.allAbortedTxns()) {
                    System.out.println(String.join(" ", f.getName(), Long.toString(t.producerId()),
                        Long.toString(t.firstOffset()), Long.toString(t.lastOffset()),
                        Long.toString(t.lastStableOffset())));
                }
            }
        }
    }
}
