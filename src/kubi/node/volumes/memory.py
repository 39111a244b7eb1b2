"""The size of a memory-backed (tmpfs) volume, reckoned as the kubelet reckons it.

A tmpfs volume may hold at most what the pod could hold in memory anyway: the
node's allocatable memory, lowered to the pod's memory limit when every
container has one (app containers and sidecars add up, a plain init container
only raises the floor), and lowered again to the volume's own `sizeLimit` when
that is smaller. Example: allocatable 8Gi, two containers limited to 256Mi
each, `sizeLimit: 1Gi` gives 512Mi. When nothing is known the size is None and
the kernel's default (half of RAM) applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubi.api.quantity import parse_quantity


def _memory_limit(container: Mapping[str, Any]) -> int | None:
    value = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return parse_quantity(value).value() if value is not None else None


def pod_memory_limit(pod: Mapping[str, Any]) -> int | None:
    """The pod-level memory limit, or None when some container is unlimited."""
    spec = pod.get("spec") or {}
    total = 0
    floor = 0
    for container in spec.get("initContainers") or []:
        limit = _memory_limit(container)
        if limit is None:
            return None
        if container.get("restartPolicy") == "Always":
            total += limit
        else:
            floor = max(floor, total + limit)
    for container in spec.get("containers") or []:
        limit = _memory_limit(container)
        if limit is None:
            return None
        total += limit
    overhead = (spec.get("overhead") or {}).get("memory")
    extra = parse_quantity(overhead).value() if overhead is not None else 0
    return max(total, floor) + extra


def memory_volume_size(pod: Mapping[str, Any], size_limit: Any,
                       allocatable: Mapping[str, str] | None) -> int | None:
    size: int | None = None
    if allocatable and allocatable.get("memory") is not None:
        size = parse_quantity(allocatable["memory"]).value()
    for candidate in (pod_memory_limit(pod),
                      parse_quantity(size_limit).value() if size_limit is not None else None):
        if candidate is not None and candidate > 0 and (size is None or candidate <= size):
            size = candidate
    return size
