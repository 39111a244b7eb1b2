"""What the host runtime remembers about each sandbox and container.

Records are plain dataclasses saved as JSON (state.py). A container record
merges two sources: the runtime's own file (config, creation) and the shim's
status.json (pids, start, exit), which is re-read whenever the shim exits.
Conversion to the CRI-shaped statuses of base.py happens here, so the
runtime proper only decides when things change. Each record keeps the
status it last made until one of its fields is assigned: every pod worker
lists the runtime several times per sync, and with many pods that listing
would otherwise rebuild every status each time. Callers must treat the
statuses they get as read-only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubi.node.runtime.base import (
    CREATED,
    EXITED,
    RUNNING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    ContainerConfig,
    ContainerStatus,
    Mount,
    SandboxConfig,
    SandboxStatus,
)

# Exit code reported when a container's shim vanished without recording one.
LOST_EXIT_CODE = 255

S = TypeVar("S")


class _CachedStatus(Generic[S]):
    """Keeps the record's status until any field of the record is assigned."""

    _status: S | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "_status":
            object.__setattr__(self, "_status", None)

    def status(self) -> S:
        if self._status is None:
            object.__setattr__(self, "_status", self._make_status())
        assert self._status is not None
        return self._status

    def _make_status(self) -> S:
        raise NotImplementedError


@dataclass
class SandboxRecord(_CachedStatus[SandboxStatus]):
    id: str
    config: SandboxConfig
    created_at: float
    holder_pid: int | None = None
    holder_start: int | None = None
    ip: str = ""
    # Whether the holder made a network namespace of its own for the pod.
    own_network: bool = False
    stopped: bool = False
    # Kept in memory only: whether the holder process still lives.
    alive: bool = field(default=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        # Shallow copies (asdict's deep one costs more than writing the file).
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "alive"}
        data["config"] = dict(vars(self.config))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxRecord:
        data = dict(data)
        data["config"] = SandboxConfig(**data["config"])
        return cls(**data)

    @property
    def ready(self) -> bool:
        return self.alive and not self.stopped

    def namespace_path(self) -> str:
        """The pod's own network namespace, through its holder, while the
        sandbox is ready ("" otherwise, or without a namespace of its own)."""
        if self.own_network and self.holder_pid and self.ready:
            return f"/proc/{self.holder_pid}/ns/net"
        return ""

    def _make_status(self) -> SandboxStatus:
        c = self.config
        return SandboxStatus(
            id=self.id, name=c.name, namespace=c.namespace, uid=c.uid,
            state=SANDBOX_READY if self.ready else SANDBOX_NOTREADY, ip=self.ip,
            created_at=self.created_at, netns_path=self.namespace_path(),
            labels=dict(c.labels))


@dataclass
class ContainerRecord(_CachedStatus[ContainerStatus]):
    id: str
    sandbox_id: str
    config: ContainerConfig
    created_at: float
    cgroup: str | None = None
    # Written by the shim.
    pid: int | None = None
    start_time: int | None = None
    shim_pid: int | None = None
    shim_start_time: int | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    created: list[str] = field(default_factory=list)

    _SHIM_FIELDS = ("pid", "start_time", "shim_pid", "shim_start_time", "started_at",
                    "finished_at", "exit_code", "reason", "message", "created")

    def to_json(self) -> dict[str, Any]:
        config = {**vars(self.config), "mounts": [vars(m) for m in self.config.mounts]}
        return {"id": self.id, "sandbox_id": self.sandbox_id, "config": config,
                "created_at": self.created_at, "cgroup": self.cgroup}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerRecord:
        config = dict(data["config"])
        config["mounts"] = [Mount(**m) for m in config.get("mounts") or []]
        return cls(id=data["id"], sandbox_id=data["sandbox_id"],
                   config=ContainerConfig(**config), created_at=data["created_at"],
                   cgroup=data.get("cgroup"))

    def apply_shim_status(self, data: dict[str, Any] | None) -> None:
        for name in self._SHIM_FIELDS:
            if data and name in data and data[name] is not None:
                setattr(self, name, data[name])

    @property
    def state(self) -> str:
        if self.exit_code is not None:
            return EXITED
        if self.pid:
            return RUNNING
        return CREATED

    def mark_lost(self, finished_at: float) -> None:
        """The shim is gone without recording an exit; so is the container (it
        dies with its shim)."""
        self.exit_code = LOST_EXIT_CODE
        self.reason = "Error"
        self.message = "the container's shim exited without recording the container's exit"
        self.finished_at = finished_at

    def _make_status(self) -> ContainerStatus:
        c = self.config
        return ContainerStatus(
            id=self.id, sandbox_id=self.sandbox_id, name=c.name, state=self.state,
            attempt=c.attempt, image=c.image, pid=self.pid, created_at=self.created_at,
            started_at=self.started_at, finished_at=self.finished_at,
            exit_code=self.exit_code, reason=self.reason, message=self.message,
            log_path=c.log_path, labels=dict(c.labels))
