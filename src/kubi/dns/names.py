"""Reading query names the way the Kubernetes DNS schema lays them out.

A name inside the cluster domain reads right to left: `svc` or `pod`, a
namespace, a service (or a dashed pod IP), then one label naming an endpoint
or two naming `_<port>._<proto>`. Anything longer, or with a first label that
is neither `svc` nor `pod`, is not a name the schema can hold (NXDOMAIN).
Reverse names (`d.c.b.a.in-addr.arpa`, nibbles under `ip6.arpa`) turn back
into addresses. Everything here is pure string work on lower-cased labels;
comparisons with Kubernetes data are case-insensitive, as the schema says.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SVC = "svc"
POD = "pod"
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")


class InvalidName(ValueError):
    """A name inside a zone that no Kubernetes record can ever have."""


@dataclass(frozen=True)
class RecordRequest:
    """The parts of a name below the cluster domain; empty where absent."""

    kind: str = ""  # "svc" or "pod"; empty for the apex and `svc`/`pod` themselves
    namespace: str = ""
    service: str = ""  # for `pod` names, the dashed address
    endpoint: str = ""
    port: str = ""
    protocol: str = ""


def labels_of(name: str) -> tuple[str, ...]:
    """The labels of a dotted name, lower-cased, without the root."""
    return tuple(label for label in name.lower().rstrip(".").split(".") if label)


def split_zone(labels: tuple[str, ...], zone: tuple[str, ...]) -> tuple[str, ...] | None:
    """The labels left of `zone` when the name lies inside it, else None."""
    if len(labels) < len(zone) or labels[len(labels) - len(zone):] != zone:
        return None
    return labels[: len(labels) - len(zone)]


def parse_request(base: tuple[str, ...]) -> RecordRequest:
    """Split the labels below the cluster domain into a `RecordRequest`.

    `cluster.local`, `svc.cluster.local` and `pod.cluster.local` parse to an
    empty request (they exist and hold no data); raises `InvalidName` for
    names that cannot exist.
    """
    if not base or base in ((SVC,), (POD,)):
        return RecordRequest()
    *rest, kind = base
    if kind not in (SVC, POD):
        raise InvalidName(".".join(base))
    *rest, namespace = rest
    if not rest:
        return RecordRequest(kind=kind, namespace=namespace)
    *rest, service = rest
    if not rest:
        return RecordRequest(kind=kind, namespace=namespace, service=service)
    if len(rest) == 1:
        return RecordRequest(kind=kind, namespace=namespace, service=service, endpoint=rest[0])
    if len(rest) == 2:
        return RecordRequest(kind=kind, namespace=namespace, service=service,
                             port=_strip_underscore(rest[0]),
                             protocol=_strip_underscore(rest[1]))
    raise InvalidName(".".join(base))


def _strip_underscore(label: str) -> str:
    return label.removeprefix("_")


def address_from_reverse(base: tuple[str, ...], zone: str) -> str | None:
    """The address a full reverse name stands for; None for partial or odd names.

    `base` holds the labels left of `zone` ("in-addr.arpa" or "ip6.arpa").
    """
    if zone == "in-addr.arpa":
        if len(base) != 4 or not all(p.isdigit() and int(p) <= 255 for p in base):
            return None
        return ".".join(reversed(base))
    if zone == "ip6.arpa":
        if len(base) != 32 or not all(len(n) == 1 and n in "0123456789abcdef" for n in base):
            return None
        digits = "".join(reversed(base))
        return str(ipaddress.IPv6Address(int(digits, 16)))
    return None


def reverse_name(ip: str) -> str:
    """The PTR owner name of an address, with the trailing dot."""
    return ipaddress.ip_address(ip).reverse_pointer + "."


def endpoint_hostname(hostname: str, ip: str) -> str:
    """The label naming an endpoint: its hostname, else its address with dashes.

    An IPv6 address ending in `::` would leave a trailing dash, which no DNS
    label may have, so a zero closes it.
    """
    if hostname:
        return hostname
    if "." in ip:
        return ip.replace(".", "-")
    dashed = ip.replace(":", "-")
    return dashed + "0" if dashed.endswith("-") else dashed


def pod_address(label: str) -> str | None:
    """The address a pod label such as `10-244-0-39` (or `fd00--1`) encodes."""
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False
