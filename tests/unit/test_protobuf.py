"""The protobuf request decoder, read as its specification.

The first vectors are bodies captured from kubectl 1.32 (`kubectl create ...`
against a loopback server); each expected dict equals what the same kubectl
prints for that command with `--dry-run=client -o json`, minus the
`creationTimestamp: null` it writes for an unset time. The remaining cases build
messages with a small encoder to reach the corners of the presence rule.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubi.api.protobuf import MAGIC, ProtobufError, decode_object, go_duration, is_protobuf

KUBECTL_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "create namespace team1",
        (
            "6b3873000a0f0a02763112094e616d657370616365121d0a150a057465616d3112001a0022002a0032003800"
            "420012001a020a001a002200"
        ),
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team1"},
            "spec": {},
            "status": {},
        },
    ),
    (
        "create configmap c1 --from-literal=a=1 --from-literal=b=2",
        (
            "6b3873000a0f0a0276311209436f6e6669674d617012240a120a02633112001a0022002a0032003800420012"
            "060a016112013112060a01621201321a002200"
        ),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c1"},
            "data": {"a": "1", "b": "2"},
        },
    ),
    (
        "create configmap c2 --from-file=x.txt --from-file=bin.dat",
        (
            "6b3873000a0f0a0276311209436f6e6669674d617012310a120a02633212001a0022002a0032003800420012"
            "0b0a05782e7478741202780a1a0e0a0762696e2e646174120300fffe1a002200"
        ),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c2"},
            "data": {"x.txt": "x\n"},
            "binaryData": {"bin.dat": "AP/+"},
        },
    ),
    (
        "create secret generic s1 --from-literal=pw=secret",
        (
            "6b3873000a0c0a027631120653656372657412240a120a02733112001a0022002a00320038004200120c0a02"
            "707712067365637265741a001a002200"
        ),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s1"},
            "data": {"pw": "c2VjcmV0"},
        },
    ),
    (
        "create secret docker-registry reg1 ...",
        (
            "6b3873000a0c0a02763112065365637265741292010a140a047265673112001a0022002a0032003800420012"
            "5a0a112e646f636b6572636f6e6669676a736f6e12457b226175746873223a7b22722e6578616d706c65223a"
            "7b22757365726e616d65223a2275222c2270617373776f7264223a2270222c2261757468223a226454707722"
            "7d7d7d1a1e6b756265726e657465732e696f2f646f636b6572636f6e6669676a736f6e1a002200"
        ),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "reg1"},
            "data": {
                ".dockerconfigjson": "eyJhdXRocyI6eyJyLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19"
            },
            "type": "kubernetes.io/dockerconfigjson",
        },
    ),
    (
        "create deployment web --image=nginx:1.25 --replicas=0 --port=80",
        (
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bd010a1f0a0377656212001a0022002a"
            "003200380042005a0a0a036170701203776562128b010800120c0a0a0a0361707012037765621a710a1c0a00"
            "12001a0022002a003200380042005a0a0a036170701203776562125112330a056e67696e78120a6e67696e78"
            "3a312e32352a00320a0a001000185022002a0042006a007200800100880100900100a201001a00320042004a"
            "0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a"
            "002200"
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx:1.25",
                                "ports": [{"containerPort": 80}],
                                "resources": {},
                            }
                        ]
                    },
                },
                "strategy": {},
            },
            "status": {},
        },
    ),
    (
        "create service clusterip svc1 --tcp=80:8080",
        (
            "6b3873000a0d0a027631120753657276696365126c0a210a047376633112001a0022002a003200380042005a"
            "0b0a0361707012047376633112430a1b0a0738302d38303830120354435018502207080010903f1a00280012"
            "0b0a036170701204737663311a002209436c757374657249503a00420052005a00600068001a020a001a0022"
            "00"
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc1", "labels": {"app": "svc1"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "svc1"},
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    (
        "create service nodeport np1 --tcp=80:http",
        (
            "6b3873000a0d0a027631120753657276696365126b0a1f0a036e703112001a0022002a003200380042005a0a"
            "0a0361707012036e703112440a1e0a0738302d6874747012035443501850220a080110001a04687474702800"
            "120a0a0361707012036e70311a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200"
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "np1", "labels": {"app": "np1"}},
            "spec": {
                "ports": [{"name": "80-http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
                "selector": {"app": "np1"},
                "type": "NodePort",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    (
        "create poddisruptionbudget pdb1 --selector=app=web --min-available=50%",
        (
            "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574123d0a140a04"
            "7064623112001a0022002a0032003800420012190a09080110001a03353025120c0a0a0a0361707012037765"
            "621a0a080018002000280030001a002200"
        ),
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "pdb1"},
            "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}},
            "status": {
                "disruptionsAllowed": 0,
                "currentHealthy": 0,
                "desiredHealthy": 0,
                "expectedPods": 0,
            },
        },
    ),
    (
        "create quota q1 --hard=cpu=1,memory=1Gi,pods=10",
        (
            "6b3873000a130a027631120d5265736f7572636551756f746112430a120a02713112001a0022002a00320038"
            "004200122b0a0a0a0363707512030a01310a0f0a066d656d6f727912050a033147690a0c0a04706f64731204"
            "0a0231301a001a002200"
        ),
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "q1"},
            "spec": {"hard": {"cpu": "1", "memory": "1Gi", "pods": "10"}},
            "status": {},
        },
    ),
    (
        "create token sa1 --duration=1h",
        (
            "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e5265717565"
            "7374121d0a100a0012001a0022002a00320038004200120320901c1a040a0012001a002200"
        ),
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {},
            "spec": {"expirationSeconds": 3600},
            "status": {"token": ""},
        },
    ),
    (
        "auth can-i get pods",
        (
            "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374"
            "416363657373526576696577123c0a100a0012001a0022002a00320038004200121e0a1c0a0764656661756c"
            "7412036765741a0022002a04706f647332003a001a08080012001a0020001a002200"
        ),
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {
                "resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}
            },
            "status": {"allowed": False},
        },
    ),
]


@pytest.mark.parametrize(("command", "body", "expected"), KUBECTL_BODIES, ids=lambda v: str(v)[:40])
def test_kubectl_bodies_decode_to_the_json_kubectl_would_send(
    command: str, body: str, expected: dict[str, Any]
) -> None:
    assert decode_object(bytes.fromhex(body)) == expected


# -- a minimal encoder for building messages --------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def num(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def msg(field: int, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def text(field: int, value: str) -> bytes:
    return msg(field, value.encode())


def entry(field: int, key: str, value: bytes) -> bytes:
    """A map entry whose value is already encoded as field 2."""
    return msg(field, text(1, key), value)


def envelope(api_version: str, kind: str, *parts: bytes) -> bytes:
    return (
        MAGIC
        + msg(1, text(1, api_version), text(2, kind))
        + msg(2, *parts)
        + text(3, "")
        + text(4, "")
    )


def empty_meta(name: str) -> bytes:
    """ObjectMeta as Go writes it for a new object: every string present and empty."""
    return msg(1, text(1, name), text(2, ""), text(3, ""), num(7, 0), msg(8))


# -- presence rule ------------------------------------------------------------


def pod_body() -> bytes:
    container = b"".join(
        [
            text(1, "app"),
            text(2, "busybox"),
            msg(6, text(1, ""), num(3, 8080), text(4, "TCP")),  # ports[]
            msg(8),  # resources: non-pointer, kept as {}
            msg(
                10,
                msg(1, msg(2, text(1, "/healthz"), msg(2, num(1, 1), num(2, 0), text(3, "http")))),
                num(2, 0),
            ),  # livenessProbe: handler inlined, initialDelaySeconds 0 dropped
            num(16, 0),  # stdin false: omitempty
        ]
    )
    volume = msg(1, text(1, "cfg"), msg(2, msg(19, msg(1, text(1, "settings")), num(3, 420))))
    spec = b"".join(
        [
            volume,
            msg(2, container),
            num(4, 0),  # terminationGracePeriodSeconds: a pointer, so 0 is kept
            num(11, 0),  # hostNetwork false: omitempty
            text(10, ""),  # nodeName empty: omitempty
        ]
    )
    meta = msg(
        1,
        text(1, "p1"),
        text(3, ""),
        num(7, 0),
        msg(8, num(1, 1704164645), num(2, 999)),  # nanos never reach JSON
        entry(11, "app", text(2, "web")),
        entry(11, "tier", text(2, "")),
    )
    return envelope("v1", "Pod", meta, msg(2, spec), msg(3, text(1, "")))


def test_pod_follows_the_go_json_presence_rule() -> None:
    assert decode_object(pod_body()) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p1",
            "creationTimestamp": "2024-01-02T03:04:05Z",
            "labels": {"app": "web", "tier": ""},
        },
        "spec": {
            "volumes": [{"name": "cfg", "configMap": {"name": "settings", "defaultMode": 420}}],
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                }
            ],
            "terminationGracePeriodSeconds": 0,
        },
        "status": {},
    }


def test_pointer_bool_false_is_kept_and_absent_pointer_is_omitted() -> None:
    kept = decode_object(envelope("v1", "ConfigMap", empty_meta("c"), num(4, 0)))
    assert kept["immutable"] is False
    absent = decode_object(envelope("v1", "ConfigMap", empty_meta("c")))
    assert "immutable" not in absent


def test_non_omitempty_scalars_are_kept_when_zero() -> None:
    # ServicePort.port has no omitempty; nodePort has.
    body = envelope("v1", "Service", empty_meta("s"), msg(2, msg(1, num(3, 0), num(5, 0))))
    assert decode_object(body)["spec"] == {"ports": [{"port": 0}]}


def test_zero_times_are_omitted_even_behind_a_pointer() -> None:
    meta = msg(1, text(1, "x"), msg(8), msg(9))  # creationTimestamp, deletionTimestamp
    assert decode_object(envelope("v1", "Namespace", meta))["metadata"] == {"name": "x"}


def test_epoch_is_a_real_time_not_an_unset_one() -> None:
    meta = msg(1, text(1, "x"), msg(8, num(1, 0)))
    assert decode_object(envelope("v1", "Namespace", meta))["metadata"]["creationTimestamp"] == (
        "1970-01-01T00:00:00Z"
    )


def test_zero_int_or_string_in_a_value_field_is_omitted() -> None:
    port = msg(1, num(3, 80), msg(4, num(1, 0), num(2, 0), text(3, "")))
    body = envelope("v1", "Service", empty_meta("s"), msg(2, port))
    assert decode_object(body)["spec"]["ports"] == [{"port": 80}]


def test_zero_int_or_string_behind_a_pointer_is_kept() -> None:
    spec = msg(2, msg(3, num(1, 0), num(2, 0)))  # maxUnavailable: 0
    body = envelope("policy/v1", "PodDisruptionBudget", empty_meta("p"), spec)
    assert decode_object(body)["spec"] == {"maxUnavailable": 0}


# -- wire details -------------------------------------------------------------


def test_negative_integers_use_twos_complement() -> None:
    body = envelope("v1", "Pod", empty_meta("p"), msg(2, num(25, -5)))  # priority
    assert decode_object(body)["spec"]["priority"] == -5


def test_repeated_varints_packed_or_not() -> None:
    packed = msg(4, varint(1000) + varint(2000))
    context = msg(14, packed, num(4, 3000))  # securityContext.supplementalGroups
    body = envelope("v1", "Pod", empty_meta("p"), msg(2, context))
    assert decode_object(body)["spec"]["securityContext"] == {
        "supplementalGroups": [1000, 2000, 3000]
    }


def test_repeated_occurrences_of_one_message_field_merge() -> None:
    body = envelope("v1", "ConfigMap", msg(1, text(1, "c")), msg(1, text(3, "ns")))
    assert decode_object(body)["metadata"] == {"name": "c", "namespace": "ns"}


def test_unknown_fields_are_skipped() -> None:
    unknown = (
        num(99, 7)
        + msg(98, b"xyz")
        + varint(97 << 3 | 1)
        + bytes(8)
        + varint(96 << 3 | 5)
        + bytes(4)
    )
    body = envelope("v1", "ConfigMap", empty_meta("c"), unknown, entry(2, "k", text(2, "v")))
    assert decode_object(body)["data"] == {"k": "v"}


def test_map_entry_without_value_gets_the_zero_value() -> None:
    body = envelope("v1", "ConfigMap", empty_meta("c"), msg(2, text(1, "k")))
    assert decode_object(body)["data"] == {"k": ""}


def test_quantities_in_maps_keep_their_text() -> None:
    hard = entry(1, "cpu", msg(2, text(1, "500m"))) + entry(1, "pods", msg(2, text(1, "0")))
    body = envelope("v1", "ResourceQuota", empty_meta("q"), msg(2, hard))
    assert decode_object(body)["spec"] == {"hard": {"cpu": "500m", "pods": "0"}}


def test_micro_time_keeps_microseconds() -> None:
    event_time = msg(10, num(1, 1704164645), num(2, 123456789))
    body = envelope("v1", "Event", empty_meta("e"), event_time)
    assert decode_object(body)["eventTime"] == "2024-01-02T03:04:05.123456Z"


def test_named_slices_travel_wrapped_but_decode_to_lists() -> None:
    extra = entry(5, "scopes", msg(2, text(1, "a"), text(1, "b")))
    body = envelope("authorization.k8s.io/v1", "SubjectAccessReview", empty_meta(""), msg(2, extra))
    assert decode_object(body)["spec"] == {"extra": {"scopes": ["a", "b"]}}


def test_raw_extension_holds_json() -> None:
    data = msg(2, text(1, '{"spec":{"replicas":2}}'))
    body = envelope("apps/v1", "ControllerRevision", empty_meta("r"), data, num(3, 4))
    assert decode_object(body) == {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "r"},
        "data": {"spec": {"replicas": 2}},
        "revision": 4,
    }


def test_managed_fields_carry_their_field_set_as_json() -> None:
    managed = msg(
        17,
        text(1, "kubectl"),
        text(2, "Update"),
        text(6, "FieldsV1"),
        msg(7, text(1, '{"f:data":{"f:a":{}}}')),
        msg(4),
    )
    body = envelope("v1", "ConfigMap", msg(1, text(1, "c"), managed))
    assert decode_object(body)["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]


def test_options_kinds_fall_back_to_meta_v1() -> None:
    body = envelope("v1", "DeleteOptions", text(4, "Foreground"), num(1, 0))
    assert decode_object(body) == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0,
    }


def test_invalid_utf8_is_replaced_as_go_json_does() -> None:
    body = envelope("v1", "ConfigMap", msg(1, msg(1, b"a\xffb")))
    assert decode_object(body)["metadata"]["name"] == "a\ufffdb"


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind":"Pod"}', "magic prefix"),
        (MAGIC + msg(2, b""), "no apiVersion or kind"),
        (envelope("v1", "Gizmo"), "no protobuf schema for kind 'Gizmo' in 'v1'"),
        (envelope("example.com/v1", "Pod"), "no protobuf schema"),
        (MAGIC + b"\x0a\x05\x0a\x02", "overruns"),
        (MAGIC + b"\x0a", "truncated inside a varint"),
        (envelope("v1", "ConfigMap", num(1, 5)), "wire type 0, expected 2"),
        (envelope("v1", "ConfigMap", varint(2 << 3 | 3)), "unsupported protobuf wire type 3"),
        (
            envelope("v1", "Service", msg(2, msg(1, msg(4, num(1, 7))))),
            "IntOrString has unknown type 7",
        ),
        (
            envelope("apps/v1", "ControllerRevision", msg(2, text(1, "{nope"))),
            "embedded JSON is invalid",
        ),
        (MAGIC + b"\x0a" + b"\xff" * 11, "longer than 10 bytes"),
    ],
)
def test_malformed_bodies_raise_value_errors(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        decode_object(body)
    assert isinstance(info.value, ProtobufError)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/vnd.kubernetes.protobuf", True),
        ("application/vnd.kubernetes.protobuf; charset=binary", True),
        ("Application/VND.Kubernetes.Protobuf", True),
        ("application/vnd.kubernetes.protobuf;stream=watch", True),
        ("application/json", False),
        ("application/vnd.kubernetes.protobuf+json", False),
        ("", False),
    ],
)
def test_is_protobuf(content_type: str, expected: bool) -> None:
    assert is_protobuf(content_type) is expected


@pytest.mark.parametrize(
    ("nanoseconds", "expected"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (300_000_000, "300ms"),
        (1_500_000_000, "1.5s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (-2_000_000_000, "-2s"),
        (3_723_000_000_001, "1h2m3.000000001s"),
    ],
)
def test_go_duration(nanoseconds: int, expected: str) -> None:
    assert go_duration(nanoseconds) == expected


def test_duration_message_decodes_to_go_text() -> None:
    from kubi.api.protobuf import _decode_message

    assert _decode_message("meta.v1.Duration", num(1, 90_000_000_000)) == "1m30s"
