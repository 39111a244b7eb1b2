"""What every pod worker shares: the node's runtime, writers, probes and settings.

One `NodeContext` per agent. Workers read the node's address and files,
write statuses through the shared `PodStatusManager`, record events through
the node's recorder (rate-limited like the kubelet's), keep back-off and
probes in shared managers, and ask the seams for what other issues provide:
the environment (`env`), volume mounts (`mounts`) and whether the pod
network is ready (`network_ready`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubi.controllers.events import EventRecorder
from kubi.node.agent.backoff import Backoff
from kubi.node.agent.containerconfig import EnvResolver
from kubi.node.agent.probes import ProbeManager
from kubi.node.runtime.base import Mount, Runtime
from kubi.node.sim.pods import EventBudget, container_field_path, pod_reference
from kubi.node.status_manager import PodStatusManager

# Volume mounts of one container (the volumes issue provides them); none by default.
MountSource = Callable[[dict[str, Any], dict[str, Any]], Awaitable[list[Mount]]]


async def no_mounts(pod: dict[str, Any], container: dict[str, Any]) -> list[Mount]:
    return []


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
    backoff: Backoff = field(default_factory=Backoff)
    mounts: MountSource = no_mounts
    network_ready: Callable[[], bool] = lambda: True
    node_hosts: Callable[[], str] = _empty
    node_resolv: Callable[[], str] = _empty
    event_budget: EventBudget = field(default_factory=EventBudget)
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
        self.recorder.broadcaster.submit(self.recorder.make_event(ref, kind, reason, message))


@dataclass
class RuntimeChoice:
    """The runtime serving one pod, by handler name."""

    handler: str
    runtime: Runtime
