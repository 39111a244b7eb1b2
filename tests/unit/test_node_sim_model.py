"""The simulated pod model: container states and events over a hand-driven clock."""

from __future__ import annotations

import itertools
from typing import Any

from kubi.api.meta import format_time
from kubi.node import status as st
from kubi.node.sim.model import (
    EXIT_AFTER_ANNOTATION,
    EXIT_CODE_ANNOTATION,
    SimPod,
    image_id,
    restart_back_off,
)

T0 = 1_700_000_000.0


def pod(*containers: dict[str, Any], init: list[dict[str, Any]] | None = None,
        policy: str = "Always", annotations: dict[str, str] | None = None,
        host_network: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": "sim-node-0", "restartPolicy": policy,
                            "containers": list(containers) or [{"name": "web",
                                                                "image": "nginx:1.14.2"}]}
    if init:
        spec["initContainers"] = init
    if host_network:
        spec["hostNetwork"] = True
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "uid-1",
                         "annotations": annotations or {}},
            "spec": spec}


def make(p: dict[str, Any], *, start_delay: float = 1.0, **kw: Any) -> SimPod:
    ids = (f"sim://{i:064x}" for i in itertools.count(1))
    sim = SimPod(p, now=T0, host_ip="192.0.2.1", start_delay=start_delay,
                 new_id=lambda: next(ids), **kw)
    if not sim.host_network:
        sim.pod_ip = "10.42.100.2"
    return sim


def reasons(events: list) -> list[tuple[str, str]]:
    return [(e.reason, e.container) for e in events]


def entries(sim: SimPod) -> dict[str, dict[str, Any]]:
    status = sim.status()
    return {c["name"]: c for c in status.get("initContainerStatuses", []) +
            status["containerStatuses"]}


