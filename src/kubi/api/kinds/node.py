"""core/v1 Node: defaults and validation as upstream v1.33 has them.

A Node is mostly written by its own node agent, so validation is light: names,
taints, resource quantities in status, and the few spec fields that may only be
set once (podCIDRs, providerID). The defaulter keeps the deprecated singular
`podCIDR` in step with `podCIDRs`, as upstream's v1 conversion does.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import (
    DUPLICATE,
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
)
from kubi.api.hooks import defaulter, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import (
    GoLiteral,
    as_ipv4,
    cidr_errors,
    is_dual_stack,
    meta_create,
    meta_update,
    nonnegative_quantity,
    parse_cidr,
    qualified_name,
    quantity,
    section,
)

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# Resources counted in whole units (upstream's integer resources).
INTEGER_RESOURCES = frozenset(
    {
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)
NO_PODCIDR_CHANGE = 'node updates may not change podCIDR except from "" to valid'


@defaulter("v1", "Node")
def default_node(obj: dict) -> None:
    spec = section(obj, "spec")
    if spec.get("podCIDRs"):
        spec["podCIDR"] = spec["podCIDRs"][0]
    elif spec.get("podCIDR"):
        spec["podCIDRs"] = [spec["podCIDR"]]
    status = obj.get("status")
    if status and status.get("capacity") is not None and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


# -- resource names and values, shared with quota validation ------------------------


def is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended_resource(name: str) -> bool:
    if is_native_resource(name) or name.startswith("requests."):
        return False
    return not m.is_qualified_name("requests." + name)


def is_integer_resource(name: str) -> bool:
    return name in INTEGER_RESOURCES or is_extended_resource(name)


def resource_quantity_value(name: str, value: Any, path: str) -> list[FieldError]:
    """Not negative, and whole for resources that are counted."""
    errs = nonnegative_quantity(value, path)
    q = quantity(value)
    if q is not None and is_integer_resource(name) and q.milli_value() % 1000:
        errs.append(invalid(path, str(q), "must be an integer"))
    return errs


# -- validation ----------------------------------------------------------------------


def taint_literal(taint: dict) -> GoLiteral:
    added = taint.get("timeAdded")
    when = "(*v1.Time)(nil)" if not added else f'time "{added}"'
    return GoLiteral(
        f'core.Taint{{Key:"{taint.get("key") or ""}", Value:"{taint.get("value") or ""}", '
        f'Effect:"{taint.get("effect") or ""}", TimeAdded:{when}}}'
    )


def validate_taints(taints: list[dict], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(taints):
        here = f"{path}[{i}]"
        errs.extend(qualified_name(taint.get("key") or "", f"{here}.key"))
        value = taint.get("value") or ""
        problems = m.is_valid_label_value(value)
        if problems:
            errs.append(invalid(f"{here}.value", value, ";".join(problems)))
        effect = taint.get("effect") or ""
        if not effect:
            errs.append(required(f"{here}.effect"))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(f"{here}.effect", effect, TAINT_EFFECTS))
        key = (effect, taint.get("key") or "")
        if key in seen:
            errs.append(
                FieldError(
                    DUPLICATE,
                    here,
                    taint_literal(taint),
                    "taints must be unique by key and effect pair",
                )
            )
            continue
        seen.add(key)
    return errs


def _node_resources(obj: dict) -> list[FieldError]:
    status = obj.get("status") or {}
    errs: list[FieldError] = []
    for field in ("capacity", "allocatable"):
        for name, value in sorted((status.get(field) or {}).items()):
            errs.extend(resource_quantity_value(name, value, f"status.{field}.{name}"))
    return errs


def _pod_cidrs(spec: dict) -> list[FieldError]:
    cidrs = spec.get("podCIDRs") or []
    path = "spec.podCIDRs"
    errs: list[FieldError] = []
    for i, value in enumerate(cidrs):
        errs.extend(cidr_errors(value, f"{path}[{i}]"))
    if len(cidrs) > 1:
        parsed = [parse_cidr(c) for c in cidrs]
        if any(p is None for p in parsed):
            errs.append(
                FieldError(
                    ("Internal error", "InternalError"),
                    path,
                    detail="invalid PodCIDRs. failed to check with dual stack with error:"
                    "invalid CIDR address",
                )
            )
        versions = [as_ipv4(p.network_address).version for p in parsed if p is not None]
        if not is_dual_stack(versions) or len(cidrs) > 2:
            errs.append(
                invalid(path, cidrs, "may specify no more than one CIDR for each IP family")
            )
        seen: set[str] = set()
        for i, value in enumerate(cidrs):
            if value in seen:
                errs.append(duplicate(f"{path}[{i}]", value))
            seen.add(value)
    return errs


@validator("v1", "Node")
def validate_node(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    spec = obj.get("spec") or {}
    taints = spec.get("taints") or []
    if old is None:
        errs = meta_create(obj, namespaced=False, name_fn=m.dns1123_subdomain)
        # Upstream reports spec.taints under metadata.
        errs.extend(validate_taints(taints, "metadata.taints"))
        errs.extend(_node_resources(obj))
        return errs + _pod_cidrs(spec)
    errs = meta_update(obj, old)
    errs.extend(_node_resources(obj))
    seen: set[tuple[Any, Any]] = set()
    for i, address in enumerate((obj.get("status") or {}).get("addresses") or []):
        key = (address.get("type") or "", address.get("address") or "")
        if key in seen:
            literal = GoLiteral(f'core.NodeAddress{{Type:"{key[0]}", Address:"{key[1]}"}}')
            errs.append(duplicate(f"status.addresses[{i}]", literal))
        seen.add(key)
    errs.extend(_node_spec_update(spec, old.get("spec") or {}))
    errs.extend(validate_taints(taints, "metadata.taints"))
    return errs


def _node_spec_update(spec: dict, old: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    old_cidrs, new_cidrs = old.get("podCIDRs") or [], spec.get("podCIDRs") or []
    if old_cidrs:
        if len(old_cidrs) != len(new_cidrs):
            errs.append(forbidden("spec.podCIDRs", NO_PODCIDR_CHANGE))
        else:
            errs.extend(
                forbidden("spec.podCIDRs", NO_PODCIDR_CHANGE)
                for before, after in zip(old_cidrs, new_cidrs)
                if before != after
            )
    provider = old.get("providerID") or ""
    if provider and provider != (spec.get("providerID") or ""):
        errs.append(
            forbidden(
                "spec.providerID", 'node updates may not change providerID except from "" to valid'
            )
        )
    if (spec.get("externalID") or "") != (old.get("externalID") or ""):
        errs.append(forbidden("spec.externalID", "may not be updated"))
    return errs
