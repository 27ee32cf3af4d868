"""The orders service: events in orders/events.py, decide and evolve in orders/service.py."""
