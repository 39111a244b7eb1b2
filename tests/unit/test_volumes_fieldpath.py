"""Downward API formatting: Go quoting, maps, field paths and resource values."""

from __future__ import annotations

import pytest

from kubi.node.volumes import fieldpath as fp

SEED_POD = {
    "metadata": {
        "name": "downwardapi-volume-demo", "namespace": "demo", "uid": "u-9",
        "labels": {"zone": "us-east-coast", "cluster": "downward-api-test-cluster1",
                   "rack": "rack-123"},
        "annotations": {"annotation1": "345", "annotation2": "456"},
    },
    "spec": {"containers": [{"name": "volume-test-container"}]},
}


def test_seed_labels_and_annotations_lines() -> None:
    assert fp.extract_metadata_field(SEED_POD, "metadata.labels") == (
        'cluster="downward-api-test-cluster1"\nrack="rack-123"\nzone="us-east-coast"')
    seen = fp.with_kubelet_annotations(SEED_POD, 1599134518172858300)
    assert fp.extract_metadata_field(seen, "metadata.annotations") == (
        'annotation1="345"\nannotation2="456"\n'
        'kubernetes.io/config.seen="2020-09-03T12:01:58.1728583Z"\n'
        'kubernetes.io/config.source="api"')
    assert fp.CONFIG_SEEN not in SEED_POD["metadata"]["annotations"]


@pytest.mark.parametrize("text, quoted", [
    ("plain", '"plain"'),
    ('say "hi"\\', '"say \\"hi\\"\\\\"'),
    ("tab\tnl\nbell\a", '"tab\\tnl\\nbell\\a"'),
    ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
    ("ünïcode 日本", '"ünïcode 日本"'),
    ("\u00a0\u200b", '"\\u00a0\\u200b"'),
    ("\U000e0001", '"\\U000e0001"'),
    ("", '""'),
])
def test_go_quote(text: str, quoted: str) -> None:
    assert fp.go_quote(text) == quoted


def test_empty_map_is_empty_text() -> None:
    assert fp.format_map({}) == ""
    assert fp.format_map(None) == ""


def test_subscripts_and_errors() -> None:
    assert fp.split_subscript("metadata.annotations['a[b]c']") == (
        "metadata.annotations", "a[b]c", True)
    assert fp.split_subscript("metadata.labels") == ("metadata.labels", "", False)
    assert fp.extract_metadata_field(SEED_POD, "metadata.labels['rack']") == "rack-123"
    assert fp.extract_metadata_field(SEED_POD, "metadata.uid") == "u-9"
    with pytest.raises(fp.FieldPathError, match="invalid key subscript in metadata.labels"):
        fp.extract_metadata_field(SEED_POD, "metadata.labels['bad key']")
    with pytest.raises(fp.FieldPathError, match='fieldPath "metadata.name\\[\'x\'\\]" does not'):
        fp.extract_metadata_field(SEED_POD, "metadata.name['x']")
    with pytest.raises(fp.FieldPathError, match="unsupported fieldPath: spec.nodeName"):
        fp.extract_metadata_field(SEED_POD, "spec.nodeName")
    with pytest.raises(fp.FieldPathError, match="unsupported pod version: v2"):
        fp.check_pod_field_label("metadata.name", "v2")


def test_resource_values() -> None:
    container = {"name": "c", "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"},
                                            "requests": {"hugepages-2Mi": "4Mi"}}}
    pod = {"spec": {"containers": [container]}}

    def value(resource: str, divisor: str | None = None) -> str:
        ref = {"resource": resource, **({"divisor": divisor} if divisor else {})}
        return fp.container_resource_value(ref, pod, container, {"cpu": "8"})

    assert value("limits.cpu") == "2"
    assert value("limits.cpu", "1m") == "1500"
    assert value("limits.memory", "1Mi") == "1024"
    assert value("limits.memory", "1G") == "2"
    assert value("requests.cpu") == "0"
    assert value("requests.hugepages-2Mi", "1Mi") == "4"
    with pytest.raises(fp.FieldPathError, match="Unsupported container resource : limits.gpu"):
        value("limits.gpu")
    no_limits = {"name": "n"}
    assert fp.container_resource_value({"resource": "limits.cpu"}, pod, no_limits,
                                       {"cpu": "8"}) == "8"
    assert fp.container_resource_value({"resource": "limits.memory"}, pod, no_limits, {}) == "0"
    with pytest.raises(fp.FieldPathError, match="container ghost not found"):
        fp.container_resource_value({"resource": "limits.cpu", "containerName": "ghost"},
                                    pod, None, {})


def test_rfc3339_nano() -> None:
    assert fp.rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert fp.rfc3339_nano(1_500_000_000) == "1970-01-01T00:00:01.5Z"
