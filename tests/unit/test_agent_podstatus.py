"""The reported pod status, from runtime state, waiting reasons and probes."""

from __future__ import annotations

from typing import Any

from kubi.node.agent.podruntime import PodRuntime
from kubi.node.agent.podstatus import StatusInputs, WaitingReason, build_pod_status
from kubi.node.runtime.base import (
    CREATED,
    EXITED,
    RUNNING,
    SANDBOX_READY,
    ContainerStatus,
    SandboxStatus,
)

T0 = 1_700_000_000.0


def pod(*names: str, restart: str = "Always", init: tuple[str, ...] = (),
        status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"restartPolicy": restart,
                     "containers": [{"name": n, "image": "img:1"} for n in names],
                     "initContainers": [{"name": n, "image": "img:1"} for n in init]},
            "status": status or {"phase": "Pending", "qosClass": "BestEffort"}}


def runtime(*containers: ContainerStatus, ready: bool = True) -> PodRuntime:
    sandboxes = [SandboxStatus(id="s", name="p", namespace="ns", uid="u",
                               state=SANDBOX_READY if ready else "SANDBOX_NOTREADY",
                               ip="10.42.0.9", created_at=T0)]
    return PodRuntime.collect("u", sandboxes, list(containers))


def ctr(name: str, state: str, *, attempt: int = 0, code: int | None = None,
        at: float = 0.0) -> ContainerStatus:
    return ContainerStatus(id=f"{name}{attempt}", sandbox_id="s", name=name, state=state,
                           attempt=attempt, image="img:1", created_at=T0 + at + attempt,
                           started_at=T0 + at + attempt, finished_at=T0 + at + attempt + 1,
                           exit_code=code)


def inputs(**kw: Any) -> StatusInputs:
    return StatusInputs(**{"host_ip": "192.0.2.1", "pod_ip": "10.42.0.9", "start_time": T0,
                           **kw})


def cond(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_pending_pod_waits_in_container_creating() -> None:
    status = build_pod_status(pod("a"), PodRuntime("u"), inputs(pod_ip=""))
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cond(status, "PodReadyToStartContainers")["status"] == "False"
    assert cond(status, "Ready")["message"] == "containers with unready status: [a]"
    assert "podIP" not in status
    assert status["hostIPs"] == [{"ip": "192.0.2.1"}]


def test_running_and_ready() -> None:
    status = build_pod_status(pod("a"), runtime(ctr("a", RUNNING)), inputs())
    assert status["phase"] == "Running"
    entry = status["containerStatuses"][0]
    assert entry["state"] == {"running": {"startedAt": "2023-11-14T22:13:20Z"}}
    assert entry["containerID"] == "kubi-host://a0"
    assert entry["ready"] and entry["started"]
    assert [c["status"] for c in status["conditions"]] == ["True"] * 5
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert status["podIPs"] == [{"ip": "10.42.0.9"}]
    assert status["startTime"] == "2023-11-14T22:13:20Z"


def test_unready_by_probe() -> None:
    status = build_pod_status(pod("a"), runtime(ctr("a", RUNNING)),
                              inputs(ready=lambda s: False))
    assert cond(status, "ContainersReady")["reason"] == "ContainersNotReady"
    assert status["containerStatuses"][0]["started"] is True


def test_crash_loop_shows_waiting_with_last_state() -> None:
    view = runtime(ctr("a", EXITED, attempt=0, code=1), ctr("a", EXITED, attempt=1, code=2))
    why = WaitingReason("CrashLoopBackOff", "back-off 10s restarting failed container=a pod=p")
    status = build_pod_status(pod("a"), view, inputs(reasons={"a": why}))
    entry = status["containerStatuses"][0]
    assert entry["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert entry["lastState"]["terminated"]["exitCode"] == 2
    assert entry["restartCount"] == 1
    assert entry["containerID"] == "kubi-host://a1"
    assert status["phase"] == "Running"


def test_previous_attempt_is_last_state_while_running() -> None:
    view = runtime(ctr("a", EXITED, attempt=0, code=137), ctr("a", RUNNING, attempt=1))
    entry = build_pod_status(pod("a"), view, inputs())["containerStatuses"][0]
    assert "running" in entry["state"]
    assert entry["lastState"]["terminated"]["exitCode"] == 137
    assert entry["lastState"]["terminated"]["reason"] == "Error"


def test_never_pod_terminal_phases() -> None:
    ok = build_pod_status(pod("a", restart="Never"), runtime(ctr("a", EXITED, code=0)), inputs())
    assert ok["phase"] == "Succeeded"
    assert cond(ok, "Ready")["reason"] == "PodCompleted"
    bad = build_pod_status(pod("a", restart="Never"), runtime(ctr("a", EXITED, code=3)), inputs())
    assert bad["phase"] == "Failed"
    assert bad["containerStatuses"][0]["state"]["terminated"]["reason"] == "Error"


def test_waiting_reason_not_shown_when_no_restart_is_due() -> None:
    why = WaitingReason("CrashLoopBackOff", "x")
    status = build_pod_status(pod("a", restart="Never"), runtime(ctr("a", EXITED, code=3)),
                              inputs(reasons={"a": why}))
    assert "terminated" in status["containerStatuses"][0]["state"]


def test_init_containers_pending_then_done() -> None:
    status = build_pod_status(pod("a", init=("i",)), runtime(ctr("i", RUNNING)), inputs())
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert cond(status, "Initialized")["message"] == "containers with incomplete status: [i]"
    done = build_pod_status(pod("a", init=("i",)),
                            runtime(ctr("i", EXITED, code=0), ctr("a", RUNNING, at=5)), inputs())
    assert done["phase"] == "Running"
    assert done["initContainerStatuses"][0]["ready"] is True


def test_terminal_phase_never_goes_back() -> None:
    stored = {"phase": "Succeeded", "qosClass": "BestEffort"}
    status = build_pod_status(pod("a", status=stored), runtime(ctr("a", CREATED)), inputs())
    assert status["phase"] == "Succeeded"


def test_deleted_pod_terminal_phase() -> None:
    view = runtime(ctr("a", EXITED, code=143), ready=False)
    status = build_pod_status(pod("a"), view, inputs(terminal=True))
    assert status["phase"] == "Failed"
    assert cond(status, "PodReadyToStartContainers")["status"] == "False"


def test_old_terminated_status_stands_without_runtime() -> None:
    old = {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
           "restartCount": 0, "ready": False, "image": "img:1", "imageID": "", "lastState": {}}
    stored = {"phase": "Running", "containerStatuses": [old]}
    status = build_pod_status(pod("a", status=stored), PodRuntime("u"), inputs())
    assert status["containerStatuses"][0] is old


def test_host_network_pod_ip_is_the_hosts() -> None:
    the_pod = pod("a")
    the_pod["spec"]["hostNetwork"] = True
    status = build_pod_status(the_pod, runtime(ctr("a", RUNNING)), inputs())
    assert status["podIP"] == "192.0.2.1"
