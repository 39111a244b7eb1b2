"""Validation of a container's ports and environment (env, envFrom).

Also home to the downward API selectors (`fieldRef`, `resourceFieldRef`),
which env vars and downwardAPI volumes share: a fieldRef must name a field the
v1 downward API knows, then one allowed where it is used (`status.phase` is a
field label but not an env source). Messages and paths are upstream's.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import FieldError, duplicate, invalid, not_supported, required
from kubi.api.kinds import meta
from kubi.api.quantity import canonical

_PROTOCOLS = ("SCTP", "TCP", "UDP")
_ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
# What the v1 downward API knows at all (field label conversion), before narrowing.
_DOWNWARD_LABELS = {
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
    "spec.host",
}
RESOURCE_FIELD_PATHS = (
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
)
_DIVISORS_CPU = ("1m", "1")
_DIVISORS_BYTES = (
    "1",
    "1k",
    "1M",
    "1G",
    "1T",
    "1P",
    "1E",
    "1Ki",
    "1Mi",
    "1Gi",
    "1Ti",
    "1Pi",
    "1Ei",
)
_BYTES_DIVISOR_TEXT = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- ports ----------------------------------------------------------------------------


def validate_ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports or []):
        ipath = f"{path}[{i}]"
        port = port or {}
        name = port.get("name") or ""
        if name:
            msgs = meta.is_valid_port_name(name)
            if msgs:
                errs.extend(invalid(f"{ipath}.name", name, m) for m in msgs)
            elif name in names:
                errs.append(duplicate(f"{ipath}.name", name))
            else:
                names.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            errs.append(required(f"{ipath}.containerPort"))
        else:
            errs.extend(
                invalid(f"{ipath}.containerPort", container_port, m)
                for m in meta.is_valid_port_num(container_port)
            )
        host_port = port.get("hostPort")
        if host_port:
            errs.extend(
                invalid(f"{ipath}.hostPort", host_port, m)
                for m in meta.is_valid_port_num(host_port)
            )
        protocol = port.get("protocol") or ""
        if not protocol:
            errs.append(required(f"{ipath}.protocol"))
        elif protocol not in _PROTOCOLS:
            errs.append(not_supported(f"{ipath}.protocol", protocol, _PROTOCOLS))
    return errs


def host_port_conflicts(
    containers: list[dict], path: str, seen: set[str] | None = None
) -> list[FieldError]:
    """Two ports may not claim the same protocol/hostIP/hostPort."""
    seen = set() if seen is None else seen
    errs: list[FieldError] = []
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate((ctr or {}).get("ports") or []):
            host_port = _int((port or {}).get("hostPort"))
            if not host_port:
                continue
            key = f"{port.get('protocol', '')}/{port.get('hostIP', '')}/{host_port}"
            if key in seen:
                errs.append(duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            seen.add(key)
    return errs


# -- env -----------------------------------------------------------------------------


def validate_env(env: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, var in enumerate(env or []):
        ipath = f"{path}[{i}]"
        var = var or {}
        name = var.get("name") or ""
        if not name:
            errs.append(required(f"{ipath}.name"))
        else:
            errs.extend(invalid(f"{ipath}.name", name, m) for m in meta.is_env_var_name(name))
        errs.extend(_validate_value_from(var, f"{ipath}.valueFrom"))
    return errs


def _validate_value_from(var: dict, path: str) -> list[FieldError]:
    source = var.get("valueFrom")
    if source is None:
        return []
    errs: list[FieldError] = []
    count = 0
    if source.get("fieldRef") is not None:
        count += 1
        errs.extend(
            validate_object_field_selector(source["fieldRef"], _ENV_FIELD_PATHS, f"{path}.fieldRef")
        )
    if source.get("resourceFieldRef") is not None:
        count += 1
        errs.extend(
            validate_resource_field_selector(
                source["resourceFieldRef"], f"{path}.resourceFieldRef", volume=False
            )
        )
    for key in ("configMapKeyRef", "secretKeyRef"):
        if source.get(key) is not None:
            count += 1
            errs.extend(_validate_key_selector(source[key], f"{path}.{key}"))
    if count == 0:
        errs.append(
            invalid(
                path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )
        )
    elif var.get("value"):
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif count > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _split_subscript(field_path: str) -> tuple[str, str] | None:
    if not field_path.endswith("']"):
        return None
    head, sep, sub = field_path[:-2].partition("['")
    if not sep or not head:
        return None
    return head, sub


def validate_object_field_selector(
    ref: Any, allowed: tuple[str, ...], path: str
) -> list[FieldError]:
    ref = ref or {}
    api_version = ref.get("apiVersion") or ""
    field_path = ref.get("fieldPath") or ""
    if not api_version:
        return [required(f"{path}.apiVersion")]
    if not field_path:
        return [required(f"{path}.fieldPath")]
    split = _split_subscript(field_path)
    problem = ""
    if api_version != "v1":
        problem = f"unsupported pod version: {api_version}"
    elif split is not None and split[0] not in ("metadata.annotations", "metadata.labels"):
        problem = f"field label does not support subscript: {field_path}"
    elif split is None and field_path not in _DOWNWARD_LABELS:
        problem = f"field label not supported: {field_path}"
    if problem:
        return [invalid(f"{path}.fieldPath", field_path, f"error converting fieldPath: {problem}")]
    if field_path == "spec.host":
        field_path = "spec.nodeName"
    if split is not None:
        key = split[1].lower() if split[0] == "metadata.annotations" else split[1]
        return [invalid(path, key, m) for m in meta.is_qualified_name(key)]
    if field_path not in allowed:
        return [not_supported(f"{path}.fieldPath", field_path, sorted(allowed))]
    return []


def validate_resource_field_selector(ref: Any, path: str, *, volume: bool) -> list[FieldError]:
    ref = ref or {}
    errs: list[FieldError] = []
    resource = ref.get("resource") or ""
    if volume and not ref.get("containerName"):
        errs.append(required(f"{path}.containerName"))
    elif not resource:
        errs.append(required(f"{path}.resource"))
    elif resource not in RESOURCE_FIELD_PATHS and not resource.startswith(
        ("requests.hugepages-", "limits.hugepages-")
    ):
        errs.append(not_supported(f"{path}.resource", resource, RESOURCE_FIELD_PATHS))
    divisor = ref.get("divisor")
    if divisor in (None, "", "0", 0):
        return errs
    try:
        text = canonical(divisor)
    except ValueError as exc:
        return errs + [invalid(f"{path}.divisor", divisor, str(exc))]
    if resource in ("limits.cpu", "requests.cpu") and text not in _DIVISORS_CPU:
        errs.append(
            invalid(
                f"{path}.divisor",
                resource,
                "only divisor's values 1m and 1 are supported with the cpu resource",
            )
        )
    for suffix, what in (
        ("memory", "the memory resource"),
        ("ephemeral-storage", "the local ephemeral storage resource"),
    ):
        if resource in (f"limits.{suffix}", f"requests.{suffix}") and text not in _DIVISORS_BYTES:
            errs.append(
                invalid(
                    f"{path}.divisor",
                    resource,
                    f"only divisor's values {_BYTES_DIVISOR_TEXT} are supported with {what}",
                )
            )
    if (
        resource.startswith(("requests.hugepages-", "limits.hugepages-"))
        and text not in _DIVISORS_BYTES
    ):
        errs.append(
            invalid(
                f"{path}.divisor",
                resource,
                f"only divisor's values {_BYTES_DIVISOR_TEXT} are supported with the hugepages resource",
            )
        )
    return errs


def _validate_key_selector(ref: Any, path: str) -> list[FieldError]:
    ref = ref or {}
    name = ref.get("name") or ""
    key = ref.get("key") or ""
    errs = [invalid(f"{path}.name", name, m) for m in meta.dns1123_subdomain(name)]
    if not key:
        errs.append(required(f"{path}.key"))
    else:
        errs.extend(invalid(f"{path}.key", key, m) for m in meta.is_config_map_key(key))
    return errs


def validate_env_from(sources: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, source in enumerate(sources or []):
        ipath = f"{path}[{i}]"
        source = source or {}
        prefix = source.get("prefix") or ""
        if prefix:
            errs.extend(invalid(f"{ipath}.prefix", prefix, m) for m in meta.is_env_var_name(prefix))
        count = 0
        for key in ("configMapRef", "secretRef"):
            if source.get(key) is not None:
                count += 1
                name = (source[key] or {}).get("name") or ""
                if not name:
                    errs.append(required(f"{ipath}.{key}.name"))
                else:
                    errs.extend(
                        invalid(f"{ipath}.{key}.name", name, m)
                        for m in meta.dns1123_subdomain(name, True)
                    )
        if count == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs
