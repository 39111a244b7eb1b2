"""Checks shared by the non-workload kinds: metadata, IP and CIDR formats,
ports, quantities, and how Go prints the odd value in an error message.

Everything here is a pure function from plain JSON values to lists of
FieldErrors (or to a parsed value), so each kind module reads as a list of its
own rules. IP parsing follows Go's "sloppy" parser that upstream uses: IPv4
octets may carry leading zeros, and an IPv4-mapped IPv6 address counts as IPv4.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any

from kubi.api.errors import FieldError, invalid, not_supported, required
from kubi.api.kinds import meta as m
from kubi.api.quantity import Quantity, parse_quantity

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PROTOCOLS = ("SCTP", "TCP", "UDP")

IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


# Bad values rendered the way Go's `%#v` prints them.
GoLiteral = m.GoLiteral


def go_str_ptr(value: Any) -> str:
    return "(*string)(nil)" if value is None else f'&"{value}"'


# -- metadata ----------------------------------------------------------------------


def section(obj: dict, key: str) -> dict:
    """The object at `key`, created empty when absent or null (Go decodes null as empty)."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def meta_create(obj: dict, *, namespaced: bool, name_fn: m.NameFn) -> list[FieldError]:
    """ObjectMeta on create, with the finalizer rule of Kubernetes' own kinds."""
    meta = obj.get("metadata") or {}
    return m.validate_object_meta(meta, namespaced=namespaced, name_fn=name_fn)


def meta_update(obj: dict, old: dict) -> list[FieldError]:
    return m.validate_object_meta_update(obj.get("metadata") or {}, old.get("metadata") or {})


def dns_label(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, msg) for msg in m.is_dns1123_label(value)]


def dns_subdomain(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, msg) for msg in m.is_dns1123_subdomain(value)]


def qualified_name(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, msg) for msg in m.is_qualified_name(value)]


def immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    return m.immutable(new, old, path)


# -- IP addresses ------------------------------------------------------------------


def parse_ip(text: Any) -> IPAddress | None:
    """Parse an address as Go's ParseIPSloppy does, or return None."""
    if not isinstance(text, str) or not text or "%" in text:
        return None
    if ":" not in text:
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
            return None
        octets = [int(p) for p in parts]
        if any(o > 255 for o in octets):
            return None
        return ipaddress.IPv4Address(".".join(map(str, octets)))
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def as_ipv4(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address is an IPv4 address to Go."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_ipv6(text: str) -> bool:
    ip = parse_ip(text)
    return ip is not None and as_ipv4(ip).version == 6


def parse_cidr(text: Any) -> IPNetwork | None:
    if not isinstance(text, str) or text.count("/") != 1:
        return None
    addr, bits = text.split("/")
    ip = parse_ip(addr)
    if ip is None or not bits.isascii() or not bits.isdigit() or len(bits) > 3:
        return None
    prefix = int(bits)
    if prefix > ip.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


def ip_errors(value: Any, path: str) -> list[FieldError]:
    return [] if parse_ip(value) is not None else [invalid(path, value, IP_MSG)]


def cidr_errors(value: Any, path: str) -> list[FieldError]:
    return [] if parse_cidr(value) is not None else [invalid(path, value, CIDR_MSG)]


def ipv4_errors(value: Any, path: str) -> list[FieldError]:
    ip = parse_ip(value)
    if ip is None or as_ipv4(ip).version != 4:
        return [invalid(path, value, "must be a valid IPv4 address")]
    return []


def ipv6_errors(value: Any, path: str) -> list[FieldError]:
    ip = parse_ip(value)
    if ip is None or as_ipv4(ip).version != 6:
        return [invalid(path, value, "must be a valid IPv6 address")]
    return []


def non_special_ip(value: Any, path: str) -> list[FieldError]:
    """Endpoints and external IPs may not be unspecified, loopback or link-local."""
    ip = parse_ip(value)
    if ip is None:
        return [invalid(path, value, "must be a valid IP address")]
    ip = as_ipv4(ip)
    errs: list[FieldError] = []
    if ip.is_unspecified:
        errs.append(invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local:
        errs.append(
            invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        )
    if _is_link_local_multicast(ip):
        errs.append(
            invalid(
                path,
                value,
                "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
            )
        )
    return errs


def _is_link_local_multicast(ip: IPAddress) -> bool:
    if ip.version == 4:
        return ip in ipaddress.IPv4Network("224.0.0.0/24")
    # Go tests the first byte 0xff and the scope nibble 2.
    packed = ip.packed
    return packed[0] == 0xFF and packed[1] & 0x0F == 0x02


def is_dual_stack(families: Sequence[int]) -> bool:
    return 4 in families and 6 in families


# -- ports -------------------------------------------------------------------------


def port_num_or_name(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str):
        return [invalid(path, value, msg) for msg in m.is_valid_port_name(value)]
    return [invalid(path, value, msg) for msg in m.is_valid_port_num(value)]


def protocol_errors(value: Any, path: str) -> list[FieldError]:
    if not value:
        return [required(path)]
    if value not in PROTOCOLS:
        return [not_supported(path, value, PROTOCOLS)]
    return []


# -- quantities ----------------------------------------------------------------------


def quantity(value: Any) -> Quantity | None:
    """The parsed quantity, or None when it does not parse (decoding reports that)."""
    try:
        return parse_quantity(value)
    except ValueError:
        return None


def nonnegative_quantity(value: Any, path: str) -> list[FieldError]:
    q = quantity(value)
    if q is not None and q.sign() < 0:
        return [invalid(path, str(q), "must be greater than or equal to 0")]
    return []


def positive_quantity(value: Any, path: str) -> list[FieldError]:
    q = quantity(value)
    if q is not None and q.sign() <= 0:
        return [invalid(path, str(q), "must be greater than zero")]
    return []


# -- Go's encoding/json wording ------------------------------------------------------


_GO_JSON_WHERE = {
    "Expecting value": "looking for beginning of value",
    "Extra data": "after top-level value",
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Expecting ':' delimiter": "after object key",
    "Expecting ',' delimiter": "after object key:value pair",
    "Invalid control character at": "in string literal",
}


def go_json_syntax_error(text: str) -> str | None:
    """Go's encoding/json text for a syntax error in `text`, or None if it parses."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return _go_syntax(text, exc)
    return None


def _go_syntax(text: str, exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(text.rstrip(" \t\r\n")) or exc.msg.startswith("Unterminated"):
        return "unexpected end of JSON input"
    where = _GO_JSON_WHERE.get(exc.msg, "looking for beginning of value")
    return f"invalid character {_go_char(text[exc.pos])} {where}"


def go_json_object_error(text: str) -> str | None:
    """What Go's json.Unmarshal into a map says about `text`, or None if it is fine."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return _go_syntax(text, exc)
    if value is None or isinstance(value, dict):
        return None
    kinds = {list: "array", str: "string", bool: "bool", int: "number", float: "number"}
    return f"json: cannot unmarshal {kinds[type(value)]} into Go value of type map[string]interface {{}}"


def _go_char(ch: str) -> str:
    escapes = {"'": "'\\''", "\n": "'\\n'", "\t": "'\\t'", "\r": "'\\r'"}
    return escapes.get(ch, f"'{ch}'")
