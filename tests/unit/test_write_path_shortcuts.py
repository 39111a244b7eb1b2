"""The API server's and client's shortcuts on the write path: which fields a
patch can touch, watch lines decoded once per process, and managedFields taken
from a stored object without re-encoding."""

from __future__ import annotations

import orjson

from kubi.api.managed.entries import decode, encode
from kubi.apiserver.patching import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, touched_fields
from kubi.client.client import RecentEvents


def test_merge_style_patches_touch_their_top_level_keys() -> None:
    patch = {"status": {"phase": "Running"}, "metadata": {"uid": "u"}}
    assert touched_fields(STRATEGIC_PATCH, patch) == {"status", "metadata"}
    assert touched_fields(MERGE_PATCH, {"spec": None}) == {"spec"}


def test_strategic_directives_name_the_field_after_the_slash() -> None:
    patch = {"$setElementOrder/finalizers": [], "status": {}}
    assert touched_fields(STRATEGIC_PATCH, patch) == {"finalizers", "status"}


def test_whole_object_directives_touch_everything() -> None:
    assert touched_fields(STRATEGIC_PATCH, {"$patch": "replace"}) is None
    assert touched_fields(STRATEGIC_PATCH, {"$retainKeys": ["spec"]}) is None


def test_json_patch_touches_the_first_step_of_each_path() -> None:
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 2},
           {"op": "move", "from": "/metadata/labels/a", "path": "/a~1b/c"}]
    assert touched_fields(JSON_PATCH, ops) == {"spec", "metadata", "a/b"}
    assert touched_fields(JSON_PATCH, [{"op": "replace", "path": "", "value": {}}]) is None
    assert touched_fields(JSON_PATCH, ["not an op"]) is None


def test_identical_watch_lines_decode_once() -> None:
    recent = RecentEvents(capacity=2)
    line = b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}'
    first = recent.decode(line)
    assert recent.decode(bytes(line)) is first
    recent.decode(b'{"type":"ADDED","object":{"metadata":{"name":"b"}}}')
    recent.decode(b'{"type":"ADDED","object":{"metadata":{"name":"c"}}}')
    # The oldest line was forgotten: decoded again, equal but not the same.
    again = recent.decode(line)
    assert again == first and again is not first


def test_stored_managed_fields_encode_to_themselves() -> None:
    stored = [{"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
               "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
               "fieldsV1": {"f:status": {"f:phase": {}}}, "subresource": "status"}]
    raw = orjson.loads(orjson.dumps(stored))
    out = encode(decode(raw, stored=True))
    assert out == stored
    assert out[0]["fieldsV1"] is raw[0]["fieldsV1"]
