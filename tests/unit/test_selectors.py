"""Label and field selectors, read as their specification.

The tables state upstream's behaviour as clients observe it: which strings
parse, what they print back as, which label sets they select, and the exact
error text for the malformed ones.
"""

from __future__ import annotations

import pytest

from kubi.api.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorParseError,
    field_label_error,
    field_set,
    format_label_selector,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
    selector_from_set,
    supported_fields,
)

QNAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

# -- label selector strings ---------------------------------------------------------

# (selector, canonical form, label sets it selects, label sets it rejects)
LABEL_CASES = [
    ("", "", [{}, {"a": "b"}], []),
    ("x=a", "x=a", [{"x": "a"}, {"x": "a", "y": "b"}], [{}, {"x": "b"}]),
    ("x==a", "x==a", [{"x": "a"}], [{"x": "A"}]),
    ("x!=a", "x!=a", [{}, {"x": "b"}, {"y": "a"}], [{"x": "a"}]),
    ("x in (a,b)", "x in (a,b)", [{"x": "a"}, {"x": "b"}], [{}, {"x": "c"}]),
    ("x notin (a,b)", "x notin (a,b)", [{}, {"x": "c"}], [{"x": "a"}, {"x": "b"}]),
    ("x", "x", [{"x": ""}, {"x": "v"}], [{}, {"y": "x"}]),
    ("!x", "!x", [{}, {"y": "1"}], [{"x": ""}]),
    ("x=", "x=", [{"x": ""}], [{}, {"x": "a"}]),
    ("x in (,a)", "x in (,a)", [{"x": ""}, {"x": "a"}], [{}, {"x": "b"}]),
    ("x in ()", "x in ()", [{"x": ""}], [{"x": "a"}]),
    ("x in (a,)", "x in (,a)", [{"x": ""}, {"x": "a"}], []),
    ("x in (a,,b)", "x in (,a,b)", [{"x": ""}], []),
    ("x>1", "x>1", [{"x": "2"}, {"x": "10"}], [{}, {"x": "1"}, {"x": "a"}, {"x": "1.5"}]),
    ("x<1", "x<1", [{"x": "0"}, {"x": "-3"}], [{"x": "1"}, {"x": "+7"}]),
    ("x=a,y=b", "x=a,y=b", [{"x": "a", "y": "b"}], [{"x": "a"}, {"y": "b"}]),
    ("z=1,a=2", "a=2,z=1", [{"a": "2", "z": "1"}], []),
    ("x in (b,a,b)", "x in (a,b)", [{"x": "b"}], []),
    (" x = a ,\ty in ( b , c )\n", "x=a,y in (b,c)", [{"x": "a", "y": "c"}], []),
    ("x in (in,notin)", "x in (in,notin)", [{"x": "notin"}], [{"x": "x"}]),
    ("x=in", "x=in", [{"x": "in"}], []),
    ("x notin ()", "x notin ()", [{}, {"x": "a"}], [{"x": ""}]),
    ("example.com/app=web", "example.com/app=web", [{"example.com/app": "web"}], [{"app": "web"}]),
    (
        "app=web,!canary,tier in (fe)",
        "app=web,!canary,tier in (fe)",
        [{"app": "web", "tier": "fe"}],
        [{"app": "web", "tier": "fe", "canary": "1"}],
    ),
]


@pytest.mark.parametrize(("text", "canonical", "selected", "rejected"), LABEL_CASES)
def test_label_selector_strings(
    text: str, canonical: str, selected: list[dict[str, str]], rejected: list[dict[str, str]]
) -> None:
    selector = parse_label_selector(text)
    assert str(selector) == canonical
    for labels in selected:
        assert selector.matches(labels), labels
    for labels in rejected:
        assert not selector.matches(labels), labels
    # The canonical form reads back as the same selector.
    assert parse_label_selector(canonical) == selector


def test_empty_selector_is_empty_and_matches_objects_without_labels() -> None:
    selector = parse_label_selector("")
    assert selector.empty
    assert selector.matches(None)
    assert not parse_label_selector("a").empty


