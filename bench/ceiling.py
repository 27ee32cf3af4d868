"""The ceiling: a bare confluent-kafka loop copying records topic to topic in transactions.

Batched consume, a transaction per batch, offsets sent with the transaction; no decoding, no
state. It uses the project's client configs (choreo.kafka.clients) and its producers taking turns
(choreo.kafka.turns), so acks, linger, isolation, the batch and commit interval and the number of
transactional producers are the same as the workers'. Run as a child process:
`python -m bench.ceiling --input T --output T2 --group G` (endpoints from the environment).
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from choreo.kafka import clients
from choreo.kafka.turns import TakingTurns, turn_ids
from choreo.settings import load_settings

_stopping = False


def _stop(signum: int, frame: FrameType | None) -> None:
    global _stopping
    _stopping = True


def copy_loop(input_topic: str, output_topic: str, group: str) -> None:
    settings = load_settings()
    producer = TakingTurns([
        clients.transactional_producer(settings, tid)
        for tid in turn_ids(f"{group}-0", settings.txn_producers)
    ])
    producer.init_transactions(60)
    consumer = clients.group_consumer(settings, group, f"{group}-0")
    consumer.subscribe([input_topic])
    timeout = settings.commit_interval_ms / 1000
    try:
        while not _stopping:
            msgs = consumer.consume(settings.batch_size, timeout)
            if not msgs:
                continue
            producer.begin_transaction()
            positions: dict[int, int] = {}
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(err)
                p, offset = msg.partition() or 0, msg.offset() or 0
                producer.produce(output_topic, msg.value(), msg.key(), partition=p)
                positions[p] = offset + 1
            producer.send_offsets_to_transaction(
                [TopicPartition(input_topic, p, o) for p, o in positions.items()],
                consumer.consumer_group_metadata(), 30,
            )
            producer.commit_transaction(30)
    finally:
        consumer.close()
        producer.flush_all(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    copy_loop(args.input, args.output, args.group)


if __name__ == "__main__":
    main()
