"""What the simulated runtime believes about one pod, as a pure state machine.

`SimPod` holds each container's state (waiting, running, terminated) and the
moments at which something is due next: the sandbox comes up `start_delay`
after admission, a startup or readiness probe passes after its delay, a
container annotated to exit does so, a container being stopped finishes.
`advance(now)` applies everything due by `now` and returns the kubelet events
that happened; `status()` renders the pod status the kubelet would report. No
clock, no I/O: the caller drives time, so tests drive it by hand and a node
that was stopped catches up in one step when it resumes.

On a sandbox start every init container runs to completion (sidecars keep
running), then every app container starts. Exits come from annotations:
`kubi.dev/sim-exit-after: "<seconds>"` and `kubi.dev/sim-exit-code`; the
restart policy then decides between a restart and a terminal phase.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubi.api.meta import format_time, parse_time
from kubi.node import status as st

EXIT_AFTER_ANNOTATION = "kubi.dev/sim-exit-after"
EXIT_CODE_ANNOTATION = "kubi.dev/sim-exit-code"
CONTAINER_ID_SCHEME = "sim://"

WAITING, RUNNING, TERMINATED = "waiting", "running", "terminated"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
BACK_OFF_INITIAL = 10.0
BACK_OFF_MAX = 300.0

ProbeDelay = Callable[[dict[str, Any], dict[str, Any], str], float]


def default_probe_delay(pod: dict[str, Any], container: dict[str, Any], kind: str) -> float:
    """Simulated probes pass on their first try, after initialDelaySeconds."""
    probe = container.get(f"{kind}Probe")
    return float(probe.get("initialDelaySeconds") or 0) if probe else 0.0


def new_container_id() -> str:
    return CONTAINER_ID_SCHEME + secrets.token_hex(32)


def image_id(image: str) -> str:
    """A stable, recognisably simulated image reference: `sim://<repo>@sha256:<digest>`."""
    repo = image.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return f"{CONTAINER_ID_SCHEME}{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def restart_back_off(restart_count: int) -> float:
    """How long a container that exited waits before its next restart: the
    first restart is immediate, then 10 s doubling up to 5 min."""
    if restart_count <= 0:
        return 0.0
    return min(BACK_OFF_INITIAL * 2 ** (restart_count - 1), BACK_OFF_MAX)


def _int(text: Any, default: int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


@dataclass
class ContainerEvent:
    container: str
    init: bool
    reason: str
    message: str
    type: str = "Normal"


@dataclass
class SimContainer:
    spec: dict[str, Any]
    init: bool
    state: str = WAITING
    container_id: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    restart_count: int = 0
    last_state: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    ready: bool = False
    started_due: float | None = None
    ready_due: float | None = None
    exit_due: float | None = None
    restart_due: float | None = None
    waiting_reason: str = ""
    waiting_message: str = ""

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def sidecar(self) -> bool:
        return self.init and st.is_restartable_init(self.spec)

    def dues(self) -> list[float]:
        if self.state == WAITING and self.restart_due is not None:
            return [self.restart_due]
        if self.state != RUNNING:
            return []
        return [t for t in (self.started_due, self.ready_due, self.exit_due) if t is not None]

    def terminated_state(self) -> dict[str, Any]:
        return st.terminated(exit_code=self.exit_code, started_at=format_time(self.started_at),
                             finished_at=format_time(self.finished_at),
                             container_id=self.container_id)


class SimPod:
    def __init__(self, pod: dict[str, Any], *, now: float, host_ip: str,
                 start_delay: float = 0.0, probe_delay: ProbeDelay = default_probe_delay,
                 new_id: Callable[[], str] = new_container_id) -> None:
        md, spec = pod["metadata"], pod.get("spec") or {}
        self.pod = pod
        self.key = f"{md['namespace']}/{md['name']}"
        self.uid: str = md["uid"]
        self.spec = spec
        self.host_ip = host_ip
        self.host_network = bool(spec.get("hostNetwork"))
        self.pod_ip: str | None = host_ip if self.host_network else None
        self.admitted_at = now
        self.start_due = now + start_delay
        self.sandbox_ready = False
        self.deleting = False
        self.kill_due: float | None = None
        self.probe_delay = probe_delay
        self.new_id = new_id
        annotations = md.get("annotations") or {}
        self.exit_after = _float(annotations.get(EXIT_AFTER_ANNOTATION))
        self.exit_code = _int(annotations.get(EXIT_CODE_ANNOTATION), 0)
        self.containers = [SimContainer(c, True) for c in spec.get("initContainers") or []] + \
            [SimContainer(c, False) for c in spec.get("containers") or []]

    # ---- time

    def next_due(self) -> float | None:
        dues: list[float] = []
        if self.deleting:
            if self.kill_due is not None and self.running():
                dues.append(self.kill_due)
            return min(dues, default=None)
        if not self.sandbox_ready and self.pod_ip is not None:
            dues.append(self.start_due)
        for c in self.containers:
            dues.extend(c.dues())
        return min(dues, default=None)

    def advance(self, now: float) -> list[ContainerEvent]:
        events: list[ContainerEvent] = []
        if self.deleting:
            if self.kill_due is not None and now >= self.kill_due:
                for c in self.running():
                    self._terminate(c, now, 0)
            return events
        if not self.sandbox_ready:
            if self.pod_ip is None or now < self.start_due:
                return events
            self.sandbox_ready = True
            for c in self.containers:
                self._start(c, now, events)
                if c.init and not c.sidecar:
                    self._terminate(c, now, 0)
                    c.ready = True
        for c in self.running():
            self._probe(c, now)
            if c.exit_due is not None and now >= c.exit_due:
                self._terminate(c, now, self.exit_code)
                if self._restarts(c):
                    self._back_off(c, now, events)
        for c in self.containers:
            if c.state == WAITING and c.restart_due is not None and now >= c.restart_due:
                c.restart_count += 1
                self._start(c, now, events)
        return events

    def begin_kill(self, now: float, delay: float = 0.0) -> list[ContainerEvent]:
        """Graceful deletion: stop every running container; they are gone `delay` later."""
        if self.deleting:
            return []
        self.deleting = True
        self.kill_due = now + delay
        return [ContainerEvent(c.name, c.init, "Killing", f"Stopping container {c.name}")
                for c in sorted(self.running(), key=lambda c: c.init)]

    # ---- questions

    def running(self) -> list[SimContainer]:
        return [c for c in self.containers if c.state == RUNNING]

    @property
    def stopped(self) -> bool:
        """Deleting and nothing left running: the pod object may go."""
        return self.deleting and not self.running()

    @property
    def terminal(self) -> bool:
        return self.phase() in st.TERMINAL_PHASES

    # ---- transitions

    def _restarts(self, c: SimContainer) -> bool:
        if c.init:
            return c.sidecar
        policy = self.spec.get("restartPolicy") or "Always"
        return policy == "Always" or (policy == "OnFailure" and c.exit_code != 0)

    def _start(self, c: SimContainer, now: float, events: list[ContainerEvent]) -> None:
        image = c.spec.get("image", "")
        events.append(ContainerEvent(c.name, c.init, "Pulled",
                                     f'Container image "{image}" already present on machine'))
        events.append(ContainerEvent(c.name, c.init, "Created", f"Created container: {c.name}"))
        events.append(ContainerEvent(c.name, c.init, "Started", f"Started container {c.name}"))
        c.container_id = self.new_id()
        c.state, c.started_at, c.ready, c.started = RUNNING, now, False, False
        c.ready_due = c.started_due = c.restart_due = None
        c.waiting_reason = c.waiting_message = ""
        if c.init and not c.sidecar:
            return
        if c.spec.get("startupProbe"):
            c.started_due = now + self.probe_delay(self.pod, c.spec, "startup")
        else:
            self._mark_started(c, now)
        c.exit_due = now + self.exit_after if self.exit_after is not None and not c.init else None

    def _mark_started(self, c: SimContainer, at: float) -> None:
        c.started, c.started_due = True, None
        if c.spec.get("readinessProbe"):
            c.ready_due = at + self.probe_delay(self.pod, c.spec, "readiness")
        else:
            c.ready = True

    def _probe(self, c: SimContainer, now: float) -> None:
        if c.started_due is not None and now >= c.started_due:
            self._mark_started(c, c.started_due)
        if c.ready_due is not None and now >= c.ready_due:
            c.ready, c.ready_due = True, None

    def _back_off(self, c: SimContainer, now: float, events: list[ContainerEvent]) -> None:
        c.last_state = c.terminated_state()
        c.state = WAITING
        delay = restart_back_off(c.restart_count)
        c.restart_due = now + delay
        if delay > 0:
            md = self.pod["metadata"]
            c.waiting_reason = CRASH_LOOP_BACK_OFF
            c.waiting_message = (f"back-off {int(delay)}s restarting failed container={c.name} "
                                 f"pod={md['name']}_{md['namespace']}({self.uid})")
            events.append(ContainerEvent(
                c.name, c.init, "BackOff",
                f"Back-off restarting failed container {c.name} in pod "
                f"{md['name']}_{md['namespace']}({self.uid})", "Warning"))

    def _terminate(self, c: SimContainer, now: float, exit_code: int) -> None:
        c.state, c.finished_at, c.exit_code = TERMINATED, now, exit_code
        c.ready = c.started = False
        c.started_due = c.ready_due = c.exit_due = None

    # ---- the status

    def _entry(self, c: SimContainer) -> dict[str, Any]:
        if c.state == WAITING:
            reason = c.waiting_reason or (st.POD_INITIALIZING if self.spec.get("initContainers")
                                          else st.CONTAINER_CREATING)
            restarting = bool(c.last_state)
            return st.container_status(
                c.spec, st.waiting(reason, c.waiting_message),
                container_id=c.container_id if restarting else "",
                image_id=image_id(c.spec.get("image", "")) if restarting else "",
                restart_count=c.restart_count, last_state=c.last_state)
        state = (st.running(format_time(c.started_at)) if c.state == RUNNING
                 else c.terminated_state())
        return st.container_status(c.spec, state, container_id=c.container_id,
                                   image_id=image_id(c.spec.get("image", "")), ready=c.ready,
                                   started=c.started, restart_count=c.restart_count,
                                   last_state=c.last_state)

    def _entries(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return ([self._entry(c) for c in self.containers if c.init],
                [self._entry(c) for c in self.containers if not c.init])

    def phase(self) -> str:
        inits, mains = self._entries()
        return st.pod_phase(self.spec, inits, mains, terminal=self.deleting,
                            initialized_before=self.sandbox_ready)

    def status(self, existing_conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The node-owned part of the pod's status, conditions without timestamps."""
        inits, mains = self._entries()
        phase = st.pod_phase(self.spec, inits, mains, terminal=self.deleting,
                             initialized_before=self.sandbox_ready)
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": st.kubelet_conditions(
                self.spec, phase=phase,
                sandbox_ready=self.sandbox_ready and phase not in st.TERMINAL_PHASES,
                init_statuses=inits, statuses=mains, existing=existing_conditions or []),
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "startTime": format_time(self.admitted_at),
            "containerStatuses": mains,
        }
        if inits:
            status["initContainerStatuses"] = inits
        if self.sandbox_ready and self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        return status

    # ---- adoption after a restart

    @classmethod
    def adopt(cls, pod: dict[str, Any], *, now: float, host_ip: str,
              probe_delay: ProbeDelay = default_probe_delay,
              new_id: Callable[[], str] = new_container_id) -> SimPod | None:
        """Rebuild the model of a pod this runtime already started, from its status;
        None when the status shows no container of ours."""
        status = pod.get("status") or {}
        reported = {s.get("name"): s for s in (status.get("initContainerStatuses") or []) +
                    (status.get("containerStatuses") or [])}
        if not any(str(s.get("containerID", "")).startswith(CONTAINER_ID_SCHEME)
                   for s in reported.values()):
            return None
        sim = cls(pod, now=now, host_ip=host_ip, probe_delay=probe_delay, new_id=new_id)
        sim.admitted_at = parse_time(status.get("startTime")) or now
        sim.sandbox_ready = True
        sim.pod_ip = status.get("podIP") or sim.pod_ip
        for c in sim.containers:
            _restore(sim, c, reported.get(c.name) or {}, now)
        return sim


