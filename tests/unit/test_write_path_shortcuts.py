"""The API server's and client's shortcuts on the write path: which fields a
patch can touch, watch lines decoded once per process, and managedFields taken
from a stored object without re-encoding."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from kubi.api.errors import StatusError
from kubi.api.managed.entries import decode, encode
from kubi.apiserver.patching import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    touched_fields,
    touched_subfields,
)
from kubi.client.client import RecentEvents, Resource
from tests.unit.apiserver_fixtures import admin_client

PODS = Resource("", "v1", "pods", True, "Pod")


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


def test_merge_style_patches_touch_the_keys_of_the_maps_they_patch() -> None:
    patch = {"metadata": {"uid": "u"},
             "status": {"$setElementOrder/conditions": [], "conditions": [], "phase": "Running"},
             "spec": {"$retainKeys": ["a"], "a": 1},
             "data": None, "$patch": "merge"}
    assert touched_subfields(STRATEGIC_PATCH, patch) == {
        "metadata": {"uid"}, "status": {"conditions", "phase"}}
    assert touched_subfields(MERGE_PATCH, {"spec": {"replicas": 2}, "x": [1]}) == {
        "spec": {"replicas"}}
    assert touched_subfields(JSON_PATCH, [{"op": "add", "path": "/spec/x", "value": 1}]) == {}


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


async def test_a_narrowed_check_still_refuses_what_the_patch_brings(tmp_path: Path) -> None:
    """A status patch is checked only where it writes, and that is enough."""
    async with admin_client(tmp_path) as api:
        await api.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                "spec": {"containers": [{"name": "c", "image": "i"}]}},
                         "default")
        with pytest.raises(StatusError) as unknown:
            await api.request(
                "PATCH", "/api/v1/namespaces/default/pods/p/status?fieldValidation=Strict",
                body={"status": {"bogus": 1, "phase": "Running"}},
                content_type="application/strategic-merge-patch+json")
        assert unknown.value.code == 400
        assert 'unknown field "status.bogus"' in str(unknown.value)
        with pytest.raises(StatusError) as wrong:
            await api.patch(PODS, "p", {"status": {"startTime": "yesterday"}}, "default",
                            patch_type="strategic", subresource="status")
        assert wrong.value.code == 400
        assert 'parsing time "yesterday"' in str(wrong.value)
        # Fields the patch names but leaves empty are dropped, the rest stays.
        done = await api.patch(PODS, "p", {"status": {"phase": "Running", "conditions": []},
                                           "metadata": {"labels": {"a": "b"}}},
                               "default", patch_type="strategic", subresource="status")
        assert done["status"]["phase"] == "Running"
        assert "conditions" not in done["status"]
        assert done["status"]["qosClass"] == "BestEffort"
