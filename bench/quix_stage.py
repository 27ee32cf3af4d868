"""The packaging stage's reserve-stock logic written with Quix Streams (runs in bench/.quix-venv).

Exactly-once, its RocksDB state (with its changelog topic), the same commit interval and batch
as the workers, the same Avro records in and out through Quix's schema-registry serdes. Output
ids are derived like the project's (uuid5 of the input id), so the records match ours.
Stock per shelf starts at `--stock` on first use; the project's worker gets the same stock from
StockAdded records restored before it starts.
Run: `bench/.quix-venv/bin/python -m bench.quix_stage --input T --output T2 --group G ...`
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from confluent_kafka.schema_registry import topic_record_subject_name_strategy
from quixstreams import Application, State
from quixstreams.models.serializers import SerializationContext, Serializer
from quixstreams.models.serializers.avro import AvroDeserializer, AvroSerializer
from quixstreams.models.serializers.schema_registry import (
    SchemaRegistryClientConfig,
    SchemaRegistrySerializationConfig,
)

from choreo.contract import derive_id  # stdlib only: the same id derivation as the services
from harness.paths import SCHEMAS as PACKAGE_SCHEMAS

SCHEMAS = PACKAGE_SCHEMAS / "packaging"
OUTPUTS = ("PackagePrepared", "PackagingFailed")


class EventSerializer(Serializer):
    """Quix's Avro serializer per output type; a value is (type name, record)."""

    def __init__(self, registry: SchemaRegistryClientConfig) -> None:
        config = SchemaRegistrySerializationConfig(
            auto_register_schemas=False, subject_name_strategy=topic_record_subject_name_strategy
        )
        self._by_type = {
            name: AvroSerializer(
                json.loads((SCHEMAS / f"{name}.avsc").read_text()),
                schema_registry_client_config=registry,
                schema_registry_serialization_config=config,
            )
            for name in OUTPUTS
        }

    def __call__(self, value: tuple[str, dict[str, Any]], ctx: SerializationContext) -> bytes:
        return self._by_type[value[0]](value[1], ctx)


def reserve(stock: int):  # type: ignore[no-untyped-def]
    def apply(order: dict[str, Any], state: State) -> tuple[str, dict[str, Any]] | None:
        reservation_key = f"reservation/{order['hub']}/{order['order_id']}"
        if state.get(reservation_key) is not None:
            return None  # already packed or refused for this order
        shelf_key = f"stock/{order['hub']}/{order['sku']}"
        shelf = state.get(shelf_key) or {"on_hand": stock, "reserved": 0, "shipped": 0}
        common = {
            "order_id": order["order_id"], "hub": order["hub"], "occurred_at": order["occurred_at"],
            "causation_id": order["event_id"], "sku": order["sku"], "quantity": order["quantity"],
        }
        if shelf["on_hand"] < order["quantity"]:
            state.set(reservation_key, {"package_id": None, "sku": order["sku"], "quantity": 0,
                                        "status": "refused"})
            return "PackagingFailed", {
                **common, "event_id": derive_id(order["event_id"], "PackagingFailed"),
                "available": shelf["on_hand"], "reason": "OUT_OF_STOCK",
            }
        package_id = derive_id(order["order_id"], "package")
        state.set(shelf_key, {**shelf, "on_hand": shelf["on_hand"] - order["quantity"],
                              "reserved": shelf["reserved"] + order["quantity"]})
        state.set(reservation_key, {"package_id": package_id, "sku": order["sku"],
                                    "quantity": order["quantity"], "status": "reserved"})
        return "PackagePrepared", {
            **common, "event_id": derive_id(order["event_id"], "PackagePrepared"),
            "package_id": package_id, "address": order["address"],
        }

    return apply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("bootstrap", "registry", "input", "output", "group", "state-dir"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--stock", type=int, required=True)
    parser.add_argument("--commit-interval-ms", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--linger-ms", type=int, required=True)
    parser.add_argument("--acks", required=True)
    args = parser.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=args.commit_interval_ms / 1000,
        commit_every=args.batch_size,
        state_dir=args.state_dir,
        producer_extra_config={"linger.ms": args.linger_ms, "acks": args.acks},
        loglevel=logging.WARNING,
    )
    registry = SchemaRegistryClientConfig(url=args.registry)
    orders = app.topic(args.input, key_deserializer="str",
                       value_deserializer=AvroDeserializer(schema_registry_client_config=registry))
    packaging = app.topic(args.output, key_serializer="str", value_serializer=EventSerializer(registry))
    sdf = app.dataframe(orders)
    sdf = sdf.apply(reserve(args.stock), stateful=True).filter(lambda out: out is not None)
    sdf.to_topic(packaging)
    app.run()


if __name__ == "__main__":
    main()
