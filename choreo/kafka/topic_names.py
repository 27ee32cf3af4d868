"""Logical topic names to physical ones, checked against the cluster with one clear error each."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaException

from choreo.domain import installation
from choreo.exceptions import ConfigurationError
from choreo.kafka import clients
from choreo.kafka.topics import logical_topics
from choreo.settings import Settings

_METADATA_TIMEOUT_S = 8.0


class StackUnreachableError(ConfigurationError):
    """No broker answered a metadata request."""


def known_topics() -> list[str]:
    """Every logical topic the services read or write, DLQs included."""
    return logical_topics(list(installation().services))


def topic_partitions(settings: Settings, logical: Iterable[str]) -> dict[str, int]:
    """Physical name -> partition count for each logical topic; one sentence if one is missing."""
    # A reader rather than an admin client: it can be told not to log every refused connection,
    # so an operator sees the one sentence below instead of a screen of librdkafka lines.
    probe = clients.reader_consumer(settings, log_level=0)
    try:
        meta = probe.list_topics(timeout=_METADATA_TIMEOUT_S).topics
    except KafkaException as e:
        raise StackUnreachableError(
            f"cannot reach Kafka at {settings.bootstrap_servers} ({e.args[0].str()}): "
            "is the stack running? try `choreo stack status`"
        ) from e
    finally:
        probe.close()
    out: dict[str, int] = {}
    for name in logical:
        physical = settings.topic(name)
        if physical not in meta or meta[physical].error is not None:
            hint = (
                "run `choreo topics create`" if name in known_topics()
                else f"known topics: {', '.join(known_topics())}"
            )
            raise ConfigurationError(f"topic {name!r} ({physical}) does not exist; {hint}")
        out[physical] = len(meta[physical].partitions)
    return out
