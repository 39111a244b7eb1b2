"""Downward API values: pod fields and container resources as the kubelet renders them.

Both consumers of the downward API, environment variables (`fieldRef`,
`resourceFieldRef` in `env`) and downwardAPI volume files, format values here, so
the two always agree. Maps (all labels, all annotations) are rendered one
`key="value"` line per entry, sorted by key, with the value quoted exactly as Go's
`%q` quotes a string, and no trailing newline. Resource values are whole numbers:
the quantity divided by the divisor, rounded up; a container without a limit is
given the node's allocatable amount, as the kubelet does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from kubi.api.kinds.names import is_qualified_name
from kubi.api.quantity import parse_quantity


class FieldPathError(Exception):
    """A field or resource reference that cannot be resolved for this pod."""


# Go's strconv.Quote escapes for the control characters that have a short form.
_SHORT_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", "\\": "\\\\", '"': '\\"',
}

# Field paths the downward API accepts for a pod (the subscripted forms
# `metadata.labels['k']` and `metadata.annotations['k']` are handled apart).
_POD_FIELD_LABELS = frozenset({
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
    "metadata.uid", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName",
    "spec.schedulerName", "status.phase", "status.hostIP", "status.hostIPs",
    "status.podIP", "status.podIPs",
})

# Limits that default to node allocatable when a container sets none (or zero).
_DEFAULTED_LIMITS = ("cpu", "memory", "ephemeral-storage")


def go_quote(text: str) -> str:
    """`text` quoted as Go's `%q` does: printable runes kept, the rest escaped."""
    out = ['"']
    for ch in text:
        short = _SHORT_ESCAPES.get(ch)
        if short is not None:
            out.append(short)
            continue
        if ch == " " or ch.isprintable():
            out.append(ch)
            continue
        code = ord(ch)
        if code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def format_map(values: Mapping[str, str] | None) -> str:
    """Labels or annotations as the downward API writes them."""
    items = sorted((values or {}).items())
    return "\n".join(f"{key}={go_quote(str(value))}" for key, value in items)


def split_subscript(path: str) -> tuple[str, str, bool]:
    """`metadata.labels['app']` -> ("metadata.labels", "app", True)."""
    if not path.endswith("']"):
        return path, "", False
    head, sep, key = path[:-2].partition("['")
    if not sep or not head:
        return path, "", False
    return head, key, True


def check_pod_field_label(path: str, api_version: str = "v1") -> None:
    """Reject field paths the downward API does not offer for pods."""
    if api_version not in ("", "v1"):
        raise FieldPathError(f"unsupported pod version: {api_version}")
    head, _, subscripted = split_subscript(path)
    if subscripted and head in ("metadata.annotations", "metadata.labels"):
        return
    if path not in _POD_FIELD_LABELS:
        raise FieldPathError(f"field label not supported: {path}")


def extract_metadata_field(pod: Mapping[str, Any], path: str) -> str:
    """The metadata fields every downward API consumer can read."""
    meta = pod.get("metadata") or {}
    head, key, subscripted = split_subscript(path)
    if subscripted:
        if head == "metadata.annotations":
            _check_subscript(path, key.lower())
            return str((meta.get("annotations") or {}).get(key, ""))
        if head == "metadata.labels":
            _check_subscript(path, key)
            return str((meta.get("labels") or {}).get(key, ""))
        raise FieldPathError(f"fieldPath {go_quote(path)} does not support subscript")
    if path == "metadata.annotations":
        return format_map(meta.get("annotations"))
    if path == "metadata.labels":
        return format_map(meta.get("labels"))
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(path.split(".", 1)[1]) or "")
    raise FieldPathError(f"unsupported fieldPath: {path}")


def _check_subscript(path: str, key: str) -> None:
    errs = is_qualified_name(key)
    if errs:
        raise FieldPathError(f"invalid key subscript in {path}: {';'.join(errs)}")


def find_container(pod: Mapping[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if container.get("name") == name:
            return container
    raise FieldPathError(f"container {name} not found")


def with_default_limits(container: Mapping[str, Any],
                        allocatable: Mapping[str, str] | None) -> dict[str, Any]:
    """A copy of `container` whose missing cpu/memory/storage limits are the node's."""
    resources = dict(container.get("resources") or {})
    limits = dict(resources.get("limits") or {})
    for name in _DEFAULTED_LIMITS:
        current = limits.get(name)
        if (current is None or parse_quantity(current).is_zero()) and allocatable \
                and name in allocatable:
            limits[name] = allocatable[name]
    resources["limits"] = limits
    return {**container, "resources": resources}


def resource_value(ref: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """A `resourceFieldRef` against one (already defaulted) container."""
    divisor = parse_quantity(ref.get("divisor") or "0")
    if divisor.is_zero():
        divisor = parse_quantity("1")
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not _is_downward_resource(name):
        raise FieldPathError(f"Unsupported container resource : {resource}")
    listed = ((container.get("resources") or {}).get(kind) or {}).get(name)
    amount = parse_quantity(listed if listed is not None else "0")
    if name == "cpu":
        return str(_ceil_div(amount.milli_value(), divisor.milli_value()))
    return str(_ceil_div(amount.value(), divisor.value()))


def _is_downward_resource(name: str) -> bool:
    return name in _DEFAULTED_LIMITS or name.startswith("hugepages-")


def _ceil_div(numerator: int, denominator: int) -> int:
    if denominator == 0:
        raise FieldPathError("divisor must be greater than zero")
    return -(-numerator // denominator)


def container_resource_value(ref: Mapping[str, Any], pod: Mapping[str, Any],
                             container: Mapping[str, Any] | None,
                             allocatable: Mapping[str, str] | None) -> str:
    """Resolve `ref` for `container`, or for the container it names."""
    name = ref.get("containerName")
    target = find_container(pod, name) if name else container
    if target is None:
        raise FieldPathError("resourceFieldRef names no container")
    return resource_value(ref, with_default_limits(target, allocatable))


CONFIG_SEEN = "kubernetes.io/config.seen"
CONFIG_SOURCE = "kubernetes.io/config.source"


def rfc3339_nano(ns: int) -> str:
    """UTC time as Go's RFC3339Nano prints it: fraction without trailing zeros."""
    seconds, fraction = divmod(ns, 10**9)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction:09d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def with_kubelet_annotations(pod: Mapping[str, Any], seen_ns: int,
                             source: str = "api") -> dict[str, Any]:
    """The pod as the kubelet holds it: annotated with when and whence it was seen.

    The kubelet's copy carries these two annotations, so they appear in the
    downward API's annotations file (never in the stored object).
    """
    meta = dict(pod.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations.setdefault(CONFIG_SEEN, rfc3339_nano(seen_ns))
    annotations.setdefault(CONFIG_SOURCE, source)
    meta["annotations"] = annotations
    return {**pod, "metadata": meta}
