"""Reading query names: the Kubernetes DNS schema's layout, reverse names, dashed addresses."""

from __future__ import annotations

import pytest

from kubi.dns.names import (
    InvalidName,
    RecordRequest,
    address_from_reverse,
    endpoint_hostname,
    labels_of,
    parse_request,
    pod_address,
    reverse_name,
    split_zone,
)


def test_labels_are_lower_cased_without_the_root() -> None:
    assert labels_of("Web-Demo-0.Nginx-Demo.demo.svc.Cluster.Local.") == (
        "web-demo-0", "nginx-demo", "demo", "svc", "cluster", "local")


def test_split_zone() -> None:
    zone = ("cluster", "local")
    assert split_zone(("a", "svc", "cluster", "local"), zone) == ("a", "svc")
    assert split_zone(("cluster", "local"), zone) == ()
    assert split_zone(("example", "com"), zone) is None
    assert split_zone(("local",), zone) is None


@pytest.mark.parametrize("name, expected", [
    ("", RecordRequest()),
    ("svc", RecordRequest()),
    ("pod", RecordRequest()),
    ("demo.svc", RecordRequest(kind="svc", namespace="demo")),
    ("nginx-demo.demo.svc", RecordRequest(kind="svc", namespace="demo", service="nginx-demo")),
    ("web-demo-0.nginx-demo.demo.svc",
     RecordRequest(kind="svc", namespace="demo", service="nginx-demo", endpoint="web-demo-0")),
    ("_web._tcp.nginx-demo.demo.svc",
     RecordRequest(kind="svc", namespace="demo", service="nginx-demo", port="web", protocol="tcp")),
    ("web.tcp.nginx-demo.demo.svc",
     RecordRequest(kind="svc", namespace="demo", service="nginx-demo", port="web", protocol="tcp")),
    ("10-244-0-39.demo.pod", RecordRequest(kind="pod", namespace="demo", service="10-244-0-39")),
])
def test_parse_request(name: str, expected: RecordRequest) -> None:
    assert parse_request(labels_of(name)) == expected


@pytest.mark.parametrize("name", ["foo", "demo.foo", "a.b.c.svc.demo.svc", "x.a.b.svc.demo.svc"])
def test_names_the_schema_cannot_hold(name: str) -> None:
    with pytest.raises(InvalidName):
        parse_request(labels_of(name))


def test_reverse_names() -> None:
    assert address_from_reverse(("39", "0", "244", "10"), "in-addr.arpa") == "10.244.0.39"
    assert address_from_reverse(("0", "244", "10"), "in-addr.arpa") is None
    assert address_from_reverse(("300", "0", "244", "10"), "in-addr.arpa") is None
    nibbles = tuple("1" + "0" * 27 + "00df")
    assert address_from_reverse(nibbles, "ip6.arpa") == "fd00::1"
    assert address_from_reverse(nibbles[1:], "ip6.arpa") is None
    assert reverse_name("10.244.0.39") == "39.0.244.10.in-addr.arpa."


def test_endpoint_hostname_falls_back_to_the_dashed_address() -> None:
    assert endpoint_hostname("web-demo-0", "10.244.0.39") == "web-demo-0"
    assert endpoint_hostname("", "10.244.0.39") == "10-244-0-39"
    assert endpoint_hostname("", "fd00::1") == "fd00--1"
    assert endpoint_hostname("", "fd00:10::") == "fd00-10--0"


def test_pod_address() -> None:
    assert pod_address("10-244-0-39") == "10.244.0.39"
    assert pod_address("fd00--1") == "fd00::1"
    assert pod_address("web-demo-0") is None
    assert pod_address("1-2-3-999") is None
