"""The delivery service: events in delivery/events.py, decide and evolve in delivery/service.py."""
