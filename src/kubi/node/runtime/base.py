"""The container runtime interface the node agent programs against.

It is shaped like Kubernetes' CRI: a pod is a *sandbox* (its namespaces, its
network, its hostname and DNS files) holding *containers* (processes). Each
runtime handler implements this protocol: `host` runs containers as processes
from the node's own filesystem inside the sandbox's Linux namespaces, `sim`
only simulates them. The agent chooses the handler per pod from its
`runtimeClassName` (or the node's default).

Everything a runtime knows is also written under its state directory, so a
restarted agent can list the sandboxes and containers that are still running
and adopt them instead of starting them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Container states, as the CRI names them.
CREATED = "CONTAINER_CREATED"
RUNNING = "CONTAINER_RUNNING"
EXITED = "CONTAINER_EXITED"
UNKNOWN = "CONTAINER_UNKNOWN"

SANDBOX_READY = "SANDBOX_READY"
SANDBOX_NOTREADY = "SANDBOX_NOTREADY"


class RuntimeError_(Exception):
    """A runtime operation failed; `reason` is the kubelet reason to report
    (e.g. `CreateContainerError`, `RunContainerError`)."""

    def __init__(self, message: str, reason: str = "RunContainerError") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Mount:
    host_path: str
    container_path: str
    readonly: bool = False
    # For a file bind such as a subPath; directories are created on demand.
    is_file: bool = False


@dataclass
class SandboxConfig:
    name: str
    namespace: str
    uid: str
    hostname: str
    # Full contents of the pod's /etc/hosts and /etc/resolv.conf.
    hosts_file: str
    resolv_conf: str
    host_network: bool = False
    share_process_namespace: bool = False
    # The directory for this pod's container logs (CRI log format files).
    log_directory: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    runtime_handler: str = "host"


@dataclass
class SandboxStatus:
    id: str
    name: str
    namespace: str
    uid: str
    state: str
    ip: str = ""
    created_at: float = 0.0
    # Path of the network namespace (for exec-free port forwarding and probes).
    netns_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerConfig:
    name: str
    image: str
    # The process to run: command + args, after $(VAR) expansion.
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    mounts: list[Mount] = field(default_factory=list)
    log_path: str = ""
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    memory_limit_bytes: int | None = None
    cpu_limit_millis: int | None = None
    attempt: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    state: str
    attempt: int = 0
    image: str = ""
    pid: int | None = None
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int | None = None
    # Upstream's terminated reasons: Completed, Error, OOMKilled, ContainerCannotRun.
    reason: str = ""
    message: str = ""
    log_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)


class StreamSession(Protocol):
    """A running exec or an attach: byte streams in and out, and the exit."""

    async def write_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def read_stdout(self) -> bytes: ...  # b"" at end of stream
    async def read_stderr(self) -> bytes: ...  # b"" at end (or always with a tty)
    async def resize(self, width: int, height: int) -> None: ...
    async def wait(self) -> int: ...  # the exit code (exec) or container's (attach)
    async def close(self) -> None: ...


class Runtime(Protocol):
    handler: str

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def run_pod_sandbox(self, config: SandboxConfig) -> str: ...
    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...
    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...
    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus: ...
    async def list_pod_sandboxes(self) -> list[SandboxStatus]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str: ...
    async def start_container(self, container_id: str) -> None: ...
    async def stop_container(self, container_id: str, timeout: float) -> None: ...
    async def remove_container(self, container_id: str) -> None: ...
    async def container_status(self, container_id: str) -> ContainerStatus: ...
    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    async def exec(self, container_id: str, argv: list[str], *, tty: bool,
                   stdin: bool) -> StreamSession: ...
    async def attach(self, container_id: str, *, tty: bool, stdin: bool) -> StreamSession: ...
    async def port_forward(self, sandbox_id: str, port: int): ...  # (reader, writer)
