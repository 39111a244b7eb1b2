"""core/v1 Endpoints: defaults and validation as upstream v1.33 has them.

Endpoints are written by the endpoints controller (or by hand for a Service
without a selector); every address must be a usable IP, never loopback,
link-local or unspecified.
"""

from __future__ import annotations

from kubi.api.errors import FieldError, invalid, required
from kubi.api.hooks import defaulter, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import (
    dns_label,
    ip_errors,
    meta_create,
    meta_update,
    non_special_ip,
    protocol_errors,
    qualified_name,
)


@defaulter("v1", "Endpoints")
def default_endpoints(obj: dict) -> None:
    for subset in obj.get("subsets") or []:
        for port in subset.get("ports") or []:
            if not port.get("protocol"):
                port["protocol"] = "TCP"


@validator("v1", "Endpoints")
def validate_endpoints(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    errs = meta_update(obj, old) if old is not None else []
    errs.extend(meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain))
    for i, subset in enumerate(obj.get("subsets") or []):
        path = f"subsets[{i}]"
        addresses = subset.get("addresses") or []
        not_ready = subset.get("notReadyAddresses") or []
        if not addresses and not not_ready:
            errs.append(required(path, "must specify `addresses` or `notReadyAddresses`"))
        for j, address in enumerate(addresses):
            errs.extend(_endpoint_address(address, f"{path}.addresses[{j}]"))
        for j, address in enumerate(not_ready):
            errs.extend(_endpoint_address(address, f"{path}.notReadyAddresses[{j}]"))
        ports = subset.get("ports") or []
        for j, port in enumerate(ports):
            errs.extend(_endpoint_port(port, len(ports) > 1, f"{path}.ports[{j}]"))
    return errs


def _endpoint_address(address: dict, path: str) -> list[FieldError]:
    ip = address.get("ip") or ""
    errs = ip_errors(ip, f"{path}.ip")
    if address.get("hostname"):
        errs.extend(dns_label(address["hostname"], f"{path}.hostname"))
    if address.get("nodeName") is not None:
        node = address["nodeName"]
        errs.extend(invalid(f"{path}.nodeName", node, msg) for msg in m.dns1123_subdomain(node))
    return errs + non_special_ip(ip, f"{path}.ip")


def _endpoint_port(port: dict, require_name: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs.extend(dns_label(name, f"{path}.name"))
    number = port.get("port", 0)
    errs.extend(invalid(f"{path}.port", number, msg) for msg in m.is_valid_port_num(number))
    errs.extend(protocol_errors(port.get("protocol"), f"{path}.protocol"))
    if port.get("appProtocol") is not None:
        errs.extend(qualified_name(port["appProtocol"], f"{path}.appProtocol"))
    return errs
