"""The delivery service."""

from consumers.delivery.service import SERVICE

__all__ = ["SERVICE"]
