"""Adoption of running pods by a new runtime, and complete teardown (root)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap

from kubi.node.runtime.base import EXITED, RUNNING, SANDBOX_READY
from kubi.node.runtime.host import linux
from tests.unit import test_runtime_host_support as support
from tests.unit.test_runtime_host_support import (
    Env,
    leftovers,
    needs_root,
    wait_for,
)

pytestmark = needs_root
host_env = support.host_env


async def test_a_new_runtime_adopts_running_pods(host_env: Env) -> None:
    sid = await host_env.sandbox("adopt")
    running = await host_env.container(sid, "run", ["sh", "-c", "echo up; exec sleep 300"])
    finished = await host_env.container(sid, "done", ["sh", "-c", "exit 2"])
    late = await host_env.container(sid, "late", ["sh", "-c", "sleep 0.3; exit 3"])
    await host_env.runtime.wait_container(finished)
    before = {c.id: c for c in await host_env.runtime.list_containers()}
    await host_env.runtime.close()
    await asyncio.sleep(0.5)  # `late` exits while no runtime watches

    host_env.runtime = host_env.new_runtime()
    await host_env.runtime.start()
    sandboxes = await host_env.runtime.list_pod_sandboxes()
    assert [(s.id, s.state) for s in sandboxes] == [(sid, SANDBOX_READY)]
    after = {c.id: c for c in await host_env.runtime.list_containers()}
    assert set(after) == set(before)
    assert after[running].state == RUNNING and after[running].pid == before[running].pid
    assert after[running].started_at == before[running].started_at
    assert (after[finished].state, after[finished].exit_code) == (EXITED, 2)
    assert (after[late].state, after[late].exit_code) == (EXITED, 3)

    session = await host_env.runtime.exec(running, ["hostname"], tty=False, stdin=False)
    assert await session.read_stdout() == b"adopt\n"
    assert await session.wait() == 0
    await session.close()
    await host_env.runtime.stop_container(running, 0)
    assert (await host_env.runtime.container_status(running)).exit_code == 137


_AGENT = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from kubi.node.network import PodNetwork
    from kubi.node.runtime.base import SandboxConfig, ContainerConfig
    from kubi.node.runtime.host import HostRuntime

    async def main():
        root, cidr, bridge, tag = sys.argv[1:5]
        network = PodNetwork(cidr, Path(root) / "network", bridge=bridge)
        runtime = HostRuntime(Path(root) / "runtime", network, cgroup_root="kubt-" + tag)
        await runtime.start()
        sid = await runtime.run_pod_sandbox(SandboxConfig(
            name="survivor", namespace="default", uid="uid-" + tag, hostname="survivor",
            hosts_file="127.0.0.1 localhost\\n", resolv_conf="nameserver 10.43.0.10\\n"))
        cid = await runtime.create_container(sid, ContainerConfig(
            name="c", image="node", argv=["sleep", "300"],
            log_path=str(Path(root) / "logs" / "c.log")))
        await runtime.start_container(cid)
        print(json.dumps({"sandbox": sid, "container": cid}), flush=True)
        await asyncio.sleep(300)

    asyncio.run(main())
""")


def run_agent_and_kill_it(env: Env) -> dict[str, str]:
    """Start a pod from a separate agent process, then kill -9 that process."""
    agent = subprocess.Popen([sys.executable, "-c", _AGENT, str(env.root), env.network.cidr,
                              env.network.bridge, env.tag], stdout=subprocess.PIPE)
    assert agent.stdout is not None
    ids: dict[str, str] = json.loads(agent.stdout.readline())
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    return ids


async def test_pods_survive_kill_9_of_the_agent(host_env: Env) -> None:
    # Orphans of the killed agent (its launcher) become ours, so they can be reaped.
    linux.become_subreaper()
    try:
        ids = await asyncio.to_thread(run_agent_and_kill_it, host_env)

        await host_env.runtime.close()
        host_env.runtime = host_env.new_runtime()
        await host_env.runtime.start()
        status = await host_env.runtime.container_status(ids["container"])
        assert status.state == RUNNING and status.pid
        host_env.pids.add(status.pid)
        sandbox = await host_env.runtime.pod_sandbox_status(ids["sandbox"])
        assert sandbox.state == SANDBOX_READY and sandbox.ip
        host_env.veths.add(f"kv{ids['sandbox'][:12]}")
        holder = host_env.runtime._sandboxes[ids["sandbox"]].holder_pid
        assert holder
        host_env.pids.add(holder)
        launcher = json.loads((host_env.root / "runtime" / "launcher.json").read_text())
        host_env.pids.add(launcher["pid"])
        await host_env.runtime.destroy_all()
        assert not leftovers(host_env)
        with_zombies = True
        while with_zombies:
            try:
                with_zombies = os.waitpid(-1, os.WNOHANG)[0] != 0  # noqa: ASYNC222
            except ChildProcessError:
                with_zombies = False
    finally:
        linux.prctl(36, 0)  # PR_SET_CHILD_SUBREAPER off again


async def test_destroy_all_leaves_nothing(host_env: Env) -> None:
    for name in ("a", "b"):
        sid = await host_env.sandbox(name)
        await host_env.container(sid, "c", ["sleep", "300"], stdin=True,
                                 memory_limit_bytes=64 << 20)
    sid = await host_env.sandbox("shared", share_process_namespace=True)
    cid = await host_env.container(sid, "c", ["sh", "-c", "sleep 300 & sleep 300"])
    exec_session = await host_env.runtime.exec(cid, ["sleep", "300"], tty=True, stdin=True)
    attach = await host_env.runtime.attach(cid, tty=False, stdin=False)
    assert leftovers(host_env)
    await host_env.runtime.destroy_all()
    await exec_session.close()
    await attach.close()
    assert not leftovers(host_env)
    # The records went with the runtime's tmpfs.
    assert not linux.is_mount_point(str(host_env.root / "runtime"))
    assert list((host_env.root / "runtime").rglob("*.json")) == []
    assert list((host_env.root / "network").rglob("*.json")) == []


async def test_a_lost_launcher_is_started_again(host_env: Env) -> None:
    sid = await host_env.sandbox("relaunch")
    record = json.loads((host_env.root / "runtime" / "launcher.json").read_text())
    first = record["pid"]
    os.kill(first, signal.SIGKILL)
    await wait_for(lambda: not linux.process_alive(first, record["start_time"]))
    # The pod's own shim starts its containers: no launcher needed.
    cid = await host_env.container(sid, "c", ["sh", "-c", "echo again"])
    assert (await host_env.runtime.wait_container(cid)).exit_code == 0
    # A new pod needs the launcher, which is started again.
    other = await host_env.sandbox("relaunched")
    cid = await host_env.container(other, "c", ["sh", "-c", "echo again"])
    assert (await host_env.runtime.wait_container(cid)).exit_code == 0
    second = json.loads((host_env.root / "runtime" / "launcher.json").read_text())["pid"]
    assert second != first
    host_env.pids.add(second)
