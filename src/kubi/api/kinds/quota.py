"""core/v1 ResourceQuota and LimitRange: defaults and validation as upstream
v1.33 has them.

Both are lists of resource names mapped to quantities, so most of the rules are
about which names are allowed where (standard names, or fully qualified ones)
and how the quantities compare. Quantities are compared exactly and printed in
their canonical form, as upstream prints them in its messages.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import FieldError, duplicate, forbidden, invalid, required
from kubi.api.hooks import defaulter, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import GoLiteral, meta_create, meta_update, quantity
from kubi.api.kinds.node import is_extended_resource, is_native_resource, resource_quantity_value

_COUNTS = {
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
_COMPUTE = {"cpu", "memory", "ephemeral-storage"}
_LIMITS_REQUESTS = {
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
}
STANDARD_RESOURCES = frozenset(
    _COUNTS | _COMPUTE | _LIMITS_REQUESTS | {"storage", "requests.storage"}
)
STANDARD_QUOTA_RESOURCES = frozenset(_COUNTS | _COMPUTE | _LIMITS_REQUESTS | {"requests.storage"})
STANDARD_SCOPES = frozenset(
    {
        "Terminating",
        "NotTerminating",
        "BestEffort",
        "NotBestEffort",
        "PriorityClass",
        "CrossNamespacePodAffinity",
    }
)
_POD_COMPUTE = {"cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory"}
LIMIT_TYPES = frozenset({"Pod", "Container", "PersistentVolumeClaim"})


def _is_quota_hugepages(name: str) -> bool:
    return name.startswith(("hugepages-", "requests.hugepages-"))


def resource_name(name: str, path: str) -> list[FieldError]:
    """A standard resource name, or a fully qualified one."""
    errs = [invalid(path, name, msg) for msg in m.is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and name not in STANDARD_RESOURCES and not _is_quota_hugepages(name):
        return [invalid(path, name, "must be a standard resource type or fully qualified")]
    return []


def quota_resource_name(name: str, path: str) -> list[FieldError]:
    errs = resource_name(name, path)
    if "/" not in name and name not in STANDARD_QUOTA_RESOURCES and not _is_quota_hugepages(name):
        errs.append(invalid(path, name, "must be a standard resource for quota"))
    return errs


def _container_resource_name(name: str, path: str) -> list[FieldError]:
    errs = resource_name(name, path)
    if "/" not in name:
        if name not in _COMPUTE and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not is_native_resource(name) and not is_extended_resource(name):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


# -- ResourceQuota -------------------------------------------------------------------


def _scopes_literal(scopes: list[Any]) -> GoLiteral:
    return GoLiteral("[]core.ResourceQuotaScope{" + ", ".join(f'"{s}"' for s in scopes) + "}")


def _scope_fits(scope: str, resource: str) -> bool:
    if scope == "BestEffort":
        return resource == "pods"
    if scope in (
        "Terminating",
        "NotTerminating",
        "NotBestEffort",
        "PriorityClass",
        "CrossNamespacePodAffinity",
    ):
        return resource == "pods" or resource in _POD_COMPUTE
    return True


def _is_standard_quota(name: str) -> bool:
    return name in STANDARD_QUOTA_RESOURCES or _is_quota_hugepages(name)


_CONFLICTS = (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating"))


def _quota_scopes(spec: dict) -> list[FieldError]:
    scopes = spec.get("scopes") or []
    hard = sorted(spec.get("hard") or {})
    path = "spec.scopes"
    errs: list[FieldError] = []
    for scope in scopes:
        if scope not in STANDARD_SCOPES:
            errs.append(invalid(path, _scopes_literal(scopes), "unsupported scope"))
        for name in hard:
            if _is_standard_quota(name) and not _scope_fits(scope, name):
                errs.append(
                    invalid(path, _scopes_literal(scopes), "unsupported scope applied to resource")
                )
    for pair in _CONFLICTS:
        if set(pair) <= set(scopes):
            errs.append(invalid(path, _scopes_literal(scopes), "conflicting scopes"))
    return errs


def _scope_selector(spec: dict) -> list[FieldError]:
    selector = spec.get("scopeSelector")
    if selector is None:
        return []
    path = "spec.scopeSelector.matchExpressions"
    hard = sorted(spec.get("hard") or {})
    errs: list[FieldError] = []
    seen: set[str] = set()
    exists_only = (
        "BestEffort",
        "NotBestEffort",
        "Terminating",
        "NotTerminating",
        "CrossNamespacePodAffinity",
    )
    for req in selector.get("matchExpressions") or []:
        scope, op, values = (
            req.get("scopeName") or "",
            req.get("operator") or "",
            req.get("values") or [],
        )
        if scope not in STANDARD_SCOPES:
            errs.append(invalid(f"{path}.scopeName", scope, "unsupported scope"))
        for name in hard:
            if _is_standard_quota(name) and not _scope_fits(scope, name):
                errs.append(invalid(path, selector, "unsupported scope applied to resource"))
        if scope in exists_only and op != "Exists":
            errs.append(
                invalid(
                    f"{path}.operator",
                    op,
                    "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, "
                    "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
                    "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                )
            )
        if op in ("In", "NotIn"):
            if not values:
                errs.append(
                    required(
                        f"{path}.values",
                        "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                    )
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    invalid(
                        f"{path}.values",
                        values,
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                    )
                )
        else:
            errs.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
        seen.add(scope)
    for pair in _CONFLICTS:
        if set(pair) <= seen:
            errs.append(
                invalid(path, _scopes_literal(spec.get("scopes") or []), "conflicting scopes")
            )
    return errs


def _quota_list(resources: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for name, value in sorted((resources or {}).items()):
        here = f"{path}[{name}]"
        errs.extend(quota_resource_name(name, here))
        errs.extend(resource_quantity_value(name, value, here))
    return errs


def _quota_spec(spec: dict) -> list[FieldError]:
    return (
        _quota_list(spec.get("hard") or {}, "spec.hard")
        + _quota_scopes(spec)
        + _scope_selector(spec)
    )


def _quota_status(obj: dict) -> list[FieldError]:
    status = obj.get("status") or {}
    return _quota_list(status.get("hard") or {}, "status.hard") + _quota_list(
        status.get("used") or {}, "status.used"
    )


@validator("v1", "ResourceQuota")
def validate_resource_quota(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    spec = obj.get("spec") or {}
    if old is None:
        errs = meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain)
        return errs + _quota_spec(spec) + _quota_status(obj)
    errs = meta_update(obj, old)
    if subresource == "status":
        return errs + _quota_status(obj)
    errs.extend(_quota_spec(spec))
    scopes = spec.get("scopes") or []
    if set(scopes) != set((old.get("spec") or {}).get("scopes") or []):
        errs.append(invalid("spec.scopes", _scopes_literal(scopes), m.FIELD_IMMUTABLE))
    return errs


# -- LimitRange ----------------------------------------------------------------------


@defaulter("v1", "LimitRange")
def default_limit_range(obj: dict) -> None:
    for item in (obj.get("spec") or {}).get("limits") or []:
        if item.get("type") != "Container":
            continue
        # Limit defaults to max, the request to that limit, else to min.
        default = dict(item.get("default") or {})
        request = dict(item.get("defaultRequest") or {})
        for name, value in (item.get("max") or {}).items():
            default.setdefault(name, value)
        for name, value in default.items():
            request.setdefault(name, value)
        for name, value in (item.get("min") or {}).items():
            request.setdefault(name, value)
        # Empty lists are left out, as upstream leaves them out of its JSON.
        for field, values in (("default", default), ("defaultRequest", request)):
            if values:
                item[field] = values


def _limit_type(kind: str, path: str) -> list[FieldError]:
    errs = [invalid(path, kind, msg) for msg in m.is_qualified_name(kind)]
    if not errs and "/" not in kind and kind not in LIMIT_TYPES:
        errs.append(invalid(path, kind, "must be a standard limit type or fully qualified"))
    return errs


def _limit_resource(kind: str, name: str, path: str) -> list[FieldError]:
    if kind in ("Pod", "Container"):
        return _container_resource_name(name, path)
    return resource_name(name, path)


@validator("v1", "LimitRange")
def validate_limit_range(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    errs = meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain)
    if old is not None:
        errs = meta_update(obj, old) + errs
    kinds: set[str] = set()
    for i, item in enumerate((obj.get("spec") or {}).get("limits") or []):
        path = f"spec.limits[{i}]"
        kind = item.get("type") or ""
        errs.extend(_limit_type(kind, f"{path}.type"))
        if kind in kinds:
            errs.append(duplicate(f"{path}.type", kind))
        kinds.add(kind)
        errs.extend(_limit_item(item, kind, path))
    return errs


def _limit_item(item: dict, kind: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    lists: dict[str, dict[str, Any]] = {}
    fields = ["max", "min"]
    if kind == "Pod":
        for field in ("default", "defaultRequest"):
            if item.get(field):
                errs.append(
                    forbidden(f"{path}.{field}", "may not be specified when `type` is 'Pod'")
                )
    else:
        fields += ["default", "defaultRequest"]
    fields.append("maxLimitRequestRatio")
    for field in fields:
        values = item.get(field) or {}
        for name in sorted(values):
            errs.extend(_limit_resource(kind, name, f"{path}.{field}[{name}]"))
        lists[field] = {name: quantity(v) for name, v in values.items()}
    storage_bounded = "storage" in (item.get("min") or {}) or "storage" in (item.get("max") or {})
    if kind == "PersistentVolumeClaim" and not storage_bounded:
        errs.append(
            required(
                f"{path}.limits",
                "either minimum or maximum storage value is required, but neither was provided",
            )
        )
    names = sorted(set().union(*(lists[f].keys() for f in lists)))
    for name in names:
        errs.extend(_limit_comparisons(name, lists, path))
    return errs


def _limit_comparisons(name: str, lists: dict[str, dict[str, Any]], path: str) -> list[FieldError]:
    low, high = lists["min"].get(name), lists["max"].get(name)
    default = lists.get("default", {}).get(name)
    request = lists.get("defaultRequest", {}).get(name)
    ratio = lists["maxLimitRequestRatio"].get(name)
    errs: list[FieldError] = []

    def bad(field: str, shown: Any, text: str) -> None:
        errs.append(invalid(f"{path}.{field}[{name}]", str(shown), text))

    if low is not None and high is not None and low > high:
        bad("min", low, f"min value {low} is greater than max value {high}")
    if request is not None and low is not None and low > request:
        bad(
            "defaultRequest",
            request,
            f"min value {low} is greater than default request value {request}",
        )
    if request is not None and high is not None and request > high:
        bad(
            "defaultRequest",
            request,
            f"default request value {request} is greater than max value {high}",
        )
    if request is not None and default is not None and request > default:
        bad(
            "defaultRequest",
            request,
            f"default request value {request} is greater than default limit value {default}",
        )
    if default is not None and low is not None and low > default:
        bad("default", low, f"min value {low} is greater than default value {default}")
    if default is not None and high is not None and default > high:
        bad("default", high, f"default value {default} is greater than max value {high}")
    if ratio is not None and ratio.amount < 1:
        bad("maxLimitRequestRatio", ratio, f"ratio {ratio} is less than 1")
    if ratio is not None and low is not None and high is not None and low.amount:
        limit = float(high.amount / low.amount)
        if float(ratio.amount) > limit:
            bad("maxLimitRequestRatio", ratio, f"ratio {ratio} is greater than max/min = {limit:f}")
    overcommit = is_native_resource(name) and not name.startswith("hugepages-")
    if not overcommit and default is not None and request is not None and default != request:
        bad(
            "defaultRequest",
            request,
            f"default value {default} must equal to defaultRequest value {request} in {name}",
        )
    return errs