LABEL_ERRORS = [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a==b==c", "found '==', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a,,b", "found ',', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("!!a", "unable to parse requirement: found '!', expected: identifier"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
    ("a=(b", "unable to parse requirement: found '(', expected: identifier"),
    ("a=b)", "found ')', expected: ',' or 'end of string'"),
    (
        "a exists",
        "unable to parse requirement: found 'exists', expected: in, notin, =, ==, !=, gt, lt",
    ),
    ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": name part {QNAME_RULE}'),
    (
        "example.com/",
        (
            'unable to parse requirement: <nil>: Invalid value: "example.com/": '
            f"name part must be non-empty; name part {QNAME_RULE}"
        ),
    ),
    (
        "/a",
        'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty',
    ),
    ("a=-b", f'unable to parse requirement: values[0][a]: Invalid value: "-b": {VALUE_RULE}'),
    (
        "a=" + "v" * 64,
        (
            f'unable to parse requirement: values[0][a]: Invalid value: "{"v" * 64}": '
            "must be no more than 63 characters"
        ),
    ),
    (
        "x>abc",
        (
            'unable to parse requirement: values[0]: Invalid value: "abc": '
            "for 'Gt', 'Lt' operators, the value must be an integer"
        ),
    ),
]


@pytest.mark.parametrize(("text", "message"), LABEL_ERRORS)
def test_label_selector_errors_use_upstream_wording(text: str, message: str) -> None:
    with pytest.raises(SelectorParseError) as info:
        parse_label_selector(text)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_label_key_with_two_slashes() -> None:
    with pytest.raises(SelectorParseError, match="a qualified name must consist of") as info:
        parse_label_selector("a/b/c")
    assert str(info.value).endswith(
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    )


def test_label_key_prefix_must_be_a_dns_subdomain() -> None:
    with pytest.raises(SelectorParseError, match="prefix part a lowercase RFC 1123 subdomain"):
        parse_label_selector("Example.com/a")


# -- structured selectors -----------------------------------------------------------


def test_missing_structured_selector_matches_nothing() -> None:
    selector = selector_from_label_selector(None)
    assert not selector.matches({})
    assert not selector.matches({"a": "b"})
    assert not selector.empty
    assert str(selector) == ""


def test_empty_structured_selector_matches_everything() -> None:
    selector = selector_from_label_selector({})
    assert selector.empty
    assert selector.matches({"a": "b"})
    assert selector_from_label_selector({"matchLabels": None, "matchExpressions": []}).empty


def test_structured_selector_prints_sorted_by_key_with_sorted_sets() -> None:
    selector = selector_from_label_selector(
        {
            "matchLabels": {"tier": "fe", "app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "NotIn", "values": ["prod", "dev"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "track", "operator": "In", "values": ["stable"]},
            ],
        }
    )
    assert str(selector) == "app=web,!canary,env notin (dev,prod),tier=fe,track in (stable),zone"
    assert selector.matches({"app": "web", "tier": "fe", "track": "stable", "zone": "a"})
    assert not selector.matches({"app": "web", "tier": "fe", "track": "stable"})


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            '"Equals" is not a valid label selector operator',
        ),
        ({"matchLabels": {"-a": "b"}}, f'key: Invalid value: "-a": name part {QNAME_RULE}'),
        (
            {"matchLabels": {"-a": "-b"}},
            (
                f'[key: Invalid value: "-a": name part {QNAME_RULE}, '
                f'values[0][-a]: Invalid value: "-b": {VALUE_RULE}]'
            ),
        ),
    ],
)
def test_invalid_structured_selectors(obj: dict, message: str) -> None:
    with pytest.raises(SelectorParseError) as info:
        selector_from_label_selector(obj)
    assert str(info.value) == message
    assert format_label_selector(obj) == "<error>"


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"app": "nginx"}}, "app=nginx"),
        (
            {
                "matchLabels": {"app": "nginx"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
            },
            "app=nginx,tier in (a,b)",
        ),
    ],
)
def test_format_label_selector(obj: dict | None, text: str) -> None:
    assert format_label_selector(obj) == text


def test_selector_from_set() -> None:
    selector = selector_from_set({"b": "2", "a": "1"})
    assert str(selector) == "a=1,b=2"
    assert selector.matches({"a": "1", "b": "2", "c": "3"})
    assert not selector.matches({"a": "1"})
    assert selector_from_set({}).empty
    assert selector_from_set(None).matches({"x": "y"})


def test_selectors_compare_by_content() -> None:
    assert parse_label_selector("b,a=1") == parse_label_selector("a=1, b")
    assert selector_from_label_selector(None) != selector_from_label_selector({})
    assert isinstance(hash(parse_label_selector("a")), int)
    assert isinstance(selector_from_label_selector(None), LabelSelector)


# -- field selectors ----------------------------------------------------------------

