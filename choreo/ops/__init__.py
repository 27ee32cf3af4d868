"""Operators' tools: reading the log, records, trace, dead letters, state, offsets, rebuild."""
