"""The pod status the agent reports, built from what the runtime holds.

Each container's entry comes from its latest attempt in the runtime (the one
before it is `lastState`), `restartCount` is that attempt's number, and
`ready`/`started` come from the probes. A container the worker could not
start (CrashLoopBackOff, CreateContainerError, ...) is reported Waiting with
that reason, as long as it is due to be started again; its last run then
moves to `lastState`. Containers the runtime knows nothing of are Waiting
(ContainerCreating, or PodInitializing while init containers run), unless
an earlier report already showed them terminated — that report stands.

The phase and the five conditions come from `kubi.node.status`, shared with
the simulated runtime. A phase, once Succeeded or Failed, never goes back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubi.api.meta import format_time
from kubi.node import status as st
from kubi.node.agent.actions import should_container_be_restarted
from kubi.node.agent.podruntime import PodRuntime
from kubi.node.runtime.base import CREATED, EXITED, RUNNING, ContainerStatus

# container status (runtime) -> bool: what the probe manager says.
ProbeView = Callable[[ContainerStatus], bool]


@dataclass
class WaitingReason:
    """Why the last attempt to start a container failed (upstream's reason cache)."""

    reason: str
    message: str = ""


def _always(_: ContainerStatus) -> bool:
    return True


def image_id(scheme: str, image: str) -> str:
    """A stable image reference for an image the node only records by name."""
    repo = image.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return f"{scheme}://{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def runtime_state(status: ContainerStatus, scheme: str) -> dict[str, Any]:
    """The API state of one runtime container."""
    if status.state == RUNNING:
        return st.running(format_time(status.started_at))
    if status.state == EXITED:
        code = status.exit_code if status.exit_code is not None else 0
        state = st.terminated(exit_code=code, started_at=format_time(status.started_at),
                              finished_at=format_time(status.finished_at),
                              container_id=f"{scheme}://{status.id}",
                              reason=status.reason or None)
        if status.message:
            state["terminated"]["message"] = status.message
        return state
    if status.state == CREATED:
        return st.waiting(st.CONTAINER_CREATING)
    return st.waiting(st.CONTAINER_CREATING)


@dataclass
class StatusInputs:
    """Everything besides the pod and the runtime that a status depends on."""

    host_ip: str
    scheme: str = "kubi-host"
    pod_ip: str = ""
    start_time: float | None = None
    terminal: bool = False
    reasons: dict[str, WaitingReason] | None = None
    started: ProbeView = _always
    ready: ProbeView = _always


def _entries(pod: dict[str, Any], runtime: PodRuntime, inputs: StatusInputs, *,
             init: bool) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    containers = spec.get("initContainers" if init else "containers") or []
    stored = (pod.get("status") or {}).get("initContainerStatuses" if init
                                             else "containerStatuses") or []
    old = {s.get("name"): s for s in stored}
    default = st.POD_INITIALIZING if spec.get("initContainers") else st.CONTAINER_CREATING
    reasons = inputs.reasons or {}
    out = []
    for c in containers:
        name = c.get("name", "")
        latest = runtime.latest(name)
        if latest is None:
            out.append(_without_runtime(c, old.get(name), default, reasons.get(name), pod,
                                        runtime))
            continue
        entry = _from_runtime(c, latest, runtime.previous(name), inputs, init=init)
        why = reasons.get(name)
        if why is not None and latest.state != RUNNING and \
                should_container_be_restarted(c, pod, runtime):
            if "terminated" in entry["state"]:
                entry["lastState"] = entry["state"]
            entry["state"] = st.waiting(why.reason, why.message)
        out.append(entry)
    return out


def _without_runtime(container: dict[str, Any], old: dict[str, Any] | None, default: str,
                     why: WaitingReason | None, pod: dict[str, Any],
                     runtime: PodRuntime) -> dict[str, Any]:
    if old is not None and "terminated" in (old.get("state") or {}):
        return old
    state = st.waiting(why.reason, why.message) if why is not None else st.waiting(default)
    entry = st.container_status(container, state,
                                restart_count=int((old or {}).get("restartCount") or 0),
                                last_state=(old or {}).get("lastState") or {})
    return entry


def _from_runtime(container: dict[str, Any], latest: ContainerStatus,
                  previous: ContainerStatus | None, inputs: StatusInputs, *,
                  init: bool) -> dict[str, Any]:
    state = runtime_state(latest, inputs.scheme)
    running = latest.state == RUNNING
    started = running and inputs.started(latest)
    if init and not st.is_restartable_init(container):
        ready = latest.state == EXITED and latest.exit_code == 0
    else:
        ready = started and inputs.ready(latest)
    last = runtime_state(previous, inputs.scheme) if previous is not None else {}
    entry = st.container_status(
        container, state, container_id=f"{inputs.scheme}://{latest.id}",
        image_id=image_id(inputs.scheme, latest.image or container.get("image", "")),
        ready=ready, started=started, restart_count=latest.attempt,
        last_state=last if last and "terminated" in last else {})
    return entry


def _initialized_before(pod: dict[str, Any], runtime: PodRuntime) -> bool:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if runtime.latest(c.get("name", "")) is not None:
            return True
    return False


def build_pod_status(pod: dict[str, Any], runtime: PodRuntime,
                     inputs: StatusInputs) -> dict[str, Any]:
    """The node-owned part of `pod`'s status; conditions without timestamps."""
    spec = pod.get("spec") or {}
    stored = pod.get("status") or {}
    inits = _entries(pod, runtime, inputs, init=True)
    mains = _entries(pod, runtime, inputs, init=False)
    phase = st.pod_phase(spec, inits, mains, terminal=inputs.terminal,
                         initialized_before=_initialized_before(pod, runtime))
    if stored.get("phase") in st.TERMINAL_PHASES:
        phase = stored["phase"]
    sandbox_ready = runtime.sandbox_ready and phase not in st.TERMINAL_PHASES
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": st.kubelet_conditions(spec, phase=phase, sandbox_ready=sandbox_ready,
                                            init_statuses=inits, statuses=mains,
                                            existing=stored.get("conditions") or []),
        "hostIP": inputs.host_ip,
        "hostIPs": [{"ip": inputs.host_ip}],
        "containerStatuses": mains,
    }
    if inits:
        status["initContainerStatuses"] = inits
    if inputs.start_time is not None:
        status["startTime"] = format_time(inputs.start_time)
    pod_ip = inputs.host_ip if spec.get("hostNetwork") else inputs.pod_ip
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status
