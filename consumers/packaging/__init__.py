"""The packaging service: events in packaging/events.py, decide and evolve in packaging/service.py."""