FIELD_CASES = [
    ("", "", [], [{}, {"a": "b"}], []),
    ("a=b", "a=b", [("a", "=", "b")], [{"a": "b"}], [{}, {"a": "c"}]),
    ("a==b", "a=b", [("a", "=", "b")], [{"a": "b"}], [{"a": "c"}]),
    ("a!=b", "a!=b", [("a", "!=", "b")], [{}, {"a": "c"}], [{"a": "b"}]),
    (
        "spec.nodeName=",
        "spec.nodeName=",
        [("spec.nodeName", "=", "")],
        [{}, {"spec.nodeName": ""}],
        [{"spec.nodeName": "n1"}],
    ),
    (
        "b=2,a=1",
        "a=1,b=2",
        [("a", "=", "1"), ("b", "=", "2")],
        [{"a": "1", "b": "2"}],
        [{"a": "1"}],
    ),
    ("a=1,", "a=1", [("a", "=", "1")], [{"a": "1"}], []),
    ("a=x\\,y", "a=x\\,y", [("a", "=", "x,y")], [{"a": "x,y"}], [{"a": "x"}]),
    ("a=x\\=y\\\\", "a=x\\=y\\\\", [("a", "=", "x=y\\")], [{"a": "x=y\\"}], []),
    ("a!b=c", "a!b=c", [("a!b", "=", "c")], [{"a!b": "c"}], []),
    (" a = b", " a = b", [(" a ", "=", " b")], [{" a ": " b"}], [{"a": "b"}]),
]


@pytest.mark.parametrize(("text", "canonical", "requirements", "selected", "rejected"), FIELD_CASES)
def test_field_selectors(
    text: str,
    canonical: str,
    requirements: list[tuple[str, str, str]],
    selected: list[dict[str, str]],
    rejected: list[dict[str, str]],
) -> None:
    selector = parse_field_selector(text)
    assert str(selector) == canonical
    assert selector.requirements == requirements
    assert selector.empty == (not requirements)
    for fields in selected:
        assert selector.matches(fields), fields
    for fields in rejected:
        assert not selector.matches(fields), fields


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "invalid selector: 'abc'; can't understand 'abc'"),
        ("a=1,zzz", "invalid selector: 'a=1,zzz'; can't understand 'zzz'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b,c\\,d", "invalid selector: 'a=b,c\\,d'; can't understand 'c\\,d'"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorParseError) as info:
        parse_field_selector(text)
    assert str(info.value) == message


def test_field_selector_exact_match() -> None:
    selector = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert selector.requires_exact_match("spec.nodeName") == "n1"
    assert selector.requires_exact_match("status.phase") is None
    assert FieldSelector() == parse_field_selector("")


# -- per-kind field sets -------------------------------------------------------------


def test_pod_field_set() -> None:
    pod = {
        "metadata": {"name": "p1", "namespace": "ns"},
        "spec": {
            "nodeName": "n1",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "hostNetwork": True,
        },
        "status": {
            "phase": "Running",
            "podIP": "10.42.0.9",
            "podIPs": [{"ip": "10.42.0.5"}, {"ip": "fd00::5"}],
            "nominatedNodeName": "n2",
        },
    }
    assert field_set("", "Pod", pod) == {
        "metadata.name": "p1",
        "metadata.namespace": "ns",
        "spec.nodeName": "n1",
        "spec.host": "n1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default",
        "spec.hostNetwork": "true",
        "status.phase": "Running",
        "status.podIP": "10.42.0.5",
        "status.nominatedNodeName": "n2",
    }


def test_pod_field_set_defaults() -> None:
    fields = field_set("", "Pod", {"metadata": {"name": "p"}, "status": {"podIP": "10.0.0.1"}})
    assert fields["spec.hostNetwork"] == "false"
    assert fields["spec.nodeName"] == ""
    assert fields["status.podIP"] == "10.0.0.1"
    # Accepted but never set: `status.podIPs=` selects every pod.
    assert parse_field_selector("status.podIPs=").matches(fields)


def test_core_event_field_set() -> None:
    event = {
        "metadata": {"name": "e1", "namespace": "default"},
        "involvedObject": {
            "kind": "Pod",
            "name": "p1",
            "namespace": "default",
            "uid": "u1",
            "apiVersion": "v1",
            "resourceVersion": "7",
            "fieldPath": "spec.containers{c}",
        },
        "reason": "Scheduled",
        "type": "Normal",
        "reportingComponent": "default-scheduler",
    }
    fields = field_set("", "Event", event)
    assert fields["involvedObject.kind"] == "Pod"
    assert fields["involvedObject.fieldPath"] == "spec.containers{c}"
    assert fields["reason"] == "Scheduled"
    assert fields["reportingComponent"] == "default-scheduler"
    # No source component: the reporting controller stands in.
    assert fields["source"] == "default-scheduler"
    event["source"] = {"component": "kubelet"}
    assert field_set("", "Event", event)["source"] == "kubelet"


def test_events_k8s_io_field_set_uses_its_own_names() -> None:
    event = {
        "metadata": {"name": "e1", "namespace": "default"},
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet",
        "type": "Normal",
        "reportingController": "deployment-controller",
    }
    fields = field_set("events.k8s.io", "Event", event)
    assert fields["regarding.kind"] == "Deployment"
    assert fields["regarding.name"] == "web"
    assert fields["regarding.uid"] == ""
    assert fields["reportingController"] == "deployment-controller"
    assert parse_field_selector("regarding.kind=Deployment,regarding.name=web").matches(fields)


@pytest.mark.parametrize(
    ("group", "kind", "obj", "expected"),
    [
        (
            "",
            "Namespace",
            {"metadata": {"name": "ns"}, "status": {"phase": "Active"}},
            {"status.phase": "Active"},
        ),
        (
            "",
            "Node",
            {"metadata": {"name": "n"}, "spec": {"unschedulable": True}},
            {"spec.unschedulable": "true"},
        ),
        ("", "Node", {"metadata": {"name": "n"}}, {"spec.unschedulable": "false"}),
        ("", "Secret", {"metadata": {"name": "s"}, "type": "Opaque"}, {"type": "Opaque"}),
        (
            "",
            "Service",
            {"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "type": "ClusterIP"}},
            {"spec.clusterIP": "None", "spec.type": "ClusterIP"},
        ),
        (
            "",
            "ReplicationController",
            {"metadata": {"name": "r"}, "status": {"replicas": 3}},
            {"status.replicas": "3"},
        ),
        ("", "ReplicationController", {"metadata": {"name": "r"}}, {"status.replicas": "0"}),
        (
            "apps",
            "ReplicaSet",
            {"metadata": {"name": "r"}, "status": {"replicas": 2}},
            {"status.replicas": "2"},
        ),
        (
            "batch",
            "Job",
            {"metadata": {"name": "j"}, "status": {"succeeded": 1}},
            {"status.successful": "1"},
        ),
        (
            "certificates.k8s.io",
            "CertificateSigningRequest",
            {"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kubelet-serving"}},
            {"spec.signerName": "kubernetes.io/kubelet-serving"},
        ),
        ("apps", "Deployment", {"metadata": {"name": "d", "namespace": "x"}}, {}),
    ],
)
def test_kind_field_sets(group: str, kind: str, obj: dict, expected: dict[str, str]) -> None:
    meta = obj["metadata"]
    assert field_set(group, kind, obj) == {
        "metadata.name": meta["name"],
        "metadata.namespace": meta.get("namespace", ""),
        **expected,
    }


@pytest.mark.parametrize(
    ("group", "kind", "label", "error"),
    [
        ("", "Pod", "spec.nodeName", None),
        ("", "Pod", "spec.host", None),
        ("", "Pod", "status.podIPs", None),
        ("", "Pod", "spec.containers", "field label not supported: spec.containers"),
        ("", "Node", "metadata.name", None),
        ("", "Node", "metadata.namespace", "field label not supported: metadata.namespace"),
        ("", "Namespace", "status.phase", None),
        ("", "Namespace", "metadata.namespace", "field label not supported: metadata.namespace"),
        ("", "Secret", "type", None),
        ("", "Service", "spec.clusterIP", None),
        ("", "Event", "involvedObject.uid", None),
        ("", "ReplicationController", "status.replicas", None),
        ("events.k8s.io", "Event", "regarding.name", None),
        (
            "events.k8s.io",
            "Event",
            "involvedObject.name",
            "field label not supported: involvedObject.name",
        ),
        ("batch", "Job", "status.successful", None),
        (
            "batch",
            "Job",
            "status.failed",
            'field label "status.failed" not supported for batchv1.Job',
        ),
        ("certificates.k8s.io", "CertificateSigningRequest", "spec.signerName", None),
        ("apps", "Deployment", "metadata.namespace", None),
        (
            "apps",
            "ReplicaSet",
            "status.replicas",
            '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        (
            "networking.k8s.io",
            "Ingress",
            "foo.bar",
            '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
    ],
)
def test_field_labels_accepted_per_kind(
    group: str, kind: str, label: str, error: str | None
) -> None:
    assert field_label_error(group, kind, label) == error
    assert (label in supported_fields(group, kind)) == (error is None)
