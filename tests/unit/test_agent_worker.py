"""The pod worker against the in-memory runtime: starts, restarts, probes, termination."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kubi.node.agent.backoff import Backoff
from kubi.node.agent.context import NodeContext
from kubi.node.agent.probes import ProbeManager
from kubi.node.agent.worker import PodWorker
from kubi.node.runtime.base import EXITED, RUNNING, SANDBOX_NOTREADY, Mount
from tests.unit.test_agent_fakes import FakeRuntime


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeStatuses:
    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.deleted: list[tuple[str, str]] = []

    def set_status(self, key: str, uid: str, status: dict[str, Any]) -> None:
        self.latest[key] = status

    def delete_pod(self, key: str, uid: str) -> None:
        self.deleted.append((key, uid))


class FakeBroadcaster:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def submit(self, event: dict[str, Any]) -> None:
        self.events.append(event)


class FakeRecorder:
    def __init__(self) -> None:
        self.broadcaster = FakeBroadcaster()

    def make_event(self, ref: dict[str, str], kind: str, reason: str,
                   message: str) -> dict[str, Any]:
        return {"involvedObject": ref, "type": kind, "reason": reason, "message": message}


async def literal_env(pod: dict[str, Any], container: dict[str, Any], pod_ip: str,
                      host_ip: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}, []


@pytest.fixture
async def setup(tmp_path: Path) -> Any:
    clock = Clock()
    runtime = FakeRuntime(clock=clock)
    statuses = FakeStatuses()
    recorder = FakeRecorder()
    woken: list[str] = []
    probes = ProbeManager(lambda sid: runtime, record=lambda *a: recorder.broadcaster.submit(
        {"type": a[2], "reason": a[3], "message": a[4]}), on_change=woken.append)
    ctx = NodeContext(node_name="n1", host_ip="192.0.2.1", statuses=statuses,  # type: ignore[arg-type]
                      recorder=recorder, probes=probes, env=literal_env,  # type: ignore[arg-type]
                      log_root=tmp_path / "logs", pod_root=tmp_path / "pods",
                      backoff=Backoff(clock=clock), clock=clock)
    yield ctx, runtime, statuses, recorder, clock
    await probes.close()


def make_pod(*containers: dict[str, Any], restart: str = "Always", uid: str = "uid-1",
             init: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"nodeName": "n1", "restartPolicy": restart,
                            "terminationGracePeriodSeconds": 30,
                            "containers": list(containers), **spec}
    if init:
        body["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": uid,
                         "resourceVersion": "1"},
            "spec": body, "status": {"phase": "Pending", "qosClass": "BestEffort"}}


def cont(name: str = "c", *argv: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "command": list(argv or ("run",)), **extra}


def reasons(recorder: FakeRecorder) -> list[str]:
    return [e["reason"] for e in recorder.broadcaster.events]


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


async def test_pod_starts_and_reports_running_ready(setup: Any) -> None:
    ctx, runtime, statuses, recorder, _ = setup
    worker = PodWorker(ctx, runtime, make_pod(cont("web", "run")))
    await worker.sync()
    status = statuses.latest["default/p"]
    assert status["phase"] == "Running"
    assert status["podIP"].startswith("10.42.0.")
    [entry] = status["containerStatuses"]
    assert "running" in entry["state"] and entry["ready"] and entry["started"]
    assert entry["containerID"] == f"kubi-host://{runtime.running('web')[0].id}"
    assert entry["imageID"].startswith("kubi-host://busybox@sha256:")
    assert condition(status, "Ready")["status"] == "True"
    assert reasons(recorder) == ["Pulled", "Created", "Started"]
    assert recorder.broadcaster.events[0]["message"] == \
        'Container image "busybox" already present on machine'
    assert recorder.broadcaster.events[1]["message"] == "Created container: web"
    assert recorder.broadcaster.events[0]["involvedObject"]["fieldPath"] == "spec.containers{web}"


async def test_never_pod_succeeds_and_stops_its_sandbox(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    worker = PodWorker(ctx, runtime, make_pod(cont("job", "exit", "0"), restart="Never"))
    await worker.sync()
    await asyncio.sleep(0.01)
    await worker.sync()
    status = statuses.latest["default/p"]
    assert status["phase"] == "Succeeded"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert condition(status, "Ready")["reason"] == "PodCompleted"
    assert condition(status, "PodReadyToStartContainers")["status"] == "False"
    assert all(s.status.state == SANDBOX_NOTREADY for s in runtime.sandboxes.values())
    await worker.sync()
    assert len(runtime.by_name("job")) == 1  # never started again


async def test_never_pod_failing_is_failed(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    worker = PodWorker(ctx, runtime, make_pod(cont("job", "exit", "3"), restart="Never"))
    await worker.sync()
    await asyncio.sleep(0.01)
    await worker.sync()
    status = statuses.latest["default/p"]
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


async def test_crash_loop_back_off(setup: Any) -> None:
    ctx, runtime, statuses, recorder, clock = setup
    worker = PodWorker(ctx, runtime, make_pod(cont("c", "exit", "1")))
    await worker.sync()
    await asyncio.sleep(0.01)
    # The first exit restarts at once.
    await worker.sync()
    assert [s.attempt for s in runtime.by_name("c")] == [0, 1]
    await asyncio.sleep(0.01)
    due = await worker.sync()
    entry = statuses.latest["default/p"]["containerStatuses"][0]
    assert entry["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert entry["state"]["waiting"]["message"] == \
        "back-off 10s restarting failed container=c pod=p_default(uid-1)"
    assert entry["restartCount"] == 1
    assert entry["lastState"]["terminated"]["exitCode"] == 1
    assert statuses.latest["default/p"]["phase"] == "Running"
    assert due == pytest.approx(clock.now + 10)
    assert "BackOff" in reasons(recorder)
    backoff_event = next(e for e in recorder.broadcaster.events if e["reason"] == "BackOff")
    assert backoff_event["message"] == \
        "Back-off restarting failed container c in pod p_default(uid-1)"
    clock.now += 10
    await worker.sync()
    assert [s.attempt for s in runtime.by_name("c")][-1] == 2
    await asyncio.sleep(0.01)
    clock.now += 1
    await worker.sync()
    entry = statuses.latest["default/p"]["containerStatuses"][0]
    assert entry["state"]["waiting"]["message"].startswith("back-off 20s ")
    assert entry["restartCount"] == 2


async def test_init_containers_run_in_order(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    pod = make_pod(cont("app", "run"), init=[cont("one", "exit", "0"), cont("two", "exit", "0")])
    worker = PodWorker(ctx, runtime, pod)
    await worker.sync()
    status = statuses.latest["default/p"]
    assert [s["name"] for s in status["initContainerStatuses"]] == ["one", "two"]
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert condition(status, "Initialized")["status"] == "False"
    assert not runtime.by_name("two")
    for _ in range(3):
        await asyncio.sleep(0.01)
        await worker.sync()
    status = statuses.latest["default/p"]
    assert runtime.running("app")
    assert condition(status, "Initialized")["status"] == "True"
    assert [s["state"]["terminated"]["reason"] for s in status["initContainerStatuses"]] == \
        ["Completed", "Completed"]
    assert status["phase"] == "Running"


async def test_failed_init_with_never_fails_the_pod(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    pod = make_pod(cont("app", "run"), init=[cont("one", "exit", "2")], restart="Never")
    worker = PodWorker(ctx, runtime, pod)
    await worker.sync()
    await asyncio.sleep(0.01)
    await worker.sync()
    assert statuses.latest["default/p"]["phase"] == "Failed"
    assert not runtime.by_name("app")


async def test_missing_command_is_a_create_container_error(setup: Any) -> None:
    ctx, runtime, statuses, recorder, _ = setup
    worker = PodWorker(ctx, runtime, make_pod({"name": "c", "image": "nginx"}))
    await worker.sync()
    waiting = statuses.latest["default/p"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerError"
    assert "has no command" in waiting["message"]
    assert "Failed" in reasons(recorder)


async def test_runtime_create_failure_is_reported(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    runtime.fail_create["c"] = "no such file"
    worker = PodWorker(ctx, runtime, make_pod(cont("c", "run")))
    await worker.sync()
    waiting = statuses.latest["default/p"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {"reason": "CreateContainerError", "message": "no such file"}


async def test_env_and_args_are_expanded(setup: Any) -> None:
    ctx, runtime, _, _, _ = setup
    c = cont("c", "echo", "$(GREETING)", "$$(GREETING)")
    c["env"] = [{"name": "GREETING", "value": "hi"}]
    await PodWorker(ctx, runtime, make_pod(c)).sync()
    config = next(iter(runtime.containers.values())).config
    assert config.argv == ["echo", "hi", "$(GREETING)"]
    assert config.env["GREETING"] == "hi"


async def test_graceful_termination_deletes_the_pod(setup: Any) -> None:
    ctx, runtime, statuses, recorder, _ = setup
    pod = make_pod(cont("c", "run"))
    worker = PodWorker(ctx, runtime, pod)
    worker.start()
    for _ in range(50):
        if runtime.running("c"):
            break
        await asyncio.sleep(0.01)
    deleting = {**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z",
                                    "deletionGracePeriodSeconds": 7}}
    worker.update(deleting)
    await asyncio.wait_for(worker.done.wait(), 2)
    assert runtime.stops and runtime.stops[0][1] == 7
    assert "Killing" in reasons(recorder)
    killing = next(e for e in recorder.broadcaster.events if e["reason"] == "Killing")
    assert killing["message"] == "Stopping container c"
    final = statuses.latest["default/p"]
    assert final["phase"] == "Failed"  # killed by SIGTERM: exit code 143
    assert statuses.deleted == [("default/p", "uid-1")]
    assert not runtime.sandboxes and not runtime.containers


async def test_liveness_failure_restarts_the_container(setup: Any) -> None:
    ctx, runtime, _, recorder, _ = setup
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}
    worker = PodWorker(ctx, runtime, make_pod(cont("c", "run", livenessProbe=probe)))
    ctx.probes.on_change = lambda key: worker.wake()
    worker.start()
    try:
        for _ in range(100):
            if len(runtime.by_name("c")) >= 2:
                break
            await asyncio.sleep(0.02)
        attempts = runtime.by_name("c")
        assert len(attempts) >= 2 and attempts[0].state == EXITED
        messages = {e["reason"]: e["message"] for e in recorder.broadcaster.events}
        assert messages["Unhealthy"] == "Liveness probe failed: false says no\n"
        assert messages["Killing"] == "Container c failed liveness probe, will be restarted"
    finally:
        await worker.stop()


async def test_readiness_gates_ready(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 1}
    worker = PodWorker(ctx, runtime, make_pod(cont("c", "run", readinessProbe=probe)))
    await worker.sync()
    status = statuses.latest["default/p"]
    assert status["phase"] == "Running"
    ready = condition(status, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [c]"
    assert status["containerStatuses"][0]["started"] is True


async def test_adoption_keeps_running_containers(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    pod = make_pod(cont("c", "run"))
    await PodWorker(ctx, runtime, pod).sync()
    [before] = runtime.running("c")
    pod["status"] = statuses.latest["default/p"]
    again = PodWorker(ctx, runtime, pod)
    await again.sync()
    assert [c.id for c in runtime.running("c")] == [before.id]
    assert len(runtime.containers) == 1
    entry = statuses.latest["default/p"]["containerStatuses"][0]
    assert entry["containerID"] == f"kubi-host://{before.id}"
    assert entry["restartCount"] == 0


async def test_post_start_failure_kills_and_reports(setup: Any) -> None:
    ctx, runtime, statuses, recorder, _ = setup
    c = cont("c", "run", lifecycle={"postStart": {"exec": {"command": ["exit", "5"]}}})
    await PodWorker(ctx, runtime, make_pod(c)).sync()
    entry = statuses.latest["default/p"]["containerStatuses"][0]
    assert entry["state"]["waiting"]["reason"] == "PostStartHookError"
    assert "exited with 5" in entry["state"]["waiting"]["message"]
    assert "FailedPostStartHook" in reasons(recorder)
    assert runtime.by_name("c")[0].state == EXITED


async def test_pre_stop_hook_runs_before_stop(setup: Any) -> None:
    ctx, runtime, _, _, _ = setup
    seen: list[list[str]] = []

    def handler(argv: list[str]) -> tuple[int, bytes]:
        seen.append(argv)
        return 0, b""

    runtime.exec_handler = handler
    c = cont("c", "run", lifecycle={"preStop": {"exec": {"command": ["echo", "bye"]}}})
    pod = make_pod(c)
    worker = PodWorker(ctx, runtime, pod)
    await worker.sync()
    worker.update({**pod, "metadata": {**pod["metadata"],
                                       "deletionTimestamp": "2024-01-01T00:00:00Z"}})
    worker.start()
    await asyncio.wait_for(worker.done.wait(), 2)
    assert seen == [["echo", "bye"]]
    assert runtime.stops[0][1] == 30


async def test_on_failure_restarts_only_failures(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    worker = PodWorker(ctx, runtime, make_pod(cont("ok", "exit", "0"), restart="OnFailure"))
    await worker.sync()
    await asyncio.sleep(0.01)
    await worker.sync()
    assert statuses.latest["default/p"]["phase"] == "Succeeded"
    assert len(runtime.by_name("ok")) == 1
    assert runtime.by_name("ok")[0].state == EXITED
    assert not runtime.running()
    assert RUNNING not in {c.status.state for c in runtime.containers.values()}


async def test_containers_get_the_pods_hosts_file_with_its_ip(setup: Any) -> None:
    ctx, runtime, _, _, _ = setup
    the_pod = make_pod(cont("c", "run"), hostname="web-0", subdomain="web")
    await PodWorker(ctx, runtime, the_pod).sync()
    [sandbox] = runtime.sandboxes.values()
    assert "10.42.0." not in sandbox.config.hosts_file
    config = next(iter(runtime.containers.values())).config
    [mount] = [m for m in config.mounts if m.container_path == "/etc/hosts"]
    text = Path(mount.host_path).read_text()
    assert f"{sandbox.status.ip}\tweb-0.web.default.svc.cluster.local\tweb-0\n" in text
    assert sandbox.config.hostname == "web-0"
    assert "search default.svc.cluster.local" in sandbox.config.resolv_conf


async def test_a_sandbox_without_address_uses_the_nodes(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    worker = PodWorker(ctx, runtime, make_pod(cont("c", "run")))
    await worker.sync()
    for sandbox in runtime.sandboxes.values():
        sandbox.status.ip = ""
    fresh = PodWorker(ctx, runtime, make_pod(cont("c", "run")))
    await fresh.sync()
    assert statuses.latest["default/p"]["podIP"] == "192.0.2.1"


async def test_a_dead_sandbox_is_recreated(setup: Any) -> None:
    ctx, runtime, statuses, recorder, _ = setup
    worker = PodWorker(ctx, runtime, make_pod(cont("c", "run")))
    await worker.sync()
    [old] = list(runtime.sandboxes)
    await runtime.stop_pod_sandbox(old)
    await worker.sync()
    assert len(runtime.sandboxes) == 2
    [running] = runtime.running("c")
    assert running.attempt == 1 and running.sandbox_id != old
    assert "SandboxChanged" in reasons(recorder)
    entry = statuses.latest["default/p"]["containerStatuses"][0]
    assert entry["restartCount"] == 1
    assert entry["lastState"]["terminated"]["exitCode"] == 137


async def test_a_shorter_grace_period_interrupts_a_stop(setup: Any) -> None:
    ctx, runtime, statuses, _, _ = setup
    runtime.ignore_term.add("c")
    pod = make_pod(cont("c", "run"))
    worker = PodWorker(ctx, runtime, pod)
    worker.start()
    for _ in range(50):
        if runtime.running("c"):
            break
        await asyncio.sleep(0.01)

    def deleting(grace: int) -> dict[str, Any]:
        return {**pod, "metadata": {**pod["metadata"], "deletionGracePeriodSeconds": grace,
                                    "deletionTimestamp": "2024-01-01T00:00:00Z"}}

    worker.update(deleting(30))
    await asyncio.sleep(0.1)
    assert not worker.done.is_set()
    worker.update(deleting(0))
    await asyncio.wait_for(worker.done.wait(), 1)
    assert [timeout for _, timeout in runtime.stops] == [30, 2]
    assert statuses.deleted == [("default/p", "uid-1")]


class StubbornVolumes:
    def __init__(self) -> None:
        self.ready = False
        self.torn_down = False

    async def setup(self, pod: dict[str, Any], pod_dir: Path) -> None:
        if not self.ready:
            error = RuntimeError("configmap \"cfg\" not found")
            error.event_message = 'MountVolume.SetUp failed for volume "cfg" : ' \
                'configmap "cfg" not found'  # type: ignore[attr-defined]
            raise error

    async def mounts(self, pod: dict[str, Any], container: dict[str, Any],
                     env: Any, pod_dir: Path) -> list[Any]:
        return [Mount(host_path=str(pod_dir / "volumes" / "cfg"), container_path="/cfg")]

    async def teardown(self, pod: dict[str, Any], pod_dir: Path) -> None:
        self.torn_down = True


async def test_volumes_gate_the_start_and_are_mounted(setup: Any) -> None:
    ctx, runtime, statuses, recorder, _ = setup
    ctx.volumes = StubbornVolumes()
    pod = make_pod(cont("c", "run"))
    worker = PodWorker(ctx, runtime, pod)
    await worker.sync()
    # The sandbox made meanwhile is gone again: no address while volumes wait.
    assert not runtime.sandboxes
    status = statuses.latest["default/p"]
    assert not status.get("podIP")
    assert condition(status, "PodReadyToStartContainers")["status"] == "False"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    failed = next(e for e in recorder.broadcaster.events if e["reason"] == "FailedMount")
    assert failed["message"].startswith('MountVolume.SetUp failed for volume "cfg"')
    await worker.sync()   # tried again: the volumes first, no sandbox made meanwhile
    assert not runtime.sandboxes and runtime.sandbox_runs == 1
    ctx.volumes.ready = True
    await worker.sync()
    config = next(iter(runtime.containers.values())).config
    assert [m.container_path for m in config.mounts] == ["/cfg", "/etc/hosts"]
    worker.update({**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "x"}})
    worker.start()
    await asyncio.wait_for(worker.done.wait(), 2)
    assert ctx.volumes.torn_down
