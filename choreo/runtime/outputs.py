"""Producing a batch's records into the open Kafka transaction, and reading their delivery reports.

The delivery reports matter twice: an own-topic offset becomes the store's next checkpoint, and
a refusal that names one output tells the poison tracker which input caused it.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message

from choreo.kafka.messages import Headers, coordinates, when_room
from choreo.kafka.turns import TransactionalProducer
from choreo.runtime.batch import Batch, RecordRefused
from choreo.runtime.poison import Coordinates, is_record_error
from choreo.runtime.watchdog import Watchdog

PRODUCE_TIMEOUT_S = 30.0
_DRAIN_S = 0.05



class TransactionalOutput:
    """`produce()` into the producer's open transaction, accounted to a batch."""

    def __init__(
        self, producer: TransactionalProducer, watchdog: Watchdog, wait_s: float = PRODUCE_TIMEOUT_S,
    ) -> None:
        self.producer = producer
        self.watchdog = watchdog
        self.wait_s = wait_s  # for room in a full local queue, before the batch fails

    def produce(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        batch: Batch | None,
        cause: Coordinates | None = None,
    ) -> None:
        """Produce one record. With `batch`, its delivery report moves the batch's delivered
        offset (own topic) or records the error; with `cause`, a refusal is blamed on that input."""
        on_delivery = None if batch is None else _delivery_report(batch, cause)

        def send() -> None:
            self._produce(topic, partition, key, value, headers, on_delivery, cause)

        try:
            # produce() never blocks (a full local queue raises BufferError at once): the
            # watchdog guards only the wait for deliveries to drain, not every record.
            send()
            return
        except BufferError:
            pass
        with self.watchdog.guard("produce", self.wait_s):
            try:
                self.producer.poll(_DRAIN_S)  # the queue was full a moment ago: drain first
                when_room(send, self.producer.poll, self.wait_s, _DRAIN_S)
            except BufferError as e:
                # A batch failure: aborting the transaction purges the queue, and a producer
                # that stays stuck fails batch after batch until the worker exits for want of
                # progress.
                raise KafkaException(KafkaError(
                    KafkaError._QUEUE_FULL,
                    f"the producer's local queue stayed full for {self.wait_s:.0f} s",
                )) from e

    def _produce(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        on_delivery: Callable[[KafkaError | None, Message], None] | None,
        cause: Coordinates | None,
    ) -> None:
        try:
            self.producer.produce(
                topic, value=value, key=key, partition=partition,
                headers=headers,  # type: ignore[arg-type]  # the stub is narrower
                on_delivery=on_delivery,
            )
        except KafkaException as e:
            if cause is not None and is_record_error(e.args[0]):
                raise RecordRefused(cause, e.args[0]) from e
            raise


def _delivery_report(
    batch: Batch, cause: Coordinates | None
) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            batch.delivery_error = err
            if cause is not None and is_record_error(err):
                batch.refused[cause] = err
            return
        _topic, partition, offset = coordinates(msg)
        if offset + 1 > batch.delivered.get(partition, 0):
            batch.delivered[partition] = offset + 1

    return on_delivery
