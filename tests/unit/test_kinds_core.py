"""core/v1 Namespace, ConfigMap, Secret, ServiceAccount, Service, Endpoints,
Node, Event, ResourceQuota and LimitRange: defaults, preparation and the exact
upstream validation messages."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from kubi.api import hooks
from kubi.api.kinds.core import decode_base64, prepare_namespace_finalize

hooks.load()


def write(obj: dict, old: dict | None = None, sub: str = "") -> list[str]:
    """Run an object through the hooks as the API server does; the error texts."""
    hooks.apply_defaults(obj)
    hooks.prepare(obj, old)
    return [str(e) for e in hooks.validate(obj, old, sub)]


def obj(kind: str, name: str = "x", namespace: str | None = "default", **fields: Any) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **fields}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


DNS_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


# -- Namespace -----------------------------------------------------------------------


def test_namespace_create_sets_label_finalizer_and_phase() -> None:
    ns = obj("Namespace", "team-a", None)
    assert write(ns) == []
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}


def test_namespace_name_is_a_dns_label() -> None:
    assert write(obj("Namespace", "Team.A", None)) == [
        f'metadata.name: Invalid value: "Team.A": {DNS_LABEL_MSG}'
    ]


def test_namespace_update_keeps_finalizers_finalize_changes_them() -> None:
    old = obj("Namespace", "a", None)
    write(old)
    new = copy.deepcopy(old)
    new["spec"]["finalizers"] = []
    assert write(new, old) == []
    assert new["spec"]["finalizers"] == ["kubernetes"]
    final = copy.deepcopy(old)
    final["spec"]["finalizers"] = []
    prepare_namespace_finalize(final, old)
    assert final["spec"]["finalizers"] == []
    bad = copy.deepcopy(old)
    bad["spec"]["finalizers"] = ["custom"]
    assert hooks.validate(bad, old, "finalize")[0].field == "spec.finalizers[0]"


def test_namespace_status_phase_rules() -> None:
    old = obj("Namespace", "a", None)
    write(old)
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Terminating"
    assert [str(e) for e in hooks.validate(new, old, "status")] == [
        "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
    ]


# -- ConfigMap -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"data": {"a.b": "1"}}, []),
        ({"data": {"a b": "1"}}, [f'data[a b]: Invalid value: "a b": {KEY_MSG}']),
        ({"data": {"..x": "1"}}, ["data[..x]: Invalid value: \"..x\": must not start with '..'"]),
        (
            {"data": {"k": "1"}, "binaryData": {"k": b64("1")}},
            ['data[k]: Invalid value: "k": duplicate of key present in binaryData'],
        ),
        (
            {"data": {"k": "x" * (1024 * 1024 + 1)}},
            ["Too long: may not be more than 1048576 bytes"],
        ),
    ],
)
def test_config_map_validation(fields: dict, errors: list[str]) -> None:
    assert write(obj("ConfigMap", "cm", **fields)) == errors


def test_config_map_immutable() -> None:
    old = obj("ConfigMap", "cm", data={"a": "1"}, immutable=True)
    write(old)
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    new["immutable"] = False
    assert write(new, old) == [
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]


# -- Secret --------------------------------------------------------------------------


def test_secret_string_data_is_folded_into_data() -> None:
    secret = obj("Secret", "s", data={"a": b64("old"), "b": b64("keep")}, stringData={"a": "new"})
    assert write(secret) == []
    assert "stringData" not in secret
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"a": b64("new"), "b": b64("keep")}


@pytest.mark.parametrize(
    ("kind", "data", "annotations", "errors"),
    [
        (
            "kubernetes.io/tls",
            {},
            {},
            ["data[tls.crt]: Required value", "data[tls.key]: Required value"],
        ),
        ("kubernetes.io/tls", {"tls.crt": "", "tls.key": ""}, {}, []),
        (
            "kubernetes.io/basic-auth",
            {},
            {},
            ["data[username]: Required value", "data[password]: Required value"],
        ),
        ("kubernetes.io/basic-auth", {"password": ""}, {}, []),
        (
            "kubernetes.io/ssh-auth",
            {"ssh-privatekey": ""},
            {},
            ["data[ssh-privatekey]: Required value"],
        ),
        ("kubernetes.io/dockerconfigjson", {}, {}, ["data[.dockerconfigjson]: Required value"]),
        (
            "kubernetes.io/dockerconfigjson",
            {".dockerconfigjson": "nope"},
            {},
            [
                (
                    'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '
                    "invalid character 'n' looking for beginning of value"
                )
            ],
        ),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths":{}}'}, {}, []),
        (
            "kubernetes.io/dockercfg",
            {".dockercfg": "[]"},
            {},
            [
                (
                    'data[.dockercfg]: Invalid value: "<secret contents redacted>": json: cannot '
                    "unmarshal array into Go value of type map[string]interface {}"
                )
            ],
        ),
        (
            "kubernetes.io/service-account-token",
            {},
            {},
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
        (
            "kubernetes.io/service-account-token",
            {},
            {"kubernetes.io/service-account.name": "d"},
            [],
        ),
    ],
)
def test_secret_type_rules(kind: str, data: dict, annotations: dict, errors: list[str]) -> None:
    secret = obj("Secret", "s", type=kind, data={k: b64(v) for k, v in data.items()})
    secret["metadata"]["annotations"] = annotations
    assert write(secret) == errors


def test_secret_data_must_be_base64_and_never_shown() -> None:
    assert write(obj("Secret", "s", data={"k": "not base64!"})) == [
        'data[k]: Invalid value: "<secret contents redacted>": illegal base64 data at input byte 3'
    ]


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("YWJj", (b"abc", -1)),
        ("YQ==", (b"a", -1)),
        ("YW\nJj", (b"abc", -1)),
        ("YWJ", (None, 0)),
        ("YWJjZ", (None, 4)),
        ("Y===", (None, 1)),
        ("YQ==YQ==", (None, 4)),
        ("ab!c", (None, 2)),
    ],
)
def test_decode_base64_reports_offsets_as_go(text: str, result: tuple) -> None:
    assert decode_base64(text) == result


def test_secret_size_limit() -> None:
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    assert write(obj("Secret", "s", data={"k": big})) == [
        "data: Too long: may not be more than 1048576 bytes"
    ]


def test_secret_type_and_immutable_updates() -> None:
    old = obj("Secret", "s", data={"k": b64("v")}, immutable=True)
    write(old)
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/basic-auth"
    new["data"]["k"] = b64("w")
    new.pop("immutable")
    assert write(new, old) == [
        'type: Invalid value: "kubernetes.io/basic-auth": field is immutable',
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
        "data[username]: Required value",
        "data[password]: Required value",
    ]


def test_service_account() -> None:
    assert write(obj("ServiceAccount", "default")) == []
    assert write(obj("ServiceAccount", "Bad_Name"))[0].startswith(
        'metadata.name: Invalid value: "Bad_Name"'
    )


def test_secret_finalizer_must_be_standard_or_qualified() -> None:
    secret = obj("Secret", "s")
    secret["metadata"]["finalizers"] = ["mine"]
    assert write(secret) == [
        (
            'metadata.finalizers[0]: Invalid value: "mine": '
            "name is neither a standard finalizer name nor is it fully qualified"
        )
    ]
