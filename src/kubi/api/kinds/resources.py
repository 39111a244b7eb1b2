"""Resource names and ResourceRequirements: what a container may ask for.

Upstream's rules, in one place: which resource names are standard, native,
extended or huge pages; which must be whole numbers; which may be overcommitted
(requests below limits); and `validate_resource_requirements`, which checks a
container's `resources` block (`requests` no greater than `limits`, extended
resources requested exactly at their limit). Quantities arrive as manifest text;
one that does not parse is reported with the parser's own message.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import FieldError, duplicate, forbidden, invalid, not_found, required
from kubi.api.kinds.meta import is_qualified_name
from kubi.api.quantity import Quantity, parse_quantity

_STANDARD_CONTAINER = {"cpu", "memory", "ephemeral-storage"}
_STANDARD = _STANDARD_CONTAINER | {
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
}
_INTEGER = {
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
}
HUGEPAGES_PREFIX = "hugepages-"


def is_hugepages(name: str) -> bool:
    return name.startswith(HUGEPAGES_PREFIX)


def is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    if is_native(name) or name.startswith("requests."):
        return False
    return not is_qualified_name("requests." + name)


def overcommit_allowed(name: str) -> bool:
    return is_native(name) and not is_hugepages(name)


def is_integer_resource(name: str) -> bool:
    return name in _INTEGER or is_extended(name)


def _is_standard(name: str) -> bool:
    return (
        name in _STANDARD or is_hugepages(name) or name.startswith("requests." + HUGEPAGES_PREFIX)
    )


def validate_resource_name(name: str, path: str) -> list[FieldError]:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and not _is_standard(name):
        errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
    return errs


def validate_container_resource_name(name: str, path: str) -> list[FieldError]:
    errs = validate_resource_name(name, path)
    if "/" not in name:
        if name not in _STANDARD_CONTAINER and not is_hugepages(name):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not is_native(name) and not is_extended(name):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def quantity_at(value: Any, path: str, errs: list[FieldError]) -> Quantity | None:
    """Parse a quantity, recording why not at `path` when it does not parse."""
    try:
        return parse_quantity(value)
    except ValueError as exc:
        errs.append(
            invalid(path, value if isinstance(value, (str, int, float)) else str(value), str(exc))
        )
        return None


def validate_quantity_value(name: str, q: Quantity, path: str) -> list[FieldError]:
    """Non-negative, and whole for resources counted in units."""
    errs: list[FieldError] = []
    if q.sign() < 0:
        errs.append(invalid(path, str(q), "must be greater than or equal to 0"))
    if is_integer_resource(name) and q.milli_value() % 1000:
        errs.append(invalid(path, str(q), "must be an integer"))
    return errs


def _hugepage_error(name: str, q: Quantity) -> str:
    try:
        size = parse_quantity(name[len(HUGEPAGES_PREFIX) :])
    except ValueError:
        return ""
    if size.amount <= 0 or q.amount % size.amount:
        return f"{q} is not positive integer multiple of {name}"
    return ""


def validate_resource_requirements(
    requirements: Any, path: str, *, claim_names: set[str] | None = None
) -> list[FieldError]:
    """A container's `resources`: names, quantities, and requests against limits."""
    if not isinstance(requirements, dict):
        return []
    errs: list[FieldError] = []
    lim_path, req_path = f"{path}.limits", f"{path}.requests"
    limits_raw = requirements.get("limits") or {}
    requests_raw = requirements.get("requests") or {}
    limits: dict[str, Quantity] = {}
    has_compute = False
    has_hugepages = False
    for name, value in limits_raw.items():
        kpath = f"{lim_path}[{name}]"
        errs.extend(validate_container_resource_name(name, kpath))
        q = quantity_at(value, kpath, errs)
        if q is None:
            continue
        limits[name] = q
        errs.extend(validate_quantity_value(name, q, kpath))
        if is_hugepages(name):
            has_hugepages = True
            if msg := _hugepage_error(name, q):
                errs.append(invalid(kpath, str(q), msg))
        has_compute = has_compute or name in ("cpu", "memory")
    for name, value in requests_raw.items():
        kpath = f"{req_path}[{name}]"
        errs.extend(validate_container_resource_name(name, kpath))
        q = quantity_at(value, kpath, errs)
        if q is None:
            continue
        errs.extend(validate_quantity_value(name, q, kpath))
        limit = limits.get(name)
        if limit is not None:
            if q != limit and not overcommit_allowed(name):
                errs.append(invalid(req_path, str(q), f"must be equal to {name} limit of {limit}"))
            elif q > limit:
                errs.append(
                    invalid(
                        req_path, str(q), f"must be less than or equal to {name} limit of {limit}"
                    )
                )
        elif name not in limits_raw and not overcommit_allowed(name):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
        if is_hugepages(name):
            has_hugepages = True
            if msg := _hugepage_error(name, q):
                errs.append(invalid(kpath, str(q), msg))
        has_compute = has_compute or name in ("cpu", "memory")
    if has_hugepages and not has_compute:
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    errs.extend(
        _validate_claims(requirements.get("claims"), claim_names or set(), f"{path}.claims")
    )
    return errs


def _validate_claims(claims: Any, pod_claims: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, claim in enumerate(claims or []):
        name = (claim or {}).get("name") or ""
        if not name:
            errs.append(required(f"{path}[{i}]"))
            continue
        if name in seen:
            errs.append(duplicate(f"{path}[{i}]", name))
        seen.add(name)
        if name not in pod_claims:
            err = not_found(f"{path}[{i}]", name)
            err.detail = "must be one of the names in pod.spec.resourceClaims" + (
                ": " + ", ".join(sorted(pod_claims)) if pod_claims else " which is empty"
            )
            errs.append(err)
    return errs
