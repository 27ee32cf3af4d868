"""The orders service."""

from consumers.orders.service import SERVICE

__all__ = ["SERVICE"]
