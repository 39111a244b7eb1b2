"""HostRuntime: the `host` handler of the runtime interface (base.Runtime).

A sandbox is a holder process owning the pod's network, UTS, IPC and PID
namespaces, its network namespace wired to the node bridge as PodNetwork
prepared it (the holder does the wiring, in parallel with other pods'),
plus the pod's hosts/resolv.conf/hostname files and a /dev/shm tmpfs under
the state directory. The holder is also the pod's shim (podshim.py): a
container is a node process it forks in those namespaces, in its own mount
namespace and cgroup. Holders are forked by the launcher, so they (and the
pods) outlive the agent; on start a new HostRuntime reads the records,
checks each recorded holder by pid and start time and watches the live ones
through pidfds, and asks their shims to tell it when each running
container exits (the shim hangs up on a connection), which is how a
restarted agent adopts running pods; `on_container_exit` passes each exit
on at once. `close()` leaves pods running; `destroy_all()` removes every
trace (processes, mounts, veths, netns, cgroups, the launcher).

As root the state directory is a tmpfs: the records describe processes,
mounts and links that a reboot ends anyway, and survive a restart of the
agent; writing them costs microseconds instead of a journalled filesystem's
milliseconds, and every pod writes several. A sandbox's record is written
before its holder exists, with the address it is to get, so no address is
ever in use without a record naming it.

Without root (or with `isolated=False`) there is no isolation: pods are
plain processes on the node's network, without their own hostname, DNS
files or volume mounts; resource limits still apply where cgroups can be
written (root).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from kubi.node.network import PodNetwork
from kubi.node.runtime.base import (
    CREATED,
    RUNNING,
    ContainerConfig,
    ContainerStatus,
    RuntimeError_,
    SandboxConfig,
    SandboxStatus,
)
from kubi.node.runtime.host import linux, requests
from kubi.node.runtime.host.cgroups import Cgroups
from kubi.node.runtime.host.client import LauncherClient, shim_start, shim_watch
from kubi.node.runtime.host.logfile import MAX_BYTES, MAX_FILES
from kubi.node.runtime.host.records import ContainerRecord, SandboxRecord
from kubi.node.runtime.host.state import (
    StateDir,
    read_json,
    remember_mount_points,
    remove_mount_points,
    replace_file,
    write_file,
)
from kubi.node.runtime.host.streams import AttachSession, ExecSession, connect_loopback

SHM_SIZE = 64 << 20
# Records and the pods' small files; each pod's /dev/shm is a tmpfs of its own.
STATE_TMPFS = "mode=0700,size=64m"
# Sandboxes being made at once, per CPU. A holder spends its start in the
# kernel (a network namespace, a veth pair, the bridge), much of it under
# the one lock of the network stack: fifty at once contend for it and for
# the CPUs, and all finish late, where a few at a time keep the CPUs as busy
# and finish one after another (as CNI plugins, which take a lock, do).
HOLDERS_PER_CPU = 4
# A holder that has not answered by then fails its sandbox and frees its slot.
HOLDER_TIMEOUT = 60.0
# How long a SIGKILLed container (or holder) may take to be gone.
KILL_WAIT = 10.0


class HostRuntime:
    handler = "host"

    def __init__(self, state_dir: Path, network: PodNetwork | None, *,
                 cgroup_root: str = "kubi", log_max_bytes: int = MAX_BYTES,
                 log_max_files: int = MAX_FILES, shm_size: int = SHM_SIZE,
                 isolated: bool | None = None) -> None:
        self.state_dir = Path(os.path.abspath(state_dir))
        self.network = network
        # Namespaces and mounts need root; without it (or when asked) pods are plain processes.
        self.isolated = os.geteuid() == 0 if isolated is None else isolated and os.geteuid() == 0
        self.cgroups = Cgroups(cgroup_root)
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self.shm_size = shm_size
        self._settings = requests.Settings(self.isolated, cgroup_root, log_max_bytes,
                                           log_max_files)
        self._files = StateDir(str(self.state_dir))
        self._launcher = LauncherClient(self.state_dir)
        self._sandboxes: dict[str, SandboxRecord] = {}
        self._containers: dict[str, ContainerRecord] = {}
        self._exited: dict[str, asyncio.Event] = {}
        self._pidfds: dict[str, int] = {}
        self._shim_watches: dict[str, socket.socket] = {}
        self._loaded = False
        # Holders making their namespaces at the same time (see HOLDERS_PER_CPU).
        self._holder_slots = asyncio.Semaphore(HOLDERS_PER_CPU * (os.cpu_count() or 1))
        # Told the pod uid as soon as one of its containers has exited (the
        # agent wakes that pod's worker rather than wait for its relist).
        self.on_container_exit: Callable[[str], None] | None = None

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self.isolated:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            linux.ensure_tmpfs(str(self.state_dir), STATE_TMPFS)
        self._files.create()
        if self.network is not None and self.isolated:
            await self.network.start()
        await self._launcher.ensure_running()
        await self._adopt()
        if self.network is not None and self.isolated:
            await self.network.retain(self._sandboxes)

    async def close(self) -> None:
        """Stop watching; every pod keeps running for the next runtime to adopt."""
        loop = asyncio.get_running_loop()
        for fd in self._pidfds.values():
            loop.remove_reader(fd)
            os.close(fd)
        self._pidfds.clear()
        for sock in self._shim_watches.values():
            loop.remove_reader(sock.fileno())
            sock.close()
        self._shim_watches.clear()

    async def destroy_all(self) -> None:
        """Stop and remove every sandbox and container, then the network, the
        launcher, the cgroups, the mounts and the records."""
        await self._adopt()
        for sandbox_id in list(self._sandboxes):
            await self.remove_pod_sandbox(sandbox_id)
        for container_id in list(self._containers):
            await self.remove_container(container_id)
        if self.network is not None and self.isolated:
            await self.network.teardown_all()
        await self._launcher.shutdown()
        await asyncio.to_thread(self.cgroups.remove_root)
        remove_mount_points(self.state_dir)
        await self.close()
        if self.isolated:
            linux.unmount_tree(str(self.state_dir))
        # Directories a crash left without a record (their mounts are gone now).
        for sandbox_id in self._files.sandbox_ids():
            self._files.remove_sandbox(sandbox_id)
        for container_id in self._files.container_ids():
            self._files.remove_container(container_id)
        self._loaded = False

    async def _adopt(self) -> None:
        """Read the records (once) and watch what they name that still runs."""
        if self._loaded:
            return
        self._loaded = True
        for sandbox_id in self._files.sandbox_ids():
            data = read_json(self._files.sandbox_file(sandbox_id, "sandbox.json"))
            if data is None:
                continue
            sandbox = SandboxRecord.from_json(data)
            self._sandboxes[sandbox_id] = sandbox
            self._watch_holder(sandbox)
        for container_id in self._files.container_ids():
            data = read_json(self._files.container_file(container_id, "container.json"))
            if data is None:
                continue
            record = ContainerRecord.from_json(data)
            record.apply_shim_status(read_json(self._files.container_file(container_id,
                                                                          "status.json")))
            self._containers[container_id] = record
        for record in list(self._containers.values()):
            if record.state == RUNNING:
                try:
                    sock = await shim_watch(record.sandbox_id, record.id)
                except OSError:
                    self._container_gone(record.id)
                else:
                    self._watch_container(record.id, sock)

    # ---- watching processes ----------------------------------------------------------

    def _watch_holder(self, record: SandboxRecord) -> None:
        """Watch the holder through a pidfd; it is not alive if it is not there."""
        record.alive = False
        pid, start_time = record.holder_pid, record.holder_start
        if not linux.process_alive(pid, start_time):
            return
        assert pid is not None
        fd = linux.open_pidfd(pid)
        if fd is None or not linux.process_alive(pid, start_time):
            if fd is not None:
                os.close(fd)
            return
        self._pidfds[record.id] = fd
        asyncio.get_running_loop().add_reader(fd, self._holder_gone, record.id)
        record.alive = True

    def _holder_gone(self, sandbox_id: str) -> None:
        fd = self._pidfds.pop(sandbox_id, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        record = self._sandboxes.get(sandbox_id)
        if record is not None:
            record.alive = False

    def _watch_container(self, container_id: str, sock: socket.socket) -> None:
        """The pod's shim hangs up on `sock` once the container's exit is recorded."""
        self._shim_watches[container_id] = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_shim_watch,
                                              container_id)

    def _on_shim_watch(self, container_id: str) -> None:
        sock = self._shim_watches[container_id]
        try:
            if sock.recv(4096):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        del self._shim_watches[container_id]
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        self._container_gone(container_id)

    def _container_gone(self, container_id: str) -> None:
        record = self._containers.get(container_id)
        if record is None:
            return
        record.apply_shim_status(read_json(self._files.container_file(container_id,
                                                                      "status.json")))
        if record.exit_code is None and record.pid:
            record.mark_lost(time.time())
        self._exit_event(container_id).set()
        sandbox = self._sandboxes.get(record.sandbox_id)
        if self.on_container_exit is not None and sandbox is not None:
            self.on_container_exit(sandbox.config.uid)

    def _exit_event(self, container_id: str) -> asyncio.Event:
        return self._exited.setdefault(container_id, asyncio.Event())

    # ---- sandboxes -------------------------------------------------------------------

    def _sandbox(self, sandbox_id: str) -> SandboxRecord:
        record = self._sandboxes.get(sandbox_id)
        if record is None:
            raise RuntimeError_(f"sandbox {sandbox_id} not found", "NotFound")
        return record

    def _save_sandbox(self, record: SandboxRecord) -> None:
        replace_file(self._files.sandbox_file(record.id, "sandbox.json"),
                     orjson.dumps(record.to_json()))

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        sandbox_id = secrets.token_hex(32)
        directory = self._files.sandbox_dir(sandbox_id)
        os.mkdir(directory, 0o755)
        for name, text in (("hosts", config.hosts_file), ("resolv.conf", config.resolv_conf),
                           ("hostname", config.hostname + "\n")):
            write_file(f"{directory}/{name}", text.encode())
        record = SandboxRecord(id=sandbox_id, config=config, created_at=time.time(),
                               own_network=self.isolated and not config.host_network)
        self._sandboxes[sandbox_id] = record
        try:
            interface = None
            if self.network is not None and record.own_network:
                interface = self.network.prepare_pod(sandbox_id)
                record.ip = interface.ip
            self._save_sandbox(record)
            async with self._holder_slots, asyncio.timeout(HOLDER_TIMEOUT):
                reply = await self._launcher.call({
                    "op": "holder", "sandbox_id": sandbox_id, "hostname": config.hostname,
                    "isolated": self.isolated, "host_network": config.host_network,
                    "shm": ({"path": f"{directory}/shm", "size": self.shm_size}
                            if self.isolated else None),
                    "network": interface.to_json() if interface is not None else None})
            if "error" in reply:
                raise RuntimeError_(reply["error"], "CreatePodSandboxError")
            record.holder_pid, record.holder_start = reply["pid"], reply["start_time"]
            self._save_sandbox(record)
            self._watch_holder(record)
        except BaseException as exc:
            await asyncio.shield(self.remove_pod_sandbox(sandbox_id))
            if isinstance(exc, RuntimeError_) or not isinstance(exc, Exception):
                raise
            reason = (f"its holder did not answer within {HOLDER_TIMEOUT:g}s"
                      if isinstance(exc, TimeoutError) else str(exc))
            raise RuntimeError_(f"failed to set up the pod sandbox: {reason}",
                                "CreatePodSandboxError") from exc
        return sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Kill the pod's containers and holder, release its network; idempotent."""
        record = self._sandboxes.get(sandbox_id)
        if record is None:
            return
        for container in self._containers_of(sandbox_id):
            if container.state == RUNNING:
                await self.stop_container(container.id, 0)
        await self._kill_holder(record)
        if self.network is not None and record.own_network:
            await self.network.remove_pod(sandbox_id)
        linux.unmount_tree(self._files.sandbox_dir(sandbox_id))
        # The pod's group may already hold a newer sandbox's containers: only if empty.
        self.cgroups.remove_if_empty(record.config.uid or sandbox_id)
        record.stopped = True
        record.ip = ""
        if os.path.isdir(self._files.sandbox_dir(sandbox_id)):
            self._save_sandbox(record)

    async def _kill_holder(self, record: SandboxRecord) -> None:
        if not linux.signal_process(record.holder_pid, record.holder_start, signal.SIGKILL):
            return
        deadline = time.monotonic() + KILL_WAIT
        while (linux.process_alive(record.holder_pid, record.holder_start)
               and time.monotonic() < deadline):
            await asyncio.sleep(0.002)
        record.alive = False

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        if sandbox_id not in self._sandboxes:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for container in self._containers_of(sandbox_id):
            await self.remove_container(container.id)
        self._files.remove_sandbox(sandbox_id)
        self._sandboxes.pop(sandbox_id, None)

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self._sandbox(sandbox_id).status()

    async def list_pod_sandboxes(self) -> list[SandboxStatus]:
        return [record.status() for record in self._sandboxes.values()]

    # ---- containers -----------------------------------------------------------------

    def _container(self, container_id: str) -> ContainerRecord:
        record = self._containers.get(container_id)
        if record is None:
            raise RuntimeError_(f"container {container_id} not found", "NotFound")
        return record

    def _containers_of(self, sandbox_id: str) -> list[ContainerRecord]:
        return [c for c in self._containers.values() if c.sandbox_id == sandbox_id]

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sandbox = self._sandbox(sandbox_id)
        if not sandbox.ready:
            raise RuntimeError_(f"sandbox {sandbox_id} is not ready", "CreateContainerError")
        if not config.argv:
            raise RuntimeError_(f'container "{config.name}" has no command to run',
                                "CreateContainerError")
        container_id = secrets.token_hex(32)
        # The shim makes the group (and sets its limits) when it starts the container.
        cgroup = None
        if self.cgroups.available:
            cgroup = f"{sandbox.config.uid or sandbox_id}/{container_id}"
        record = ContainerRecord(id=container_id, sandbox_id=sandbox_id, config=config,
                                 created_at=time.time(), cgroup=cgroup)
        os.mkdir(self._files.container_dir(container_id), 0o700)
        replace_file(self._files.container_file(container_id, "container.json"),
                     orjson.dumps(record.to_json()))
        self._containers[container_id] = record
        return container_id

    async def start_container(self, container_id: str) -> None:
        record = self._container(container_id)
        if record.state != CREATED:
            raise RuntimeError_(f"container {container_id} is not in created state",
                                "RunContainerError")
        sandbox = self._sandbox(record.sandbox_id)
        if not sandbox.ready:
            raise RuntimeError_(f"sandbox {sandbox.id} is not ready", "RunContainerError")
        try:
            sock, reply = await shim_start(sandbox.id, self._shim_request(record, sandbox))
        except OSError as exc:
            raise RuntimeError_(f"the pod's shim is gone: {exc}", "RunContainerError") from exc
        if "error" in reply:
            sock.close()
            # The shim recorded the failure before answering.
            record.apply_shim_status(read_json(self._files.container_file(record.id,
                                                                      "status.json")))
            self._exit_event(record.id).set()
            raise RuntimeError_(reply["error"], "RunContainerError")
        record.apply_shim_status(reply)
        self._watch_container(record.id, sock)

    def _cgroup_join(self, record: ContainerRecord) -> list[str]:
        return self.cgroups.join_files(record.cgroup) if record.cgroup else []

    def _shim_request(self, record: ContainerRecord, sandbox: SandboxRecord) -> dict[str, Any]:
        return requests.shim_request(
            record, sandbox, self._settings, sandbox_dir=self._files.sandbox_dir(sandbox.id),
            status_path=self._files.container_file(record.id, "status.json"),
            cgroup_join=self._cgroup_join(record))

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns once it has exited."""
        record = self._container(container_id)
        if record.state != RUNNING:
            return
        exited = self._exit_event(container_id)
        if timeout > 0 and linux.signal_process(record.pid, record.start_time, signal.SIGTERM):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(exited.wait(), timeout)
        if record.state == RUNNING:
            linux.signal_process(record.pid, record.start_time, signal.SIGKILL)
            try:
                await asyncio.wait_for(exited.wait(), KILL_WAIT)
            except TimeoutError:
                raise RuntimeError_(f"container {container_id} did not stop") from None

    async def remove_container(self, container_id: str) -> None:
        record = self._containers.get(container_id)
        if record is None:
            return
        if record.state == RUNNING:
            await self.stop_container(container_id, 0)
        if record.cgroup:
            await asyncio.to_thread(self.cgroups.remove, record.cgroup)
        remember_mount_points(self.state_dir, record.created)
        self._files.remove_container(container_id)
        self._containers.pop(container_id, None)
        self._exited.pop(container_id, None)
        sock = self._shim_watches.pop(container_id, None)
        if sock is not None:
            asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).status()

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c.status() for c in self._containers.values()
                if sandbox_id is None or c.sandbox_id == sandbox_id]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        """Block until the container has exited (beyond base.Runtime)."""
        record = self._container(container_id)
        if record.state == RUNNING:
            await self._exit_event(container_id).wait()
        return record.status()

    # ---- streaming ------------------------------------------------------------------

    def _running(self, container_id: str) -> tuple[ContainerRecord, SandboxRecord]:
        record = self._container(container_id)
        if record.state != RUNNING:
            raise RuntimeError_(f"container {container_id} is not running")
        return record, self._sandbox(record.sandbox_id)

    async def exec(self, container_id: str, argv: list[str], *, tty: bool,
                   stdin: bool) -> ExecSession:
        record, sandbox = self._running(container_id)
        if not argv:
            raise RuntimeError_("exec needs a command")
        request = requests.exec_request(record, sandbox, self._settings, argv=argv, tty=tty,
                                        cgroup_join=self._cgroup_join(record))
        return await ExecSession.start(self._launcher.connect, request, tty=tty, stdin=stdin)

    async def attach(self, container_id: str, *, tty: bool, stdin: bool) -> AttachSession:
        record, sandbox = self._running(container_id)
        return await AttachSession.open(sandbox.id, container_id, tty=record.config.tty,
                                        stdin=stdin)

    async def port_forward(self, sandbox_id: str, port: int
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to `port` on the pod's loopback, made inside its netns."""
        sandbox = self._sandbox(sandbox_id)
        if not sandbox.ready or sandbox.holder_pid is None or sandbox.holder_start is None:
            raise RuntimeError_(f"sandbox {sandbox_id} is not ready")
        if not sandbox.own_network:
            return await connect_loopback(None, port)
        try:
            netns = linux.open_namespaces(sandbox.holder_pid, sandbox.holder_start, ["net"])
        except OSError as exc:
            raise RuntimeError_(f"sandbox {sandbox_id} is gone") from exc
        try:
            return await connect_loopback(f"/proc/self/fd/{netns['net']}", port)
        finally:
            os.close(netns["net"])
