"""kubi.store: durable, etcd-shaped storage of API objects.

`Store` is the protocol the API server programs against; `SqliteStore` is the
embedded durable backend and `MemoryStore` a non-durable twin for tests.
"""

from kubi.store.base import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionConflictError,
    Store,
    StoreClosedError,
    StoreError,
    WatchEvent,
)
from kubi.store.memory import MemoryStore
from kubi.store.sqlite import SqliteStore

__all__ = [
    "CompactedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "MemoryStore",
    "RevisionConflictError",
    "SqliteStore",
    "Store",
    "StoreClosedError",
    "StoreError",
    "WatchEvent",
]
