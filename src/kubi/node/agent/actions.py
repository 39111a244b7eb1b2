"""What a pod worker must do next: the kubelet's computePodActions, on plain data.

Given the pod and what the runtime holds for it, decide whether the sandbox
must be (re)created, which init containers and containers to start, and which
containers to kill (with the message the Killing event carries). The rules:

- no ready sandbox: create one and start from the first init container (or
  every container), unless a pod that never restarts already ran;
- init containers run one at a time, in order; a failed one is retried unless
  the restart policy is Never, which ends the pod; sidecars (init containers
  with restartPolicy Always) start in order and keep running;
- a stopped container starts again when the restart policy allows it
  (`should_container_be_restarted`); a running one is killed when its spec
  changed or it failed its liveness or startup probe;
- nothing running and nothing to start: the pod is done (`kill_pod`).

Pure functions; the worker executes the result, and back-off is applied there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubi.node.agent.containerconfig import LABEL_CONTAINER_HASH, spec_hash
from kubi.node.agent.podruntime import PodRuntime
from kubi.node.runtime.base import CREATED, EXITED, RUNNING, UNKNOWN, ContainerStatus

# Why a container is killed; probe kills may use the probe's own grace period.
KILL_LIVENESS = "liveness"
KILL_STARTUP = "startup"
KILL_UNKNOWN = "unknown"

SUCCESS = "Success"
FAILURE = "Failure"

# container id -> the probe's current result ("Success", "Failure"), or None before any.
ProbeLookup = Callable[[str], str | None]


@dataclass
class KillInfo:
    container_id: str
    name: str
    message: str = ""
    reason: str = ""


@dataclass
class PodActions:
    kill_pod: bool = False
    create_sandbox: bool = False
    sandbox_id: str = ""
    attempt: int = 0
    init_to_start: list[int] = field(default_factory=list)
    containers_to_start: list[int] = field(default_factory=list)
    containers_to_kill: dict[str, KillInfo] = field(default_factory=dict)


def _no_result(container_id: str) -> str | None:
    return None


def is_sidecar(container: dict[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def restart_policy(pod: dict[str, Any]) -> str:
    return (pod.get("spec") or {}).get("restartPolicy") or "Always"


def should_restart_on_failure(pod: dict[str, Any]) -> bool:
    return restart_policy(pod) != "Never"


def should_container_be_restarted(container: dict[str, Any], pod: dict[str, Any],
                                  runtime: PodRuntime) -> bool:
    """Whether a container that is not running should be started (again)."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    status = runtime.latest(container.get("name", ""))
    if status is None:
        return True
    if status.state == RUNNING:
        return False
    if status.state in (UNKNOWN, CREATED):
        return True
    policy = restart_policy(pod)
    if policy == "Never":
        return False
    return not (policy == "OnFailure" and status.exit_code == 0)


def init_failed(status: ContainerStatus) -> bool:
    if status.state == EXITED and status.exit_code not in (0, None):
        return True
    return status.state == UNKNOWN


def container_changed(container: dict[str, Any], status: ContainerStatus) -> bool:
    recorded = status.labels.get(LABEL_CONTAINER_HASH)
    return recorded is not None and recorded != spec_hash(container)


def sandbox_changed(runtime: PodRuntime) -> tuple[bool, int, str]:
    """(must create, attempt number, current sandbox id), as PodSandboxChanged."""
    if not runtime.sandboxes:
        return True, 0, ""
    newest = runtime.sandboxes[0]
    ready = [s for s in runtime.sandboxes if s.state == "SANDBOX_READY"]
    attempt = len(runtime.sandboxes)
    if len(ready) > 1 or not runtime.sandbox_ready:
        return True, attempt, newest.id
    return False, attempt - 1, newest.id


def _container_succeeded(container: dict[str, Any], runtime: PodRuntime) -> bool:
    status = runtime.latest(container.get("name", ""))
    return status is not None and status.state == EXITED and status.exit_code == 0


def _pod_initialized_by_containers(pod: dict[str, Any], runtime: PodRuntime) -> bool:
    """A regular container exists (created or running): init already completed once."""
    return any(runtime.has_created(c.get("name", ""))
               for c in (pod.get("spec") or {}).get("containers") or [])


def _init_actions(pod: dict[str, Any], runtime: PodRuntime, actions: PodActions, *,
                  liveness: ProbeLookup, startup: ProbeLookup) -> bool:
    """Fill in the init container actions; True once the pod is initialized.

    The scan runs from the last init container backwards, so that the newest
    evidence of progress wins even if older init containers were removed; once
    one is found, only sidecars before it still need attention."""
    inits = (pod.get("spec") or {}).get("initContainers") or []
    if not inits:
        return True
    state = _InitScan(pod, runtime, actions, liveness, startup)
    for i in range(len(inits) - 1, -1, -1):
        if not state.visit(i, inits[i]):
            return False
    if not state.previously:
        state.to_start.append(0)
    actions.init_to_start = sorted(set(state.to_start))
    return state.initialized


