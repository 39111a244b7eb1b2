"""Which EndpointSlice generations the controller expects its informer to show.

After each write the controller records the slice's generation (or that it
expects the slice to be deleted), per Service. Two questions follow. Is the
cache stale (`stale_slices`)? It is when a cached slice is older than what
was written, is still there though deleted, or is missing though created;
acting on it would repeat or undo the last sync. Should a slice event wake
the Service (`should_sync`)? Only when the generation is newer than any the
controller wrote itself: our own writes coming back need no second sync.
A Service deleted and re-created under the same name starts afresh.
"""

from __future__ import annotations

from typing import Any

from kubi.controllers.endpointslice_rules import LABEL_SERVICE_NAME

Obj = dict[str, Any]

DELETION_EXPECTED = -1


def _service_key(endpoint_slice: Obj) -> str:
    md = endpoint_slice.get("metadata") or {}
    return f"{md.get('namespace', '')}/{(md.get('labels') or {}).get(LABEL_SERVICE_NAME, '')}"


def _uid(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("uid", "")


def _generation(obj: Obj) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


class EndpointSliceTracker:
    def __init__(self) -> None:
        self._generations: dict[str, dict[str, int]] = {}
        self._service_uids: dict[str, str] = {}

    def has(self, endpoint_slice: Obj) -> bool:
        return _uid(endpoint_slice) in self._generations.get(_service_key(endpoint_slice), {})

    def should_sync(self, endpoint_slice: Obj) -> bool:
        expected = self._generations.get(_service_key(endpoint_slice), {}).get(
            _uid(endpoint_slice))
        return expected is None or _generation(endpoint_slice) > expected

    def stale_slices(self, service: Obj, slices: list[Obj]) -> bool:
        md = service.get("metadata") or {}
        key = f"{md.get('namespace', '')}/{md.get('name', '')}"
        uid = md.get("uid", "")
        tracked_uid = self._service_uids.get(key)
        if tracked_uid and uid and tracked_uid != uid:
            self._generations.pop(key, None)
        self._service_uids[key] = uid
        expected = self._generations.get(key)
        if expected is None:
            return False
        provided = {_uid(s) for s in slices}
        for endpoint_slice in slices:
            generation = expected.get(_uid(endpoint_slice))
            if generation is not None and (generation == DELETION_EXPECTED
                                           or generation > _generation(endpoint_slice)):
                return True
        return any(generation != DELETION_EXPECTED and slice_uid not in provided
                   for slice_uid, generation in expected.items())

    def update(self, endpoint_slice: Obj) -> None:
        self._generations.setdefault(_service_key(endpoint_slice), {})[
            _uid(endpoint_slice)] = _generation(endpoint_slice)

    def expect_deletion(self, endpoint_slice: Obj) -> None:
        self._generations.setdefault(_service_key(endpoint_slice), {})[
            _uid(endpoint_slice)] = DELETION_EXPECTED

    def handle_deletion(self, endpoint_slice: Obj) -> bool:
        """Forget the slice; True when its deletion was expected (or it was never tracked)."""
        expected = self._generations.get(_service_key(endpoint_slice))
        if expected is None:
            return True
        generation = expected.pop(_uid(endpoint_slice), None)
        return generation is None or generation == DELETION_EXPECTED

    def delete_service(self, key: str) -> None:
        self._generations.pop(key, None)
        self._service_uids.pop(key, None)
