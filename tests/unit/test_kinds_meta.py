"""Names, labels, ObjectMeta and label selectors, with upstream's exact messages."""

from __future__ import annotations

import pytest

from kubi.api.errors import aggregate
from kubi.api.kinds import meta

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (meta.is_dns1123_subdomain, "example.com", []),
        (meta.is_dns1123_subdomain, "Foo", [SUBDOMAIN_MSG]),
        (meta.is_dns1123_subdomain, "a" * 254, ["must be no more than 253 characters"]),
        (meta.is_dns1123_label, "my-name", []),
        (meta.is_dns1123_label, "a.b", ["must not contain dots"]),
        (meta.is_dns1123_label, "-a", [LABEL_MSG]),
        (meta.is_qualified_name, "example.com/MyName", []),
        (meta.is_qualified_name, "bad name", [QNAME_MSG]),
        (meta.is_qualified_name, "/x", ["prefix part must be non-empty"]),
        (meta.is_qualified_name, "a" * 64, ["name part must be no more than 63 characters"]),
        (meta.is_valid_label_value, "", []),
        (meta.is_valid_label_value, "ok_1", []),
        (meta.is_config_map_key, "key.name", []),
        (meta.is_config_map_key, "a b", [CONFIG_KEY_MSG]),
        (meta.is_config_map_key, "..x", ["must not start with '..'"]),
        (
            meta.is_env_var_name,
            "1ABC=",
            [
                (
                    "a valid environment variable name must consist only of printable ASCII characters "
                    "other than '='"
                )
            ],
        ),
        (meta.is_env_var_name, "", ["environment variable name must be non-empty"]),
        (meta.is_env_var_name, "1-ok.name", []),
        (meta.is_c_identifier, "MY_NAME", []),
        (meta.is_valid_port_name, "http--x", ["must not contain consecutive hyphens"]),
        (meta.is_valid_percent, "25%", []),
    ],
)
def test_format_checks(fn, value: str, expected: list[str]) -> None:
    assert fn(value) == expected


def test_generate_name_may_end_in_dash() -> None:
    assert meta.dns1123_subdomain("web-", True) == []
    assert meta.dns1123_subdomain("web-", False) == [SUBDOMAIN_MSG]


def test_path_segment_names() -> None:
    assert meta.path_segment_name("..") == ["may not be '..'"]
    assert meta.path_segment_name("a/b%") == ["may not contain '/'", "may not contain '%'"]


@pytest.mark.parametrize(
    ("md", "namespaced", "expected"),
    [
        ({"name": "ok", "namespace": "default"}, True, ""),
        (
            {"namespace": "default"},
            True,
            "metadata.name: Required value: name or generateName is required",
        ),
        (
            {"name": "Foo", "namespace": "default"},
            True,
            f'metadata.name: Invalid value: "Foo": {SUBDOMAIN_MSG}',
        ),
        ({"name": "ok"}, True, "metadata.namespace: Required value"),
        (
            {"name": "ok", "namespace": "x"},
            False,
            "metadata.namespace: Forbidden: not allowed on this type",
        ),
        (
            {"name": "ok", "namespace": "d", "labels": {"app": "a b"}},
            True,
            (
                'metadata.labels: Invalid value: "a b": a valid label must be an empty string or consist of '
                "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ),
        ),
        (
            {"name": "ok", "namespace": "d", "annotations": {"k": "x" * 262144}},
            True,
            "metadata.annotations: Too long: may not be more than 262144 bytes",
        ),
        (
            {"name": "ok", "namespace": "d", "finalizers": ["custom"]},
            True,
            (
                'metadata.finalizers[0]: Invalid value: "custom": name is neither a standard finalizer '
                "name nor is it fully qualified"
            ),
        ),
        (
            {
                "name": "ok",
                "namespace": "d",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod"}],
            },
            True,
            (
                '[metadata.ownerReferences.name: Invalid value: "": must not be empty, '
                'metadata.ownerReferences.uid: Invalid value: "": must not be empty]'
            ),
        ),
    ],
)
def test_validate_object_meta(md: dict, namespaced: bool, expected: str) -> None:
    errs = meta.validate_object_meta(md, namespaced=namespaced, name_fn=meta.dns1123_subdomain)
    assert (aggregate(errs) if errs else "") == expected


def test_object_meta_update_keeps_identity() -> None:
    old = {
        "name": "a",
        "namespace": "d",
        "uid": "1",
        "deletionTimestamp": "t",
        "finalizers": ["x/y"],
    }
    new = {"name": "b", "namespace": "d", "uid": "2", "finalizers": ["x/y", "x/z"]}
    got = [str(e) for e in meta.validate_object_meta_update(new, old)]
    assert got == [
        (
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being "
            'deleted, found new finalizers []string{"x/z"}'
        ),
        'metadata.name: Invalid value: "b": field is immutable',
        'metadata.uid: Invalid value: "2": field is immutable',
    ]
    assert (
        meta.validate_object_meta_update(
            {"name": "a", "namespace": "d"}, {"name": "a", "namespace": "d", "uid": "1"}
        )
        == []
    )


@pytest.mark.parametrize(
    ("sel", "expected"),
    [
        ({"matchLabels": {"app": "x"}}, ""),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            (
                "spec.selector.matchExpressions[0].values: Required value: must be specified when "
                "`operator` is 'In' or 'NotIn'"
            ),
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            (
                "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when "
                "`operator` is 'Exists' or 'DoesNotExist'"
            ),
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Like"}]},
            'spec.selector.matchExpressions[0].operator: Invalid value: "Like": not a valid selector operator',
        ),
    ],
)
def test_label_selector(sel: dict, expected: str) -> None:
    errs = meta.validate_label_selector(sel, "spec.selector")
    assert (aggregate(errs) if errs else "") == expected


def test_selector_matching() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}],
    }
    assert meta.selector_matches(sel, {"app": "web"})
    assert not meta.selector_matches(sel, {"app": "web", "tier": "db"})
    assert meta.selector_matches({}, {"anything": "goes"})


def test_go_label_selector_literal() -> None:
    shown = str(meta.go_label_selector({"matchLabels": {"app": "nginx"}}))
    assert shown == (
        'v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
    )
