"""JSON patch (RFC 6902) with the behaviour of upstream's API server."""

from __future__ import annotations

import copy

import pytest

from kubi.api.patch import GENERIC_UNPROCESSABLE
from kubi.api.patch.jsonpatch import MAX_OPERATIONS, JSONPatchError, apply_json_patch


def doc() -> dict:
    return {
        "metadata": {"name": "web", "annotations": {"a/b": "1", "t~x": "2"}},
        "spec": {"replicas": 2, "ports": [{"port": 80}, {"port": 443}], "tags": ["x", "y"]},
    }


def test_replace_as_kubectl_patch_sends() -> None:
    out = apply_json_patch(doc(), [{"op": "replace", "path": "/spec/replicas", "value": 1}])
    assert out["spec"]["replicas"] == 1


def test_add_into_objects_and_lists() -> None:
    out = apply_json_patch(doc(), [
        {"op": "add", "path": "/metadata/labels", "value": {"app": "web"}},
        {"op": "add", "path": "/spec/tags/1", "value": "new"},
        {"op": "add", "path": "/spec/tags/-", "value": "last"},
        {"op": "add", "path": "/spec/tags/0", "value": "first"},
    ])
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["spec"]["tags"] == ["first", "x", "new", "y", "last"]


def test_escaped_tokens() -> None:
    out = apply_json_patch(doc(), [
        {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "9"},
        {"op": "remove", "path": "/metadata/annotations/t~0x"},
    ])
    assert out["metadata"]["annotations"] == {"a/b": "9"}


def test_remove_move_copy_test() -> None:
    out = apply_json_patch(doc(), [
        {"op": "test", "path": "/spec/ports/0", "value": {"port": 80}},
        {"op": "remove", "path": "/spec/ports/0"},
        {"op": "copy", "from": "/spec/ports/0", "path": "/spec/https"},
        {"op": "move", "from": "/spec/tags", "path": "/metadata/tags"},
    ])
    assert out["spec"] == {"replicas": 2, "ports": [{"port": 443}], "https": {"port": 443}}
    assert out["metadata"]["tags"] == ["x", "y"]
    assert out["spec"]["https"] is not out["spec"]["ports"][0]


def test_upstream_leniencies() -> None:
    out = apply_json_patch(doc(), [
        # replace of a missing object key adds it; negative indices count from the end
        {"op": "replace", "path": "/spec/paused", "value": True},
        {"op": "replace", "path": "/spec/tags/-1", "value": "z"},
        # a missing key tests equal to null
        {"op": "test", "path": "/spec/nothing", "value": None},
    ])
    assert out["spec"]["paused"] is True and out["spec"]["tags"] == ["x", "z"]


def test_rollout_undo_shape() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}
    out = apply_json_patch(doc(), [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations",
         "value": {"deployment.kubernetes.io/revision": "1"}},
    ])
    assert out["spec"]["template"] == template
    assert out["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}


def test_inputs_are_not_mutated() -> None:
    original, ops = doc(), [{"op": "add", "path": "/spec/x", "value": {"deep": [1]}},
                            {"op": "add", "path": "/spec/x/deep/-", "value": 2}]
    before, ops_before = copy.deepcopy(original), copy.deepcopy(ops)
    out = apply_json_patch(original, ops)
    assert original == before and ops == ops_before
    assert out["spec"]["x"] == {"deep": [1, 2]}


@pytest.mark.parametrize(("ops", "reason"), [
    ([{"op": "remove", "path": "/spec/nope"}],
     ("error in remove for path: '/spec/nope': Unable to remove nonexistent key: nope: "
     "missing value")),
    ([{"op": "add", "path": "/nope/x", "value": 1}],
     'add operation does not apply: doc is missing path: "/nope/x": missing value'),
    ([{"op": "add", "path": "/spec/tags/5", "value": 1}],
     ("error in add for path: '/spec/tags/5': Unable to access invalid index: 5: "
     "invalid index referenced")),
    ([{"op": "replace", "path": "/spec/tags/7", "value": 1}],
     "replace operation does not apply: doc is missing key: /spec/tags/7: missing value"),
    ([{"op": "test", "path": "/spec/replicas", "value": 3}],
     "testing value /spec/replicas failed: test failed"),
    ([{"op": "test", "path": "/spec/replicas", "value": 2.0}],
     "testing value /spec/replicas failed: test failed"),
    ([{"op": "move", "from": "/spec/none", "path": "/spec/x"}],
     "error in move for path: 'none': Unable to remove nonexistent key: none: missing value"),
    ([{"op": "frobnicate", "path": "/spec"}], "Unexpected kind: frobnicate"),
    ([{"path": "/spec"}], "Unexpected kind: unknown"),
    ([{"op": "add", "value": 1}], "add operation failed to decode path: missing value"),
])
def test_operations_that_do_not_apply_are_422(ops: list, reason: str) -> None:
    with pytest.raises(JSONPatchError) as failure:
        apply_json_patch(doc(), ops)
    assert str(failure.value) == reason
    assert failure.value.code == 422
    assert failure.value.message == GENERIC_UNPROCESSABLE


def test_malformed_patches_are_400() -> None:
    with pytest.raises(JSONPatchError) as failure:
        apply_json_patch(doc(), {"op": "add"})
    assert failure.value.code == 400
    assert failure.value.message == (
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    with pytest.raises(JSONPatchError) as failure:
        apply_json_patch(doc(), ["add"])
    assert failure.value.code == 400


def test_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/spec/replicas", "value": 2}] * (MAX_OPERATIONS + 1)
    with pytest.raises(JSONPatchError) as failure:
        apply_json_patch(doc(), ops)
    assert failure.value.code == 413


def test_copies_are_limited() -> None:
    big = {"blob": "x" * (1024 * 1024)}
    ops = [{"op": "copy", "from": "/blob", "path": f"/c{i}"} for i in range(4)]
    with pytest.raises(JSONPatchError) as failure:
        apply_json_patch(big, ops)
    assert "exceeding the limit" in str(failure.value)


def test_whole_document_replace() -> None:
    assert apply_json_patch(doc(), [{"op": "replace", "path": "", "value": {"a": 1}}]) == {"a": 1}
    with pytest.raises(JSONPatchError):
        apply_json_patch(doc(), [{"op": "replace", "path": "", "value": 1}])
