package partlog.interop;

/** Prints the Kafka version on the classpath: the harness's first check that Kafka's jars load. */
public final class Version {
    private Version() {}

    public static void main(String[] args) {
        System.out.println("kafka " + org.apache.kafka.common.utils.internals.AppInfoParser.getVersion());
    }
}
