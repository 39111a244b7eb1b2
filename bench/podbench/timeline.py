"""Each pod's way from its create request to Running and Ready, seen on one watch.

`Timeline` records, per pod, when the create request was sent and when the
watch first showed it bound by the scheduler (spec.nodeName) and Running and
Ready. `Watcher` follows the
namespace's pods from a resourceVersion taken before the creates, so no event
is missed however late the stream opens, and stamps events as they arrive.
`stages` turns the records into the per-stage durations the report prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from kubi.client.client import Client, Resource

PODS = Resource("", "v1", "pods", True, "Pod")


@dataclass
class PodTimes:
    sent: float = 0.0
    bound: float | None = None
    ready: float | None = None
    deleted: float | None = None


def running_and_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or [])


@dataclass
class Timeline:
    pods: dict[str, PodTimes] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def times(self, name: str) -> PodTimes:
        return self.pods.setdefault(name, PodTimes())

    def observe(self, kind: str, pod: dict[str, Any], at: float) -> None:
        times = self.times(pod["metadata"]["name"])
        if kind == "DELETED":
            times.deleted = times.deleted or at
        else:
            if times.bound is None and (pod.get("spec") or {}).get("nodeName"):
                times.bound = at
            if times.ready is None and running_and_ready(pod):
                times.ready = at
        self.changed.set()

    async def wait(self, names: list[str], what: str, timeout: float) -> None:
        """Until every pod in `names` is ready (what="ready") or deleted."""
        deadline = time.perf_counter() + timeout
        while not all(getattr(self.times(n), what) is not None for n in names):
            self.changed.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                missing = [n for n in names if getattr(self.times(n), what) is None]
                raise TimeoutError(f"{len(missing)} pods not {what} after {timeout:g}s: "
                                   f"{missing[:5]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


class Watcher:
    def __init__(self, client: Client, namespace: str, timeline: Timeline) -> None:
        self.client = client
        self.namespace = namespace
        self.timeline = timeline
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.client.list(PODS, self.namespace)
        version = listed["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._follow(version))

    async def _follow(self, version: str) -> None:
        async for kind, obj in self.client.watch(PODS, self.namespace, resource_version=version):
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.timeline.observe(kind, obj, time.perf_counter())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def stages(records: list[PodTimes]) -> dict[str, list[float]]:
    """Seconds spent in each stage, one value per pod that went through it.

    The agent writes a pod's status once its containers run, so its first
    status already says Running: what follows the binding is the agent's and
    the runtime's part as a whole.
    """
    spans: dict[str, list[float]] = {"create -> bound (API, scheduler)": [],
                                     "bound -> Running and Ready (agent, runtime)": [],
                                     "create -> Running and Ready": []}
    for r in records:
        if r.ready is None:
            continue
        spans["create -> Running and Ready"].append(r.ready - r.sent)
        if r.bound is not None:
            spans["create -> bound (API, scheduler)"].append(r.bound - r.sent)
            spans["bound -> Running and Ready (agent, runtime)"].append(r.ready - r.bound)
    return spans