def _restore(sim: SimPod, c: SimContainer, reported: dict[str, Any], now: float) -> None:
    state = reported.get("state") or {}
    c.container_id = reported.get("containerID", "")
    c.restart_count = int(reported.get("restartCount") or 0)
    c.last_state = reported.get("lastState") or {}
    c.ready, c.started = bool(reported.get("ready")), bool(reported.get("started"))
    if "running" in state:
        c.state = RUNNING
        c.started_at = parse_time(state["running"].get("startedAt")) or now
        if not c.started and c.spec.get("startupProbe"):
            c.started_due = c.started_at + sim.probe_delay(sim.pod, c.spec, "startup")
        elif not c.ready and c.spec.get("readinessProbe"):
            c.ready_due = c.started_at + sim.probe_delay(sim.pod, c.spec, "readiness")
        if sim.exit_after is not None and not c.init:
            c.exit_due = c.started_at + sim.exit_after
    elif "waiting" in state and c.last_state.get("terminated"):
        c.state, c.restart_due = WAITING, now
    elif "terminated" in state:
        term = state["terminated"]
        c.state = TERMINATED
        c.exit_code = int(term.get("exitCode") or 0)
        c.started_at = parse_time(term.get("startedAt")) or now
        c.finished_at = parse_time(term.get("finishedAt")) or now
