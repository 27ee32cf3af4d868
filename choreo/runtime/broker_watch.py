"""Notice a broker leaving the cluster, so the next batch starts on new producers.

When the controller fences a broker (killed, paused, or restarting), it drops out of the
cluster metadata, and librdkafka ends its connection thread. A transactional producer whose
cached group coordinator was that broker then waits in `send_offsets_to_transaction` with
nothing to wake it (librdkafka #5511): each service on the saga's path would find out on its own
first batch, at the cost of the call's deadline (choreo/runtime/renewal.py). Seen from here, every
service renews right after the broker leaves, before its first send, and the saga goes through.

A daemon thread asks for the metadata of the worker's own topic once a second (a small request:
one topic, and the broker list), bounded by a short timeout, and compares the broker ids. Its
client of its own gives up on a broker after `QUERY_S` (`watch_client`): a request sent to the
hung broker itself would otherwise hold the question until the client's request timeout, and
the watch would see the broker leave seconds after the controller fenced it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from choreo.kafka import clients
from choreo.settings import Settings

log = logging.getLogger(__name__)

EVERY_S = 1.0
QUERY_S = 1.0


def watch_client(settings: Settings) -> AdminClient:
    """The watch's own admin client: an answer within `QUERY_S` or the next broker is asked."""
    return clients.admin_client(settings, **{"socket.timeout.ms": int(QUERY_S * 1000)})


class BrokerWatch:
    """Calls `left(why)` once for each broker that drops out of the cluster metadata."""

    def __init__(
        self,
        admin: AdminClient,
        topic: str,
        left: Callable[[str], None],
        every_s: float = EVERY_S,
    ) -> None:
        self.admin = admin
        self.topic = topic
        self.left = left
        self.every_s = every_s
        self.known: set[int] | None = None  # the broker ids of the last answer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="choreo-broker-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2 * QUERY_S)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                brokers = set(self.admin.list_topics(self.topic, timeout=QUERY_S).brokers)
            except KafkaException as e:  # no answer now (the cluster is away): look again
                log.debug("cluster metadata not known now: %s", e)
                continue
            self.saw(brokers)

    def saw(self, brokers: set[int]) -> None:
        """One answer (separate so tests need no broker)."""
        if not brokers:
            return  # an answer without brokers says nothing about who left
        gone = sorted((self.known or set()) - brokers)
        self.known = brokers
        if gone:
            self.left(f"broker {', '.join(map(str, gone))} left the cluster")
