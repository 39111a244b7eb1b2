"""Liveness, readiness and startup probes: a state machine and one task per probe.

`ProbeTracker` is the kubelet's prober worker arithmetic on plain data: a
result changes only after `failureThreshold` failures or `successThreshold`
successes in a row; readiness starts as Failure, liveness as Success, startup
as unknown. A liveness or startup failure puts the tracker on hold: the
container is restarted, and its successor gets fresh trackers.

`ProbeManager` runs one task per (container ID, probe kind). A task waits
`initialDelaySeconds` from the container's start, then probes every
`periodSeconds`; liveness and readiness wait until the container has started
(startup probe passed), and the startup probe stops once it has. Every failed
attempt records an `Unhealthy` event; a change of result wakes the pod's
worker, which restarts the container (liveness, startup) or reports the new
readiness.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from kubi.node.agent.handlers import ProbeError, Target, run_probe
from kubi.node.runtime.base import ContainerStatus, Runtime

log = logging.getLogger(__name__)

LIVENESS = "liveness"
READINESS = "readiness"
STARTUP = "startup"
KINDS = (STARTUP, LIVENESS, READINESS)

SUCCESS = "Success"
FAILURE = "Failure"

_INITIAL = {LIVENESS: SUCCESS, READINESS: FAILURE, STARTUP: None}


@dataclass
class ProbeTracker:
    kind: str
    success_threshold: int = 1
    failure_threshold: int = 3
    result: str | None = None
    last: str | None = None
    run: int = 0
    on_hold: bool = False

    @classmethod
    def for_probe(cls, kind: str, probe: dict[str, Any]) -> ProbeTracker:
        return cls(kind, success_threshold=max(1, int(probe.get("successThreshold") or 1)),
                   failure_threshold=max(1, int(probe.get("failureThreshold") or 3)),
                   result=_INITIAL[kind])

    def observe(self, passed: bool) -> bool:
        """Count one probe outcome; True when the result changed."""
        outcome = SUCCESS if passed else FAILURE
        if outcome == self.last:
            self.run += 1
        else:
            self.last, self.run = outcome, 1
        threshold = self.failure_threshold if outcome == FAILURE else self.success_threshold
        if self.run < threshold:
            return False
        changed = self.result != outcome
        self.result = outcome
        if self.kind in (LIVENESS, STARTUP) and outcome == FAILURE:
            self.on_hold = True
            self.run = 0
        return changed


def probe_title(kind: str) -> str:
    return kind.capitalize()


# Event sink: (pod, container name, type, reason, message).
Recorder = Callable[[dict[str, Any], str, str, str, str], None]


@dataclass
class _ContainerProbes:
    pod_key: str
    uid: str
    trackers: dict[str, ProbeTracker] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)


class ProbeManager:
    def __init__(self, runtime_for: Callable[[str], Runtime], *, record: Recorder,
                 on_change: Callable[[str], None], session: aiohttp.ClientSession | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime_for = runtime_for
        self.record = record
        self.on_change = on_change
        self.clock = clock
        self._session = session
        self._containers: dict[str, _ContainerProbes] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, ssl=False))
        return self._session

    # ---- what the worker asks

    def result(self, kind: str, container_id: str) -> str | None:
        probes = self._containers.get(container_id)
        tracker = probes.trackers.get(kind) if probes else None
        return tracker.result if tracker else None

    def started(self, status: ContainerStatus, container: dict[str, Any]) -> bool:
        if not container.get("startupProbe"):
            return True
        return self.result(STARTUP, status.id) == SUCCESS

    def ready(self, status: ContainerStatus, container: dict[str, Any]) -> bool:
        if not container.get("readinessProbe"):
            return True
        return self.result(READINESS, status.id) == SUCCESS

    # ---- lifecycle of the probe tasks

    def ensure(self, pod: dict[str, Any], container: dict[str, Any], status: ContainerStatus,
               pod_ip: str, pod_key: str, *, was_started: bool = False,
               was_ready: bool = False) -> None:
        """Start the probes of a running container, once.

        A container adopted after a restart of the agent keeps the started and
        ready states its last report showed, instead of flapping to unready
        until its probes pass again."""
        if status.id in self._containers:
            return
        probes = _ContainerProbes(pod_key, pod["metadata"].get("uid", ""))
        self._containers[status.id] = probes
        if not container.get("startupProbe") or was_started:
            probes.started.set()
        for kind in KINDS:
            spec = container.get(f"{kind}Probe")
            if not spec:
                continue
            tracker = probes.trackers[kind] = ProbeTracker.for_probe(kind, spec)
            if (kind == STARTUP and was_started) or (kind == READINESS and was_ready):
                tracker.result = tracker.last = SUCCESS
            if kind == STARTUP and was_started:
                continue
            target = Target(self.runtime_for(status.sandbox_id), status.id, container, pod_ip)
            probes.tasks.append(asyncio.create_task(
                self._run(pod, kind, spec, status, target, probes),
                name=f"probe-{kind}-{status.id[:12]}"))

    def forget(self, container_id: str) -> None:
        probes = self._containers.pop(container_id, None)
        if probes is not None:
            for task in probes.tasks:
                task.cancel()

    def stop_restarting_probes(self, uid: str) -> None:
        """A pod shutting down keeps its readiness probes but no longer restarts."""
        for probes in self._containers.values():
            if probes.uid != uid:
                continue
            for kind in (LIVENESS, STARTUP):
                tracker = probes.trackers.get(kind)
                if tracker is not None:
                    tracker.result, tracker.on_hold = SUCCESS, True

    def forget_pod(self, uid: str) -> None:
        for cid in [cid for cid, p in self._containers.items() if p.uid == uid]:
            self.forget(cid)

    def container_ids(self) -> set[str]:
        return set(self._containers)

    async def close(self) -> None:
        for cid in list(self._containers):
            self.forget(cid)
        if self._session is not None:
            await self._session.close()

    # ---- one probe's loop

    async def _run(self, pod: dict[str, Any], kind: str, spec: dict[str, Any],
                   status: ContainerStatus, target: Target, probes: _ContainerProbes) -> None:
        tracker = probes.trackers[kind]
        period = max(1.0, float(spec.get("periodSeconds") or 10))
        delay = status.started_at + float(spec.get("initialDelaySeconds") or 0) - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if kind != STARTUP:
            await probes.started.wait()
        name = target.container.get("name", "")
        while not tracker.on_hold:
            try:
                passed, output = await run_probe(spec, target, self.session)
            except ProbeError as exc:
                self.record(pod, name, "Warning", "Unhealthy",
                            f"{probe_title(kind)} probe errored: {exc}")
                await asyncio.sleep(period)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s probe of %s failed to run", kind, probes.pod_key)
                await asyncio.sleep(period)
                continue
            if not passed:
                self.record(pod, name, "Warning", "Unhealthy",
                            f"{probe_title(kind)} probe failed: {output}")
            if tracker.observe(passed):
                if kind == STARTUP and tracker.result == SUCCESS:
                    probes.started.set()
                self.on_change(probes.pod_key)
            if kind == STARTUP and probes.started.is_set():
                return
            await asyncio.sleep(period)
