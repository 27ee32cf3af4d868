"""The packaging service."""

from consumers.packaging.service import SERVICE

__all__ = ["SERVICE"]
