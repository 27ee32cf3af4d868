"""The Kafka console tools from the stack's jars: main classes and a lean JVM command line."""

from __future__ import annotations

from choreo.stack.errors import StackError
from choreo.stack.jars import classpath, jars_present
from choreo.stack.java import KAFKA_MIN_JAVA, cds_flags, find_java
from choreo.stack.kafka_node import kafka_version
from choreo.stack.layout import StackLayout

# tool name (as in bin/kafka-<name>.sh) -> main class in the kafka-tools / kafka_2.13 jars.
TOOLS: dict[str, str] = {
    "topics": "org.apache.kafka.tools.TopicCommand",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "transactions": "org.apache.kafka.tools.TransactionsCommand",
    "producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "configs": "kafka.admin.ConfigCommand",
}

# Perf tests measure throughput, so they get the full JIT and more heap; the others are short
# admin calls where JVM start time dominates.
_PERF_TOOLS = {"producer-perf-test", "consumer-perf-test"}
_LEAN_JVM = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m"]
_PERF_JVM = ["-XX:+UseG1GC", "-Xmx1g"]


def tool_command(layout: StackLayout, tool: str, args: list[str], bootstrap: str) -> list[str]:
    """The java command that runs `tool` with `args`, adding --bootstrap-server unless given."""
    main_class = TOOLS.get(tool)
    if main_class is None:
        raise StackError(f"Unknown Kafka tool {tool!r}; choose one of: {', '.join(TOOLS)}.")
    if not jars_present(layout):
        raise StackError(
            f"The Kafka jars are not in {layout.jars_dir}; run `choreo stack fetch` (or `make jars`)."
        )
    java = find_java(KAFKA_MIN_JAVA, "the Kafka tools")
    given = any(a == "--bootstrap-server" or a.startswith("--bootstrap-server=") for a in args)
    wants_help = any(a in ("--help", "-h", "--version") for a in args)
    extra = [] if given or wants_help else ["--bootstrap-server", bootstrap]
    return [
        str(java.path),
        *(_PERF_JVM if tool in _PERF_TOOLS else _LEAN_JVM),
        *cds_flags(java, layout.cds_dir / f"tools-{kafka_version(layout)}-java{java.version}.jsa"),
        f"-Dlog4j2.configurationFile={layout.template('log4j2-tools.properties')}",
        "-cp",
        classpath(layout),
        main_class,
        *extra,
        *args,
    ]
