"""Every Kafka and registry client is built here, so there is one place that sets their config."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from choreo.exceptions import ConfigurationError
from choreo.kafka.partitioner import LIBRDKAFKA_PARTITIONER
from choreo.settings import Settings

C = TypeVar("C", Producer, Consumer, AdminClient)

log = logging.getLogger("choreo.kafka")

REGISTRY_TIMEOUT_S = 10
# The largest record our producers send (librdkafka's message.max.bytes, also its default;
# brokers accept 1 MiB). The worker checks its outputs and dead letters against it, less a
# margin for Kafka's own record framing, before producing them.
MAX_RECORD_BYTES = 1_000_000
RECORD_FRAMING_BYTES = 1024


METADATA_REFRESH_MS = 2000
# How long a client waits for a broker's answer before it gives up on that connection
# (librdkafka's socket.timeout.ms; its default is 60 s). A broker that hangs without closing its
# connections (paused, swapping) holds every request sent to it. A client asks one broker at a
# time for metadata and sends no new request while one is open, so a metadata request sent to
# the hung broker would hide, until it woke, that the controller had moved its leaders and
# coordinators away; fetches and transaction calls to it would wait as long. Past this the
# request fails, the connection closes, and the client asks another broker. A healthy broker
# answers in milliseconds; requests that wait on purpose (fetch, join) add their own wait.
REQUEST_TIMEOUT_MS = 5000


def base_config(settings: Settings) -> dict[str, Any]:
    # Security settings (SASL, TLS) pass through from settings.kafka_extra unchanged.
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        # Find a partition's new leader within seconds after a broker dies or hangs (default:
        # 5 min). A hung broker answers nothing, so no error prompts a refresh: requests wait on
        # it until this timer shows the leaders the controller moved away. One small request
        # per client every 2 s, for the topics it uses.
        "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
        "socket.timeout.ms": REQUEST_TIMEOUT_MS,
        **settings.kafka_extra,
    }


# Properties whose values are secrets even when they do not come from CHOREO_KAFKA_*.
_SECRET_WORDS = ("password", "secret", "token", "basic.auth", "jaas", "sasl.username", "key.pem")


def logged_errors(then: Callable[[KafkaError], None]) -> Callable[[KafkaError], None]:
    """An `error_cb` that logs each client error, as librdkafka does when none is set (an
    error_cb replaces that line), then hands it on."""

    def on_error(err: KafkaError) -> None:
        level = logging.ERROR if err.fatal() else logging.WARNING
        log.log(level, "client error: %s: %s", err.name(), err.str())
        then(err)

    return on_error


def _built(make: Callable[[dict[str, Any]], C], config: dict[str, Any], settings: Settings) -> C:
    """`make(config)`, or one sentence if the client library refuses the config.

    librdkafka's refusal quotes the value (`Invalid value "..." for configuration property
    "security.protocol"`), and that value may be a password set in CHOREO_KAFKA_*: every
    passed-through value and every secret-looking one is masked before the text goes anywhere.
    """
    try:
        return make(config)
    except (KafkaException, ValueError, TypeError) as e:
        text = redacted(client_error_text(e), _secret_values(config, settings.kafka_extra))
        # Not chained: the cause's message holds the unmasked value, and a traceback would print it.
        raise ConfigurationError(
            f"the Kafka client settings were refused: {text}; check the CHOREO_KAFKA_* settings"
        ) from None


def _secret_values(config: Mapping[str, Any], passed_through: Mapping[str, str]) -> list[str]:
    secret_keys = [k for k in config if any(word in k for word in _SECRET_WORDS)]
    return [str(v) for v in [*passed_through.values(), *(config[k] for k in secret_keys)] if str(v)]


def redacted(text: str, secrets: list[str]) -> str:
    """`text` with each of `secrets` shown as *** (longest first, so none is left half shown)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def client_error_text(e: BaseException) -> str:
    """The client library's own sentence for an error it raised.

    confluent-kafka serves a fatal error (a fenced producer, say) by setting a KafkaException
    and going on with the delivery reports queued after it; the first report then fails as
    `SystemError: <method 'code' of KafkaError> returned a result with an exception set`,
    caused by that KafkaException. The fatal error is the one that says what happened.
    """
    cause: BaseException | None = e
    while cause is not None and not isinstance(cause, KafkaException):
        cause = cause.__cause__
    if cause is not None and cause.args and hasattr(cause.args[0], "str"):
        return str(cause.args[0].str())
    return str(e)


def admin_client(settings: Settings, **extra: Any) -> AdminClient:
    return _built(AdminClient, {**base_config(settings), **extra}, settings)


def transactional_producer(settings: Settings, transactional_id: str, **extra: Any) -> Producer:
    return _built(Producer, {
        **base_config(settings),
        "transactional.id": transactional_id,
        # While a coordinator moves, its calls are refused and retried: at most 250 ms apart
        # (librdkafka: backoff doubling to 1 s), so a saga resumes soon after the move.
        "retry.backoff.max.ms": 250,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "transaction.timeout.ms": settings.transaction_timeout_ms,
        "message.max.bytes": MAX_RECORD_BYTES,
        **extra,
    }, settings)


def plain_producer(settings: Settings, **extra: Any) -> Producer:
    """Edge producers: idempotent, keyed with the Java-compatible partitioner."""
    return _built(Producer, {
        **base_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "partitioner": LIBRDKAFKA_PARTITIONER,
        **extra,
    }, settings)


# How often a group member asks which broker coordinates its group (librdkafka's default: every
# 10 min, a tenth of that once the coordinator's connection is down). A coordinator that hangs
# without closing its connections (paused, or swapping) keeps the member heartbeating into
# silence until its session expires and the group rebalances; asking every 2 s finds the broker
# that took the group over within seconds of the controller fencing the silent one, and the
# member moves there with its session intact. One small request per member every 2 s.
COORDINATOR_QUERY_MS = 2000


def group_consumer(settings: Settings, group_id: str, instance_id: str, **extra: Any) -> Consumer:
    return _built(Consumer, {
        "coordinator.query.interval.ms": COORDINATOR_QUERY_MS,  # a CHOREO_KAFKA_* setting wins
        **base_config(settings),
        "group.id": group_id,
        "group.instance.id": instance_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",  # the worker passes its service's first_read
        # range gives one member partition N of every input topic: the state of partition N
        # is one store, which only one instance may hold. cooperative-sticky does not keep
        # the topics together, so two instances could both need one store (ADR 0005).
        "partition.assignment.strategy": "range",
        "session.timeout.ms": settings.session_timeout_ms,
        **extra,
    }, settings)


def reader_consumer(settings: Settings, *, committed_only: bool = True, **extra: Any) -> Consumer:
    """A group-less consumer for manual assignment: restore, rebuild, replay, audit."""
    return _built(Consumer, {
        **base_config(settings),
        "group.id": "choreo-reader",  # required by librdkafka; never used to commit
        "enable.auto.commit": False,
        "isolation.level": "read_committed" if committed_only else "read_uncommitted",
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        **extra,
    }, settings)


def registry_client(settings: Settings) -> SchemaRegistryClient:
    # A bounded timeout: a registry request that hangs must fail (and be retried by the client
    # or by the batch) rather than stall a worker forever.
    return SchemaRegistryClient({"url": settings.schema_registry_url, "timeout": REGISTRY_TIMEOUT_S})
