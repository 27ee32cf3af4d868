"""The runtime's own exceptions; each message says what the user can do about it."""

from __future__ import annotations


class ChoreoError(Exception):
    """Base of every error the runtime raises on purpose."""


class ConfigurationError(ChoreoError):
    """A setting, topic layout or schema set is not usable as it is."""


class SchemaError(ChoreoError):
    """A schema file is missing, malformed, or does not match its event class."""


class SchemaNotRegisteredError(SchemaError):
    """A schema a worker needs is not in the registry (run `choreo schemas register`)."""


class DecodeError(ChoreoError):
    """A record cannot be decoded into a known, subscribed event: it belongs in the DLQ."""


class UnreadableSchemaError(DecodeError):
    """A record names a writer schema this process cannot read: an id the registry does not know,
    a type the codec has no class for, or one that does not resolve to its class.

    The bytes may be fine, written with another registry or another version of the service, so a
    replay of a service's own topic holds the partition back instead of skipping the record.
    """


class EncodeError(ChoreoError):
    """An event fails strict validation against its schema: it must not be produced."""


class RegistryUnavailableError(ChoreoError):
    """The schema registry did not answer; the record is fine, so retry instead of dead-lettering."""


class FencedError(ChoreoError):
    """Another instance with the same transactional id took over: this one must stop."""


class StoreLockedError(ChoreoError):
    """A partition's store is held by a running worker."""


class ForeignStoreError(ConfigurationError):
    """A partition store belongs to another topic prefix or service: never reused, never healed."""


class StoreError(ChoreoError):
    """A partition store could not be read or written: the batch fails, never the record."""

    def __init__(self, message: str, partition: int | None = None) -> None:
        super().__init__(message)
        self.partition = partition


class StoreDamagedError(StoreError):
    """A partition store is damaged (not a database, fails its integrity check, bad checkpoint)."""


class StopRequested(ChoreoError):
    """The worker was asked to stop while it waited (for a store lock, or a restore)."""
