"""computePodActions on plain data: what to create, start and kill."""

from __future__ import annotations

from typing import Any

from kubi.node.agent.actions import compute_pod_actions, should_container_be_restarted
from kubi.node.agent.containerconfig import LABEL_CONTAINER_HASH, spec_hash
from kubi.node.agent.podruntime import PodRuntime
from kubi.node.runtime.base import (
    EXITED,
    RUNNING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    UNKNOWN,
    ContainerStatus,
    SandboxStatus,
)


def pod(*names: str, restart: str = "Always", init: tuple[str, ...] = (),
        sidecars: tuple[str, ...] = (), deleting: bool = False, **extra: Any) -> dict[str, Any]:
    containers = [{"name": n, "image": "i", "command": ["x"], **extra.get(n, {})} for n in names]
    inits = [{"name": n, "image": "i", "command": ["x"]} for n in init]
    inits += [{"name": n, "image": "i", "command": ["x"], "restartPolicy": "Always"}
              for n in sidecars]
    md: dict[str, Any] = {"name": "p", "namespace": "ns", "uid": "u"}
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": md, "spec": {"restartPolicy": restart, "containers": containers,
                                     "initContainers": inits}}


def sandbox(state: str = SANDBOX_READY, sid: str = "s1", at: float = 1.0) -> SandboxStatus:
    return SandboxStatus(id=sid, name="p", namespace="ns", uid="u", state=state, ip="10.42.0.2",
                         created_at=at)


_order = iter(range(1, 10_000))


def c(name: str, state: str = RUNNING, code: int | None = None, attempt: int = 0,
      cid: str | None = None, labels: dict[str, str] | None = None) -> ContainerStatus:
    return ContainerStatus(id=cid or f"{name}-{attempt}", sandbox_id="s1", name=name,
                           state=state, attempt=attempt, exit_code=code,
                           created_at=float(next(_order)), labels=labels or {})


def view(*containers: ContainerStatus, sandboxes: list[SandboxStatus] | None = None) -> PodRuntime:
    return PodRuntime.collect("u", [sandbox()] if sandboxes is None else sandboxes,
                              list(containers))


def test_new_pod_creates_a_sandbox_and_starts_everything() -> None:
    actions = compute_pod_actions(pod("a", "b"), view(sandboxes=[]))
    assert actions.create_sandbox and actions.kill_pod
    assert actions.containers_to_start == [0, 1]
    assert actions.attempt == 0


def test_new_pod_with_init_containers_starts_the_first_only() -> None:
    actions = compute_pod_actions(pod("a", init=("i1", "i2")), view(sandboxes=[]))
    assert actions.init_to_start == [0] and actions.containers_to_start == []


def test_dead_sandbox_is_recreated_unless_the_pod_never_restarts() -> None:
    dead = [sandbox(SANDBOX_NOTREADY)]
    actions = compute_pod_actions(pod("a"), view(c("a", EXITED, 0), sandboxes=dead))
    assert actions.create_sandbox and actions.attempt == 1 and actions.sandbox_id == "s1"
    actions = compute_pod_actions(pod("a", restart="Never"), view(c("a", EXITED, 0),
                                                                  sandboxes=dead))
    assert actions.kill_pod and not actions.create_sandbox


def test_running_containers_are_kept() -> None:
    actions = compute_pod_actions(pod("a"), view(c("a")))
    assert not actions.kill_pod and not actions.containers_to_start
    assert not actions.containers_to_kill


def test_restart_policies() -> None:
    exited_ok, exited_bad = c("a", EXITED, 0), c("a", EXITED, 1)
    assert compute_pod_actions(pod("a"), view(exited_ok)).containers_to_start == [0]
    assert compute_pod_actions(pod("a", restart="OnFailure"),
                               view(exited_bad)).containers_to_start == [0]
    done = compute_pod_actions(pod("a", restart="OnFailure"), view(exited_ok))
    assert done.kill_pod and not done.containers_to_start
    never = compute_pod_actions(pod("a", restart="Never"), view(exited_bad))
    assert never.kill_pod and not never.containers_to_start


def test_one_done_one_running_keeps_the_pod() -> None:
    actions = compute_pod_actions(pod("a", "b", restart="Never"),
                                  view(c("a", EXITED, 0), c("b")))
    assert not actions.kill_pod and not actions.containers_to_start


def test_liveness_failure_kills_and_restarts() -> None:
    actions = compute_pod_actions(pod("a"), view(c("a", cid="x")),
                                  liveness=lambda cid: "Failure" if cid == "x" else None)
    assert actions.containers_to_start == [0]
    assert actions.containers_to_kill["x"].message == \
        "Container a failed liveness probe, will be restarted"


def test_liveness_failure_under_never_kills_without_restart() -> None:
    actions = compute_pod_actions(pod("a", restart="Never"), view(c("a", cid="x")),
                                  liveness=lambda cid: "Failure")
    assert actions.containers_to_kill["x"].message == "Container a failed liveness probe"
    assert actions.kill_pod


def test_startup_failure_restarts() -> None:
    actions = compute_pod_actions(pod("a"), view(c("a", cid="x")),
                                  startup=lambda cid: "Failure")
    assert actions.containers_to_kill["x"].message == \
        "Container a failed startup probe, will be restarted"


def test_changed_spec_restarts_the_container() -> None:
    the_pod = pod("a")
    old = c("a", cid="x", labels={LABEL_CONTAINER_HASH: "00000000"})
    actions = compute_pod_actions(the_pod, view(old))
    assert actions.containers_to_kill["x"].message == \
        "Container a definition changed, will be restarted"
    same = c("a", cid="y", labels={LABEL_CONTAINER_HASH: spec_hash(the_pod["spec"]["containers"][0])})
    assert not compute_pod_actions(the_pod, view(same)).containers_to_kill


def test_unknown_state_is_killed_before_restart() -> None:
    actions = compute_pod_actions(pod("a"), view(c("a", UNKNOWN, cid="x")))
    assert actions.containers_to_start == [0] and "x" in actions.containers_to_kill


def test_init_progression() -> None:
    spec = pod("a", init=("i1", "i2"))
    assert compute_pod_actions(spec, view(c("i1"))).init_to_start == []
    step = compute_pod_actions(spec, view(c("i1", EXITED, 0)))
    assert step.init_to_start == [1] and not step.containers_to_start
    done = compute_pod_actions(spec, view(c("i1", EXITED, 0), c("i2", EXITED, 0)))
    assert done.init_to_start == [] and done.containers_to_start == [0]


def test_failed_init_retries_or_fails_the_pod() -> None:
    failed = view(c("i1", EXITED, 1))
    assert compute_pod_actions(pod("a", init=("i1",)), failed).init_to_start == [0]
    never = compute_pod_actions(pod("a", init=("i1",), restart="Never"), failed)
    assert never.kill_pod and never.init_to_start == []


def test_init_containers_are_not_rerun_once_the_pod_initialized() -> None:
    actions = compute_pod_actions(pod("a", init=("i1",)), view(c("a")))
    assert actions.init_to_start == [] and not actions.kill_pod


def test_sidecar_starts_next_and_restarts_when_exited() -> None:
    spec = pod("a", sidecars=("proxy",))
    running = compute_pod_actions(spec, view(c("proxy")))
    assert running.containers_to_start == [0]
    exited = compute_pod_actions(spec, view(c("proxy", EXITED, 1), c("a")))
    assert exited.init_to_start == [0]


def test_deleting_pods_are_not_restarted() -> None:
    assert not should_container_be_restarted(
        {"name": "a"}, pod("a", deleting=True), view(c("a", EXITED, 1)))
