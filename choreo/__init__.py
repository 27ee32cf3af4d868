"""choreo: the runtime for choreographed sagas on Kafka (knows Kafka, Avro and SQLite; no domain)."""

__version__ = "0.1.0"
