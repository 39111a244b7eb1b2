"""The host runtime end to end (root): sandboxes, containers, logs, exits, limits."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import pytest

from kubi.node.runtime.base import (
    EXITED,
    RUNNING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    ContainerConfig,
    Mount,
    RuntimeError_,
    SandboxConfig,
)
from tests.unit import test_runtime_host_support as support
from tests.unit.test_runtime_host_support import (
    PYTHON,
    Env,
    log_records,
    log_text,
    needs_root,
    wait_for,
)

pytestmark = needs_root
host_env = support.host_env


async def test_sandbox_hostname_hosts_and_resolv_conf(host_env: Env) -> None:
    sid = await host_env.sandbox("web-0")
    status = await host_env.runtime.pod_sandbox_status(sid)
    assert status.state == SANDBOX_READY and status.ip.startswith("10.42.")
    assert status.netns_path and status.uid == f"uid-web-0-{host_env.tag}"
    cid = await host_env.container(sid, "c", ["sh", "-c", (
        "hostname; cat /etc/hostname; echo HOSTNAME=$HOSTNAME; cat /etc/hosts; "
        "cat /etc/resolv.conf; ip -o -4 addr show eth0")])
    final = await host_env.runtime.wait_container(cid)
    assert final.exit_code == 0 and final.reason == "Completed"
    text = log_text(host_env.log_path("web-0", "c"))
    lines = text.splitlines()
    assert lines[0] == "web-0" and lines[1] == "web-0" and lines[2] == "HOSTNAME=web-0"
    assert "web-0.sub.default.svc.cluster.local" in text
    assert "nameserver 10.43.0.10" in text and "options ndots:5" in text
    assert f"inet {status.ip}/24" in text
    # Nothing of the pod shows on the node.
    assert socket.gethostname() != "web-0"
    assert "web-0.sub" not in Path("/etc/hosts").read_text()


async def test_two_containers_share_network_and_ipc_not_mounts(host_env: Env) -> None:
    volume = host_env.root / "volume"
    volume.mkdir()
    (volume / "marker").write_text("from the volume\n")
    target = f"/tmp/kubt-{host_env.tag}-vol"
    sid = await host_env.sandbox("pair")
    server = await host_env.container(sid, "server", [PYTHON, "-c", (
        "import socket,os,sys\n"
        "os.system('ipcmk -M 4096 >/dev/null; echo shared > /dev/shm/kubt')\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('127.0.0.1', 7070)); s.listen()\n"
        "print('listening', flush=True)\n"
        "c,_=s.accept(); c.sendall(open('" + target + "/marker','rb').read()); c.close()\n")],
        mounts=[Mount(str(volume), target, readonly=True)])
    await wait_for(lambda: "listening" in log_text(host_env.log_path("pair", "server")))
    client = await host_env.container(sid, "client", ["sh", "-c", (
        f"test -e {target}/marker && echo SEES-VOLUME; "
        "ipcs -m | grep -c 4096; cat /dev/shm/kubt; "
        + PYTHON + " -c \"import socket; s=socket.create_connection(('127.0.0.1', 7070));"
        " print(s.recv(100).decode().strip())\"")])
    result = await host_env.runtime.wait_container(client)
    text = log_text(host_env.log_path("pair", "client"))
    assert result.exit_code == 0, text
    assert "SEES-VOLUME" not in text
    assert text.splitlines() == ["1", "shared", "from the volume"]
    assert (await host_env.runtime.wait_container(server)).exit_code == 0
    # Neither the volume nor the pod's /dev/shm leaked to the node.
    assert not os.path.exists(f"{target}/marker")
    assert not os.path.exists("/dev/shm/kubt")


async def test_log_streams_partial_lines_and_exit_codes(host_env: Env) -> None:
    sid = await host_env.sandbox("logs")
    cid = await host_env.container(sid, "c", ["sh", "-c",
                                              "echo out; echo err >&2; printf tail; exit 7"])
    status = await host_env.runtime.wait_container(cid)
    assert (status.state, status.exit_code, status.reason) == (EXITED, 7, "Error")
    assert status.started_at <= status.finished_at
    records = log_records(host_env.log_path("logs", "c"))
    assert sorted(records) == sorted([("stdout", "F", "out"), ("stderr", "F", "err"),
                                      ("stdout", "F", "tail")])


async def test_stop_sends_sigterm_then_sigkill(host_env: Env) -> None:
    sid = await host_env.sandbox("stop")
    polite = await host_env.container(sid, "polite", ["sh", "-c",
                                      "trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done"])
    stubborn = await host_env.container(sid, "stubborn", ["sh", "-c",
                                        "trap '' TERM; while :; do sleep 0.05; done"])
    assert (await host_env.runtime.container_status(polite)).state == RUNNING
    started = time.monotonic()
    await host_env.runtime.stop_container(polite, 10)
    assert time.monotonic() - started < 5
    status = await host_env.runtime.container_status(polite)
    assert status.exit_code == 0 and "bye" in log_text(host_env.log_path("stop", "polite"))
    started = time.monotonic()
    await host_env.runtime.stop_container(stubborn, 0.5)
    assert time.monotonic() - started >= 0.5
    status = await host_env.runtime.container_status(stubborn)
    assert (status.exit_code, status.reason) == (137, "Error")
    # Stopping again is a no-op.
    await host_env.runtime.stop_container(stubborn, 1)


async def test_memory_limit_oom_kills(host_env: Env) -> None:
    sid = await host_env.sandbox("oom")
    cid = await host_env.container(sid, "hog", [PYTHON, "-c", "x = bytearray(200 << 20)"],
                                   memory_limit_bytes=50 << 20)
    status = await host_env.runtime.wait_container(cid)
    assert (status.exit_code, status.reason) == (137, "OOMKilled")


async def test_cpu_limit_and_user_and_workdir(host_env: Env) -> None:
    sid = await host_env.sandbox("limits")
    workdir = f"/tmp/kubt-{host_env.tag}-work"
    cid = await host_env.container(sid, "c", ["sh", "-c", "id -u; id -g; pwd; cat /proc/self/cgroup"],
                                   cpu_limit_millis=250, run_as_user=65534, run_as_group=65534,
                                   working_dir=workdir)
    record = host_env.runtime._containers[cid]
    cpu = Path("/sys/fs/cgroup/cpu") / f"kubt-{host_env.tag}" / (record.cgroup or "")
    if cpu.is_dir():
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"
    status = await host_env.runtime.wait_container(cid)
    lines = log_text(host_env.log_path("limits", "c")).splitlines()
    assert status.exit_code == 0, lines
    assert lines[:3] == ["65534", "65534", workdir]
    assert any(f"kubt-{host_env.tag}/" in line for line in lines[3:])


async def test_start_and_create_errors(host_env: Env) -> None:
    sid = await host_env.sandbox("errors")
    with pytest.raises(RuntimeError_) as created:
        await host_env.runtime.create_container(sid, ContainerConfig(name="c", image="x", argv=[]))
    assert created.value.reason == "CreateContainerError"
    cid = await host_env.runtime.create_container(sid, ContainerConfig(
        name="c", image="x", argv=["kubt-no-such-command"],
        log_path=host_env.log_path("errors", "c")))
    with pytest.raises(RuntimeError_) as started:
        await host_env.runtime.start_container(cid)
    assert started.value.reason == "RunContainerError"
    assert 'exec: "kubt-no-such-command": executable file not found in $PATH' in str(started.value)
    status = await host_env.runtime.container_status(cid)
    assert (status.state, status.exit_code, status.reason) == (EXITED, 128, "StartError")
    assert "executable file not found" in status.message
    with pytest.raises(RuntimeError_) as missing:
        await host_env.runtime.container_status("0" * 64)
    assert missing.value.reason == "NotFound"


async def test_shared_process_namespace(host_env: Env) -> None:
    sid = await host_env.sandbox("shared", share_process_namespace=True)
    await host_env.container(sid, "sleeper", ["sleep", "300"])
    cid = await host_env.container(sid, "looker", ["sh", "-c",
                                   "cat /proc/1/comm; for p in /proc/[0-9]*; do cat $p/comm; done"])
    await host_env.runtime.wait_container(cid)
    lines = log_text(host_env.log_path("shared", "looker")).splitlines()
    assert lines[0] == "kubi-pause" and "sleep" in lines[1:]


async def test_host_network_sandbox(host_env: Env) -> None:
    sid = await host_env.sandbox("hostnet", host_network=True)
    status = await host_env.runtime.pod_sandbox_status(sid)
    assert status.ip == "" and status.netns_path == ""
    cid = await host_env.container(sid, "c", ["hostname"])
    await host_env.runtime.wait_container(cid)
    assert log_text(host_env.log_path("hostnet", "c")) == socket.gethostname()


async def test_stop_and_remove_sandbox(host_env: Env) -> None:
    sid = await host_env.sandbox("gone")
    cid = await host_env.container(sid, "c", ["sleep", "300"])
    status = await host_env.runtime.pod_sandbox_status(sid)
    assert os.path.exists(status.netns_path)
    await host_env.runtime.stop_pod_sandbox(sid)
    assert (await host_env.runtime.pod_sandbox_status(sid)).state == SANDBOX_NOTREADY
    assert (await host_env.runtime.container_status(cid)).state == EXITED
    assert (await host_env.runtime.pod_sandbox_status(sid)).netns_path == ""
    assert host_env.network.ipam.allocations() == {}
    await host_env.runtime.remove_pod_sandbox(sid)
    assert await host_env.runtime.list_pod_sandboxes() == []
    assert await host_env.runtime.list_containers() == []
    await host_env.runtime.remove_pod_sandbox(sid)


async def test_many_pods_at_once(host_env: Env) -> None:
    async def one(i: int) -> str:
        sid = await host_env.sandbox(f"p{i}")
        return await host_env.container(sid, "c", ["sleep", "300"])
    ids = await asyncio.gather(*(one(i) for i in range(8)))
    statuses = await host_env.runtime.list_containers()
    assert {s.id for s in statuses if s.state == RUNNING} == set(ids)
    ips = {s.ip for s in await host_env.runtime.list_pod_sandboxes()}
    assert len(ips) == 8


async def test_sandboxes_are_made_a_few_at_a_time(host_env: Env) -> None:
    runtime = host_env.runtime
    runtime._holder_slots = asyncio.Semaphore(2)
    answer = runtime._launcher.call
    in_flight, most = 0, 0

    async def counted(request: dict, fds: list[int] | None = None) -> dict:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await answer(request, fds)
        finally:
            in_flight -= 1

    runtime._launcher.call = counted  # type: ignore[method-assign]
    await asyncio.gather(*(host_env.sandbox(f"s{i}") for i in range(6)))
    assert most == 2
    assert len(await runtime.list_pod_sandboxes()) == 6


async def test_a_holder_that_never_answers_fails_its_sandbox(
        host_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubi.node.runtime.host import runtime as host_runtime
    monkeypatch.setattr(host_runtime, "HOLDER_TIMEOUT", 0.2)
    runtime = host_env.runtime
    answer = runtime._launcher.call

    async def silent(request: dict, fds: list[int] | None = None) -> dict:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    runtime._launcher.call = silent  # type: ignore[method-assign]
    with pytest.raises(RuntimeError_) as failed:
        await runtime.run_pod_sandbox(host_env.sandbox_config("mute"))
    assert failed.value.reason == "CreatePodSandboxError"
    assert "did not answer within 0.2s" in str(failed.value)
    assert await runtime.list_pod_sandboxes() == []
    # Its slot is free again.
    runtime._launcher.call = answer  # type: ignore[method-assign]
    await host_env.sandbox("speaks")


async def test_without_isolation_pods_are_plain_processes(tmp_path: Path) -> None:
    from kubi.node.runtime.host.runtime import HostRuntime
    runtime = HostRuntime(tmp_path / "plain", None, isolated=False,
                          cgroup_root=f"kubt-plain-{os.getpid()}")
    await runtime.start()
    try:
        sid = await runtime.run_pod_sandbox(SandboxConfig(
            name="plain", namespace="default", uid="uid-plain", hostname="plain",
            hosts_file="", resolv_conf=""))
        assert (await runtime.pod_sandbox_status(sid)).state == SANDBOX_READY
        log = str(tmp_path / "plain.log")
        cid = await runtime.create_container(sid, ContainerConfig(
            name="c", image="node", argv=["hostname"],
            log_path=log))
        await runtime.start_container(cid)
        assert (await runtime.wait_container(cid)).exit_code == 0
        assert log_text(log) == socket.gethostname()
        sleeper = await runtime.create_container(sid, ContainerConfig(
            name="s", image="node", argv=["sleep", "300"], log_path=log))
        await runtime.start_container(sleeper)
        session = await runtime.exec(sleeper, ["echo", "plain-exec"], tty=False, stdin=False)
        assert await session.read_stdout() == b"plain-exec\n"
        assert await session.wait() == 0
        await session.close()
    finally:
        await runtime.destroy_all()


async def test_volume_mounts_read_only_and_files(host_env: Env) -> None:
    data = host_env.root / "data"
    data.mkdir()
    single = host_env.root / "single.conf"
    single.write_text("one file\n")
    base = f"/tmp/kubt-{host_env.tag}"
    sid = await host_env.sandbox("volumes")
    cid = await host_env.container(sid, "c", ["sh", "-c", (
        f"touch {base}/ro/x 2>/dev/null && echo WROTE-RO || echo READ-ONLY; "
        f"touch {base}/rw/y && echo WROTE-RW; cat {base}/etc/single.conf")],
        mounts=[Mount(str(data), f"{base}/ro", readonly=True),
                Mount(str(data), f"{base}/rw"),
                Mount(str(single), f"{base}/etc/single.conf", is_file=True)])
    assert (await host_env.runtime.wait_container(cid)).exit_code == 0
    assert log_text(host_env.log_path("volumes", "c")).splitlines() == [
        "READ-ONLY", "WROTE-RW", "one file"]
    assert (data / "y").exists() and not (data / "x").exists()
