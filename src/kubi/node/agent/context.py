"""What every pod worker shares: the node's runtime, writers, probes and settings.

One `NodeContext` per agent. Workers read the node's address and files,
write statuses through the shared `PodStatusManager`, record events through
the node's recorder (rate-limited like the kubelet's, and held back while
pods start: controllers/eventhold.py), keep back-off and probes in shared
managers, and ask the seams for what other issues provide: the environment
(`env`), the volumes (`volumes`) and whether the pod network is ready
(`network_ready`).
Container logs live under `log_root` (`<ns>_<name>_<uid>/<container>/
<attempt>.log`, as /var/log/pods), the files the agent keeps per pod under
`pod_root/<uid>` (as /var/lib/kubelet/pods).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kubi.controllers.eventhold import EventHold
from kubi.controllers.events import EventRecorder
from kubi.node.agent.backoff import Backoff
from kubi.node.agent.containerconfig import EnvResolver
from kubi.node.agent.probes import ProbeManager
from kubi.node.runtime.base import Mount
from kubi.node.sim.pods import EventBudget, container_field_path, pod_reference
from kubi.node.status_manager import PodStatusManager


class PodVolumes(Protocol):
    """The seam to the node's volume plugins (`kubi.node.volumes`).

    `setup` makes every volume of the pod ready under `pod_dir` before its
    containers start (idempotent, called on each sync); a failure raises an
    exception, best one with an `event_message` (FailedMount; an empty one
    when the failure was already reported), and the pod waits in
    ContainerCreating. `mounts` turns a container's volumeMounts into
    runtime mounts (its resolved `env` expands subPathExpr); a failure raises an
    exception with a `reason` (CreateContainerConfigError). `teardown` undoes
    `setup` when the pod goes."""

    async def setup(self, pod: dict[str, Any], pod_dir: Path) -> None: ...

    async def mounts(self, pod: dict[str, Any], container: dict[str, Any],
                     env: Mapping[str, str], pod_dir: Path) -> list[Mount]: ...

    async def teardown(self, pod: dict[str, Any], pod_dir: Path) -> None: ...


@dataclass
class PodHooks:
    """What a volume service may ask of the agent once it runs.

    `pods()` are the pods the node works on (newest copies), `pod_root/<uid>`
    where their files live; `wake(uid)` makes a pod's worker sync now,
    `evict(uid, message)` ends a pod as the eviction manager does, `event`
    records an event about a pod (arguments as `NodeContext.event`), and
    `allocatable` is the node's allocatable resources."""

    pods: Callable[[], list[dict[str, Any]]]
    pod_root: Path
    wake: Callable[[str], None]
    evict: Callable[[str, str], None]
    event: Callable[[dict[str, Any], str, str, str, str], None]
    allocatable: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class VolumeService(PodVolumes, Protocol):
    """Volumes that also work between syncs (refreshing content, watching
    usage): started once the agent knows its pods, stopped with it; `drain`
    says every pod has been removed from the machine."""

    async def start(self, hooks: PodHooks) -> None: ...

    async def stop(self, *, drain: bool = False) -> None: ...


class NoVolumes:
    """A node without volume support: pods with volumes get no mounts."""

    async def setup(self, pod: dict[str, Any], pod_dir: Path) -> None:
        return None

    async def mounts(self, pod: dict[str, Any], container: dict[str, Any],
                     env: Mapping[str, str], pod_dir: Path) -> list[Mount]:
        return []

    async def teardown(self, pod: dict[str, Any], pod_dir: Path) -> None:
        return None


def _empty() -> str:
    return ""


@dataclass
class NodeContext:
    node_name: str
    host_ip: str
    statuses: PodStatusManager
    recorder: EventRecorder
    probes: ProbeManager
    env: EnvResolver
    log_root: Path
    pod_root: Path
    backoff: Backoff = field(default_factory=Backoff)
    volumes: PodVolumes = field(default_factory=NoVolumes)
    network_ready: Callable[[], bool] = lambda: True
    node_hosts: Callable[[], str] = _empty
    node_resolv: Callable[[], str] = _empty
    event_budget: EventBudget = field(default_factory=EventBudget)
    # Where events wait while pods start (controllers/eventhold.py); without one they go at once.
    event_hold: EventHold | None = None
    scheme: str = "kubi-host"
    clock: Callable[[], float] = time.time
    # Seconds between retries of a start that failed for a reason other than back-off.
    retry_delay: float = 5.0

    def event(self, pod: dict[str, Any], container: str, kind: str, reason: str,
              message: str) -> None:
        """Record an event about `pod`, or about one of its containers when named."""
        if not self.event_budget.take():
            return
        path = ""
        if container:
            inits = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []}
            path = container_field_path(container, container in inits)
        ref = pod_reference(pod, path)
        event = self.recorder.make_event(ref, kind, reason, message)
        if self.event_hold is not None:
            self.event_hold.add(event)
        else:
            self.recorder.broadcaster.submit(event)
