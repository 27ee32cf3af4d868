"""The drones service: events in drones/events.py, decide and evolve in drones/service.py."""
