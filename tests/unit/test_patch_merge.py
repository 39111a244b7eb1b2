"""JSON merge patch (RFC 7386): applying and creating."""

from __future__ import annotations

import copy

import pytest

from kubi.api.patch import PatchError
from kubi.api.patch.mergepatch import apply_merge_patch, create_merge_patch


def pod() -> dict:
    return {
        "metadata": {"name": "p1", "labels": {"app": "web", "tier": "fe"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "n1"},
    }


def test_label_and_unlabel_as_kubectl_sends() -> None:
    labeled = apply_merge_patch(pod(), {"metadata": {"labels": {"a": "b"}}})
    assert labeled["metadata"]["labels"] == {"app": "web", "tier": "fe", "a": "b"}
    unlabeled = apply_merge_patch(labeled, {"metadata": {"labels": {"a": None}}})
    assert unlabeled["metadata"]["labels"] == {"app": "web", "tier": "fe"}


def test_scale_patch() -> None:
    scale = {"spec": {"replicas": 1}, "status": {"replicas": 1}}
    assert apply_merge_patch(scale, {"spec": {"replicas": 3}})["spec"] == {"replicas": 3}


def test_lists_are_replaced_whole() -> None:
    out = apply_merge_patch(pod(), {"spec": {"containers": [{"name": "d"}]}})
    assert out["spec"]["containers"] == [{"name": "d"}]


def test_null_deletes_and_nested_nulls_are_dropped() -> None:
    out = apply_merge_patch(pod(), {
        "spec": {"nodeName": None, "missing": None},
        "status": {"phase": "Running", "reason": None, "conditions": [{"type": "A", "x": None}]},
    })
    assert "nodeName" not in out["spec"] and "missing" not in out["spec"]
    assert out["status"] == {"phase": "Running", "conditions": [{"type": "A"}]}


def test_object_replaces_scalar_and_scalar_replaces_object() -> None:
    out = apply_merge_patch({"a": "x", "b": {"c": 1}}, {"a": {"d": None, "e": 1}, "b": 5})
    assert out == {"a": {"e": 1}, "b": 5}


def test_inputs_are_not_mutated() -> None:
    original, patch = pod(), {"metadata": {"labels": {"new": "1"}}, "extra": {"k": [1]}}
    before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    out = apply_merge_patch(original, patch)
    out["extra"]["k"].append(2)
    assert original == before and patch == patch_before


@pytest.mark.parametrize("patch", [None, "x", 5, True])
def test_patch_must_be_an_object_or_list(patch: object) -> None:
    with pytest.raises(PatchError) as failure:
        apply_merge_patch(pod(), patch)
    assert failure.value.code == 400 and str(failure.value) == "Invalid JSON Patch"


def test_a_list_patch_becomes_the_document() -> None:
    assert apply_merge_patch(pod(), [{"a": 1, "b": None}]) == [{"a": 1}]


def test_create_merge_patch() -> None:
    original = pod()
    modified = copy.deepcopy(original)
    modified["metadata"]["labels"]["tier"] = "be"
    del modified["metadata"]["labels"]["app"]
    modified["spec"]["containers"][0]["image"] = "nginx"
    modified["spec"]["priority"] = 0
    patch = create_merge_patch(original, modified)
    assert patch == {
        "metadata": {"labels": {"tier": "be", "app": None}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}], "priority": 0},
    }
    assert apply_merge_patch(original, patch) == modified


def test_create_merge_patch_of_equal_documents_is_empty() -> None:
    assert create_merge_patch(pod(), pod()) == {}
    assert create_merge_patch({"n": 1}, {"n": 1.0}) == {}
    assert create_merge_patch({"n": 1}, {"n": True}) == {"n": True}
