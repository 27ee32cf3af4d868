"""The drones service."""

from consumers.drones.service import SERVICE

__all__ = ["SERVICE"]
