"""Records on a service's retry topic: dead letters sent back by `choreo dlq retry` (ADR 0004).

Only the service that dead-lettered a record reads its retry topic, so a retry never writes to a
topic another service owns or reads. Each retried record names, in a header, the input topic it
first came from; the worker decides it as if it had arrived there (the same `accepts` check, and
its key's partition, the same number as on the inputs: the retry topic has their partition count,
and `dlq retry` sends each letter to its key's partition). A worker reads retry partition N only
while it holds partition N of the inputs (assignment.py).
"""

from __future__ import annotations

from choreo.contract import Service
from choreo.exceptions import DecodeError
from choreo.kafka.messages import Consumed

# The logical input topic a retried record is decided as (prefix-free, so it survives a copy of
# the log under another prefix). A `dlq.` header: a retry drops the `dlq.*` headers of the letter
# it sends back and sets this one afresh.
RETRIED_AS = "dlq.retry.topic"


def retried_input_topic(service: Service, msg: Consumed) -> str:
    """The logical input topic a record read from `service`'s retry topic is decided as (the
    worker calls it for records of that topic alone: a record of an input is what it is)."""
    named = (msg.header(RETRIED_AS) or b"").decode(errors="replace")
    if named not in service.inputs:
        raise DecodeError(
            f"a record on {service.retry_topic} must name one of {service.name}'s input topics "
            f"({', '.join(sorted(service.inputs))}) in its {RETRIED_AS} header, not {named[:80]!r}"
        )
    return named
