"""Resource arithmetic for scheduling: what a pod asks for, what a node offers.

Quantities are parsed once into plain integers (cpu in millicores, everything
else in base units) so that the per-node checks of a scheduling cycle are
integer comparisons. A pod's request follows upstream's PodRequests: regular
containers add up, restartable (sidecar) init containers add up and stay,
each ordinary init container needs its own request plus the sidecars started
before it, the pod needs the largest of all that, and the RuntimeClass
overhead comes on top. Scoring uses "non-zero" requests, where a container
that states no cpu or memory request counts as 100m and 200Mi, so that pods
without requests still spread instead of piling onto one node.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubi.api.quantity import parse_quantity

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

# Upstream's defaults for containers that request nothing (scoring only).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

_NATIVE = {CPU, MEMORY, EPHEMERAL_STORAGE, PODS, "storage"}


def is_scalar_resource(name: str) -> bool:
    """Extended resources, hugepages and attachable volumes: counted like cpu, by name."""
    return (name not in _NATIVE and "/" in name and not name.startswith("requests.")) or \
        name.startswith(("hugepages-", "attachable-volumes-"))


def quantity_value(name: str, text: Any) -> int:
    """Millicores for cpu, whole units (rounded up) for everything else."""
    if isinstance(text, str):
        return _parsed(name == CPU, text)
    return _parse(name == CPU, text)


def _parse(milli: bool, text: Any) -> int:
    try:
        quantity = parse_quantity(text)
    except (ValueError, TypeError):
        return 0
    return quantity.milli_value() if milli else quantity.value()


# Pods of one template repeat the same few quantity strings thousands of times.
_parsed = functools.lru_cache(maxsize=4096)(_parse)


@dataclass(slots=True)
class Resources:
    """An amount of every schedulable resource, as integers."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    allowed_pods: int = 0
    scalars: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_list(cls, resource_list: Mapping[str, Any] | None) -> Resources:
        result = cls()
        for name, text in (resource_list or {}).items():
            result.add_one(name, quantity_value(name, text))
        return result

    def add_one(self, name: str, value: int) -> None:
        if name == CPU:
            self.milli_cpu += value
        elif name == MEMORY:
            self.memory += value
        elif name == EPHEMERAL_STORAGE:
            self.ephemeral_storage += value
        elif name == PODS:
            self.allowed_pods += value
        elif is_scalar_resource(name):
            self.scalars[name] = self.scalars.get(name, 0) + value

    def add(self, other: Resources, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for name, value in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + sign * value

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage or
                    any(self.scalars.values()))

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pods
        return self.scalars.get(name, 0)


def _container_requests(container: Mapping[str, Any],
                        missing: Mapping[str, int] | None) -> dict[str, int]:
    stated = ((container.get("resources") or {}).get("requests")) or {}
    requests = {name: quantity_value(name, text) for name, text in stated.items()}
    if missing:
        for name, value in missing.items():
            requests.setdefault(name, value)
    return requests


def _add_into(total: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


def _max_into(total: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > total.get(name, 0):
            total[name] = value


def pod_requests(spec: Mapping[str, Any], *,
                 missing: Mapping[str, int] | None = None) -> dict[str, int]:
    """The pod's effective request per resource name (upstream's PodRequests).

    `missing` fills in resources a container does not state at all, which is
    how the non-zero requests used for scoring are computed.
    """
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        _add_into(total, _container_requests(container, missing))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in spec.get("initContainers") or []:
        requests = _container_requests(container, missing)
        if container.get("restartPolicy") == "Always":
            # A sidecar keeps running next to the app containers, and next to
            # every init container that starts after it.
            _add_into(total, requests)
            _add_into(sidecars, requests)
            needed = dict(sidecars)
        else:
            needed = dict(requests)
            _add_into(needed, sidecars)
        _max_into(init_peak, needed)
    _max_into(total, init_peak)
    for name, text in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + quantity_value(name, text)
    return total


def requests_as_resources(requests: Mapping[str, int]) -> Resources:
    result = Resources()
    for name, value in requests.items():
        if name != PODS:
            result.add_one(name, value)
    return result


NON_ZERO_DEFAULTS = {CPU: DEFAULT_MILLI_CPU_REQUEST, MEMORY: DEFAULT_MEMORY_REQUEST}


def non_zero_requests(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(millicores, bytes) of the pod with upstream's defaults for unstated requests."""
    requests = pod_requests(spec, missing=NON_ZERO_DEFAULTS)
    return requests.get(CPU, 0), requests.get(MEMORY, 0)


def resource_names(resources: Iterable[str]) -> list[str]:
    return [name for name in resources if name in (CPU, MEMORY, EPHEMERAL_STORAGE)
            or is_scalar_resource(name)]
