"""Kafka plumbing: clients, topics and their names, partitioning, message fields."""