class _InitScan:
    def __init__(self, pod: dict[str, Any], runtime: PodRuntime, actions: PodActions,
                 liveness: ProbeLookup, startup: ProbeLookup) -> None:
        self.runtime = runtime
        self.actions = actions
        self.liveness = liveness
        self.startup = startup
        self.last = len((pod.get("spec") or {}).get("initContainers") or []) - 1
        self.restart_on_failure = should_restart_on_failure(pod)
        self.initialized = _pod_initialized_by_containers(pod, runtime)
        self.previously = self.initialized
        self.to_start: list[int] = []

    def _kill(self, status: ContainerStatus, message: str, reason: str) -> None:
        self.actions.containers_to_kill[status.id] = KillInfo(status.id, status.name,
                                                              message, reason)

    def _fail_pod(self) -> bool:
        self.actions.kill_pod = True
        self.actions.init_to_start = []
        return False

    def visit(self, i: int, c: dict[str, Any]) -> bool:
        """Look at init container `i`; False when the pod has failed for good."""
        status = self.runtime.latest(c.get("name", ""))
        if status is None:
            if self.previously and is_sidecar(c):
                self.to_start.append(i)
            return True
        if self.previously and not is_sidecar(c):
            return True
        if status.state == CREATED:
            self.to_start.append(i)
        elif status.state == RUNNING:
            if is_sidecar(c):
                self._running_sidecar(i, c, status)
        elif status.state == EXITED:
            if is_sidecar(c):
                self.to_start.append(i)
            elif init_failed(status):
                if not self.restart_on_failure:
                    return self._fail_pod()
                self.to_start.append(i)
            elif i == self.last:
                self.initialized = True
            else:
                self.to_start.append(i + 1)
        else:
            if not is_sidecar(c) and not self.restart_on_failure:
                return self._fail_pod()
            self._kill(status, f'Init container is in "{status.state}" state, try killing '
                       "it before restart", KILL_UNKNOWN)
            self.to_start.append(i)
        self.previously = True
        return True

    def _running_sidecar(self, i: int, c: dict[str, Any], status: ContainerStatus) -> None:
        name = c.get("name", "")
        if c.get("startupProbe"):
            result = self.startup(status.id)
            if result != SUCCESS:
                if result == FAILURE:
                    self._kill(status, f"Init container {name} failed startup probe",
                               KILL_STARTUP)
                    self.to_start.append(i)
                return
        if i == self.last:
            self.initialized = True
        elif not self.previously:
            self.to_start.append(i + 1)
        if c.get("livenessProbe") and self.liveness(status.id) == FAILURE:
            self._kill(status, f"Init container {name} failed liveness probe", KILL_LIVENESS)
            self.to_start.append(i)


def compute_pod_actions(pod: dict[str, Any], runtime: PodRuntime, *,
                        liveness: ProbeLookup = _no_result,
                        startup: ProbeLookup = _no_result) -> PodActions:
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    create, attempt, sandbox_id = sandbox_changed(runtime)
    actions = PodActions(kill_pod=create, create_sandbox=create, sandbox_id=sandbox_id,
                         attempt=attempt)
    if create:
        if not should_restart_on_failure(pod) and attempt != 0 and runtime.containers:
            # A pod that never restarts has run already: do not bring it back.
            actions.create_sandbox = False
            return actions
        to_start = [i for i, c in enumerate(containers)
                    if not (restart_policy(pod) == "OnFailure" and
                            _container_succeeded(c, runtime))]
        if not to_start and _init_done(pod, runtime):
            actions.create_sandbox = False
            return actions
        if spec.get("initContainers"):
            actions.init_to_start = [0]
        else:
            actions.containers_to_start = to_start
        return actions

    initialized = _init_actions(pod, runtime, actions, liveness=liveness, startup=startup)
    if actions.kill_pod or not initialized:
        return actions

    keep = 0
    for idx, c in enumerate(containers):
        name = c.get("name", "")
        status = runtime.latest(name)
        if status is None or status.state != RUNNING:
            if should_container_be_restarted(c, pod, runtime):
                actions.containers_to_start.append(idx)
                if status is not None and status.state == UNKNOWN:
                    actions.containers_to_kill[status.id] = KillInfo(
                        status.id, name,
                        f'Container is in "{status.state}" state, try killing it before restart',
                        KILL_UNKNOWN)
            continue
        restart = should_restart_on_failure(pod)
        if container_changed(c, status):
            message, reason, restart = f"Container {name} definition changed", "", True
        elif liveness(status.id) == FAILURE:
            message, reason = f"Container {name} failed liveness probe", KILL_LIVENESS
        elif startup(status.id) == FAILURE:
            message, reason = f"Container {name} failed startup probe", KILL_STARTUP
        else:
            keep += 1
            continue
        if restart:
            message += ", will be restarted"
            actions.containers_to_start.append(idx)
        actions.containers_to_kill[status.id] = KillInfo(status.id, name, message, reason)

    if keep == 0 and not actions.containers_to_start:
        actions.kill_pod = True
        actions.init_to_start = []
    return actions


def _init_done(pod: dict[str, Any], runtime: PodRuntime) -> bool:
    """Every (non-sidecar) init container has completed successfully."""
    for c in (pod.get("spec") or {}).get("initContainers") or []:
        if is_sidecar(c):
            continue
        status = runtime.latest(c.get("name", ""))
        if status is None or status.state != EXITED or status.exit_code != 0:
            return False
    return True