def test_admitted_pod_is_pending_with_container_creating() -> None:
    sim = make(pod())
    assert sim.advance(T0 + 0.5) == []
    status = sim.status()
    assert status["phase"] == "Pending"
    assert status["startTime"] == format_time(T0)
    assert status["hostIP"] == "192.0.2.1" and "podIP" not in status
    web = status["containerStatuses"][0]
    assert web["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert web["ready"] is False and web["started"] is False
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds[st.READY_TO_START_CONTAINERS] == "False"
    assert sim.next_due() == T0 + 1.0


def test_pod_runs_once_the_sandbox_is_up() -> None:
    sim = make(pod())
    events = sim.advance(T0 + 1.0)
    assert [e.message for e in events] == [
        'Container image "nginx:1.14.2" already present on machine',
        "Created container: web",
        "Started container web",
    ]
    status = sim.status()
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.42.100.2" and status["podIPs"] == [{"ip": "10.42.100.2"}]
    web = status["containerStatuses"][0]
    assert web["containerID"].startswith("sim://") and web["ready"] and web["started"]
    assert web["imageID"] == image_id("nginx:1.14.2")
    assert web["state"] == {"running": {"startedAt": format_time(T0 + 1.0)}}
    assert all(c["status"] == "True" for c in status["conditions"])
    assert sim.next_due() is None


def test_host_network_pods_use_the_node_address() -> None:
    sim = make(pod(host_network=True))
    sim.advance(T0 + 1)
    assert sim.status()["podIP"] == "192.0.2.1"


def test_without_an_address_the_sandbox_waits() -> None:
    sim = make(pod())
    sim.pod_ip = None
    assert sim.advance(T0 + 5) == [] and sim.next_due() is None
    assert sim.status()["phase"] == "Pending"


def test_init_containers_complete_before_the_app_starts() -> None:
    sim = make(pod(init=[{"name": "setup", "image": "busybox"},
                         {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]))
    before = entries(sim)
    assert before["setup"]["state"]["waiting"]["reason"] == "PodInitializing"
    assert before["web"]["state"]["waiting"]["reason"] == "PodInitializing"
    events = sim.advance(T0 + 1)
    assert [r for r in reasons(events) if r[0] == "Started"] == [
        ("Started", "setup"), ("Started", "proxy"), ("Started", "web")]
    after = entries(sim)
    assert after["setup"]["state"]["terminated"]["reason"] == "Completed"
    assert after["setup"]["ready"] is True and after["setup"]["started"] is False
    assert "running" in after["proxy"]["state"] and after["proxy"]["started"]
    assert sim.status()["phase"] == "Running"


def test_readiness_waits_for_the_probe_delay() -> None:
    probe = {"exec": {"command": ["true"]}, "initialDelaySeconds": 5}
    sim = make(pod({"name": "web", "image": "nginx", "readinessProbe": probe}))
    sim.advance(T0 + 1)
    assert entries(sim)["web"]["ready"] is False
    ready = {c["type"]: c for c in sim.status()["conditions"]}[st.READY]
    assert ready["message"] == "containers with unready status: [web]"
    assert sim.next_due() == T0 + 6
    sim.advance(T0 + 6)
    assert entries(sim)["web"]["ready"] is True


def test_startup_probe_gates_started_then_readiness() -> None:
    startup = {"exec": {"command": ["true"]}, "initialDelaySeconds": 2}
    readiness = {"exec": {"command": ["true"]}, "initialDelaySeconds": 3}
    sim = make(pod({"name": "web", "image": "nginx", "startupProbe": startup,
                    "readinessProbe": readiness}))
    sim.advance(T0 + 1)
    assert entries(sim)["web"]["started"] is False
    sim.advance(T0 + 3)
    assert entries(sim)["web"]["started"] is True and entries(sim)["web"]["ready"] is False
    assert sim.next_due() == T0 + 6
    sim.advance(T0 + 6)
    assert entries(sim)["web"]["ready"] is True


def test_probe_delay_hook_is_used() -> None:
    calls = []

    def delay(p: dict, c: dict, kind: str) -> float:
        calls.append((c["name"], kind))
        return 0.25

    sim = make(pod({"name": "web", "image": "nginx", "readinessProbe": {"tcpSocket": {
        "port": 80}}}), probe_delay=delay)
    sim.advance(T0 + 1)
    assert calls == [("web", "readiness")] and sim.next_due() == T0 + 1.25


def test_never_pod_exits_to_succeeded_or_failed() -> None:
    ok = make(pod(policy="Never", annotations={EXIT_AFTER_ANNOTATION: "3"}))
    ok.advance(T0 + 1)
    assert ok.next_due() == T0 + 4
    ok.advance(T0 + 4)
    status = ok.status()
    assert status["phase"] == "Succeeded" and ok.terminal
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert term["finishedAt"] == format_time(T0 + 4)
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds[st.READY]["reason"] == "PodCompleted"
    assert conds[st.READY_TO_START_CONTAINERS]["status"] == "False"

    bad = make(pod(policy="Never", annotations={EXIT_AFTER_ANNOTATION: "3",
                                                 EXIT_CODE_ANNOTATION: "2"}))
    bad.advance(T0 + 1)
    bad.advance(T0 + 4)
    assert bad.status()["phase"] == "Failed"
    assert bad.status()["containerStatuses"][0]["state"]["terminated"]["reason"] == "Error"


def test_on_failure_restarts_failed_containers_with_back_off() -> None:
    sim = make(pod(policy="OnFailure", annotations={EXIT_AFTER_ANNOTATION: "2",
                                                     EXIT_CODE_ANNOTATION: "1"}))
    sim.advance(T0 + 1)
    events = sim.advance(T0 + 3)  # first exit: restarted at once
    assert ("Started", "web") in reasons(events)
    web = entries(sim)["web"]
    assert web["restartCount"] == 1 and "running" in web["state"]
    assert web["lastState"]["terminated"]["exitCode"] == 1
    events = sim.advance(T0 + 5)  # second exit: back-off 10 s
    assert reasons(events) == [("BackOff", "web")] and events[0].type == "Warning"
    web = entries(sim)["web"]
    assert web["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert web["state"]["waiting"]["message"] == (
        "back-off 10s restarting failed container=web pod=p_ns(uid-1)")
    assert sim.status()["phase"] == "Running"
    assert sim.next_due() == T0 + 15
    sim.advance(T0 + 15)
    assert entries(sim)["web"]["restartCount"] == 2


def test_back_off_doubles_up_to_five_minutes() -> None:
    assert [restart_back_off(n) for n in range(7)] == [0, 10, 20, 40, 80, 160, 300]
    assert restart_back_off(20) == 300


def test_on_failure_pod_succeeds_on_exit_zero() -> None:
    sim = make(pod(policy="OnFailure", annotations={EXIT_AFTER_ANNOTATION: "1"}))
    sim.advance(T0 + 1)
    sim.advance(T0 + 2)
    assert sim.status()["phase"] == "Succeeded"


def test_graceful_deletion_stops_running_containers() -> None:
    sim = make(pod({"name": "a", "image": "x"}, {"name": "b", "image": "y"}))
    sim.advance(T0 + 1)
    events = sim.begin_kill(T0 + 10, delay=2)
    assert [(e.reason, e.message) for e in events] == [
        ("Killing", "Stopping container a"), ("Killing", "Stopping container b")]
    assert sim.begin_kill(T0 + 10) == []
    assert not sim.stopped and sim.next_due() == T0 + 12
    sim.advance(T0 + 12)
    assert sim.stopped
    status = sim.status()
    assert status["phase"] == "Succeeded"
    assert all("terminated" in c["state"] for c in status["containerStatuses"])


def test_deleting_a_pod_that_never_started_stops_at_once() -> None:
    sim = make(pod())
    assert sim.begin_kill(T0 + 0.2) == []
    sim.advance(T0 + 0.2)
    assert sim.stopped and not sim.sandbox_ready


def test_adopt_rebuilds_a_running_pod_from_its_status() -> None:
    original = make(pod({"name": "web", "image": "nginx", "readinessProbe": {
        "exec": {"command": ["true"]}, "initialDelaySeconds": 30}}))
    original.advance(T0 + 1)
    stored = pod({"name": "web", "image": "nginx", "readinessProbe": {
        "exec": {"command": ["true"]}, "initialDelaySeconds": 30}})
    stored["status"] = original.status()
    adopted = SimPod.adopt(stored, now=T0 + 10, host_ip="192.0.2.1")
    assert adopted is not None and adopted.sandbox_ready
    assert adopted.pod_ip == "10.42.100.2"
    assert adopted.status()["containerStatuses"] == original.status()["containerStatuses"]
    assert adopted.next_due() == T0 + 31


def test_adopt_declines_pods_it_never_started() -> None:
    stored = pod()
    stored["status"] = make(pod()).status()
    assert SimPod.adopt(stored, now=T0, host_ip="192.0.2.1") is None


def test_image_ids_are_marked_simulated() -> None:
    assert image_id("nginx:1.14.2").startswith("sim://nginx@sha256:")
    assert image_id("registry:5000/team/app").startswith("sim://registry:5000/team/app@sha256:")
    assert image_id("nginx:1.14.2") != image_id("nginx:1.15")
