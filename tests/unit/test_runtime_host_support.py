"""Shared fixtures for the host runtime's end-to-end tests (no tests here).

`host_env` starts a HostRuntime as root with its own bridge (kubt<random>),
a /24 from 10.42.200-250.0, its own cgroup root and state under tmp_path,
and always ends with `destroy_all()` followed by a check that nothing of it
is left: processes, mounts, links, cgroups.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kubi.node.network import PodNetwork, host_veth_name
from kubi.node.network.podnetwork import link_exists
from kubi.node.runtime.base import ContainerConfig, SandboxConfig
from kubi.node.runtime.host import HostRuntime, linux
from kubi.node.runtime.host.runtime import HostRuntime as HostRuntimeClass

PYTHON = sys.executable
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the host runtime's namespaces, mounts and cgroups need root")


@dataclass
class Env:
    runtime: HostRuntimeClass
    network: PodNetwork
    root: Path
    tag: str
    pids: set[int] = field(default_factory=set)
    veths: set[str] = field(default_factory=set)

    def new_runtime(self) -> HostRuntimeClass:
        """Another runtime on the same state, as a restarted agent makes."""
        network = PodNetwork(self.network.cidr, self.network.state_dir,
                             bridge=self.network.bridge)
        return HostRuntime(self.root / "runtime", network, cgroup_root=f"kubt-{self.tag}")

    def sandbox_config(self, name: str, **overrides: object) -> SandboxConfig:
        values: dict[str, object] = {
            "name": name, "namespace": "default", "uid": f"uid-{name}-{self.tag}",
            "hostname": name,
            "hosts_file": "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                          f"10.42.0.99\t{name}.sub.default.svc.cluster.local\t{name}\n",
            "resolv_conf": "search default.svc.cluster.local svc.cluster.local cluster.local\n"
                           "nameserver 10.43.0.10\noptions ndots:5\n",
            "log_directory": str(self.root / "logs" / name)}
        values.update(overrides)
        return SandboxConfig(**values)  # type: ignore[arg-type]

    def log_path(self, pod: str, container: str, attempt: int = 0) -> str:
        return str(self.root / "logs" / pod / container / f"{attempt}.log")

    async def sandbox(self, name: str, **overrides: object) -> str:
        sandbox_id = await self.runtime.run_pod_sandbox(self.sandbox_config(name, **overrides))
        record = self.runtime._sandboxes[sandbox_id]
        assert record.holder_pid
        self.pids.add(record.holder_pid)
        self.veths.add(host_veth_name(sandbox_id))
        return sandbox_id

    async def container(self, sandbox_id: str, name: str, argv: list[str],
                        **overrides: object) -> str:
        pod = self.runtime._sandboxes[sandbox_id].config.name
        values: dict[str, object] = {"name": name, "image": "node", "argv": argv,
                                     "log_path": self.log_path(pod, name)}
        values.update(overrides)
        container_id = await self.runtime.create_container(
            sandbox_id, ContainerConfig(**values))  # type: ignore[arg-type]
        await self.runtime.start_container(container_id)
        record = self.runtime._containers[container_id]
        self.pids.update(p for p in (record.pid, record.shim_pid) if p)
        return container_id


def log_records(path: str) -> list[tuple[str, str, str]]:
    """(stream, tag, text) of each line of a CRI log file."""
    out = []
    with open(path, "rb") as f:
        for line in f.read().decode().splitlines():
            _ts, stream, tag, text = line.split(" ", 3)
            out.append((stream, tag, text))
    return out


def log_text(path: str) -> str:
    return "\n".join(text for _, _, text in log_records(path))


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def leftovers(env: Env) -> list[str]:
    """Everything of this environment still present on the node."""
    found = []
    for pid in env.pids:
        if linux.process_start_time(pid) is not None:
            found.append(f"process {pid}")
    found += [f"mount {m}" for m in linux.mounts_under(str(env.root))]
    found += [f"link {name}" for name in {env.network.bridge, *env.veths}
              if link_exists(name)]
    for controller in ("memory", "cpu", "pids", ""):
        path = Path("/sys/fs/cgroup") / controller / f"kubt-{env.tag}"
        if path.exists():
            found.append(f"cgroup {path}")
    return found


@pytest.fixture
async def host_env(tmp_path: Path) -> AsyncIterator[Env]:
    if os.geteuid() != 0:
        pytest.skip("the host runtime's namespaces, mounts and cgroups need root")
    tag = secrets.token_hex(3)
    network = PodNetwork(f"10.42.{random.randint(200, 250)}.0/24", tmp_path / "network",
                         bridge=f"kubt{tag}")
    runtime = HostRuntime(tmp_path / "runtime", network, cgroup_root=f"kubt-{tag}")
    env = Env(runtime, network, tmp_path, tag)
    try:
        await runtime.start()
        launcher = (tmp_path / "runtime" / "launcher.json").read_text()
        env.pids.add(int(launcher.split('"pid":')[1].split(",")[0]))
        yield env
    finally:
        await env.runtime.destroy_all()
        left = leftovers(env)
        assert not left, f"left behind: {left}"
