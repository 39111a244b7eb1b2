"""The Store protocol: kubi's etcd-shaped key-value contract.

A store holds opaque bytes under string keys (`/registry/<resource>/...`) and
stamps every change with one global, strictly increasing revision, which the
API server exposes as resourceVersion. Writes are create-if-absent, update and
delete with optional compare-and-swap on a key's mod revision; watches replay
the change log from a revision and then follow it live. Old log entries are
compacted away, after which a watch from before that point fails with
CompactedError (the API server turns that into 410 Gone).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class KeyValue:
    """The current value of a key and the revisions that created and last changed it."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change of one key; PUT covers both create and update."""

    type: Literal["PUT", "DELETE"]
    key: str
    value: bytes | None
    prev_value: bytes | None
    revision: int
    create_revision: int


class StoreError(Exception):
    """Base class of every error a store raises."""


class KeyExistsError(StoreError):
    """A create found the key already present."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    """An update or delete found no such key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionConflictError(StoreError):
    """A compare-and-swap saw a different mod revision than the caller expected."""

    def __init__(self, key: str, expected: int, current: KeyValue | None) -> None:
        actual = current.mod_revision if current is not None else None
        super().__init__(f"revision conflict on {key}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.current = current


class CompactedError(StoreError):
    """The requested revision is older than the oldest change still kept."""

    def __init__(self, requested: int, compact_revision: int, current_revision: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted "
            f"(compacted at {compact_revision}, current {current_revision})"
        )
        self.requested = requested
        self.compact_revision = compact_revision
        self.current_revision = current_revision


class StoreClosedError(StoreError):
    """The store is not open (never opened, or already closed)."""

    def __init__(self) -> None:
        super().__init__("store is not open")


@runtime_checkable
class Store(Protocol):
    """What the API server needs from durable storage.

    Revisions start at 1 on an empty store, so the first write gets 2, and
    they never repeat, not even across restarts.
    """

    async def open(self) -> None:
        """Load persisted state and start accepting calls."""

    async def close(self) -> None:
        """Finish queued writes, end live watches and release resources."""

    @property
    def revision(self) -> int:
        """The revision of the latest acknowledged change."""

    @property
    def compact_revision(self) -> int:
        """Changes at or below this revision are no longer in the log."""

    async def get(self, key: str) -> KeyValue | None:
        """The current value of key, or None."""

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        """All keys starting with prefix, sorted by key, and the revision of that view."""

    async def create(self, key: str, value: bytes) -> int:
        """Store a new key; returns its revision. Raises KeyExistsError."""

    async def update(self, key: str, value: bytes, *, expected_mod_revision: int | None) -> int:
        """Replace a key's value, comparing its mod revision first when one is given.

        Returns the new revision; raises KeyNotFoundError or RevisionConflictError.
        """

    async def delete(
        self, key: str, *, expected_mod_revision: int | None = None
    ) -> tuple[int, KeyValue]:
        """Remove a key; returns the delete's revision and the value removed."""

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        """Every change after from_revision to keys under prefix, in revision order.

        Raises CompactedError (on first iteration) when from_revision is older
        than the compacted revision; ends when the store closes.
        """

    async def compact(self, revision: int) -> None:
        """Drop logged changes at or below revision; current values stay."""

    async def events_since(self, from_revision: int, *, prefix: str = "") -> list[WatchEvent]:
        """The logged changes after from_revision under prefix, as one list."""
