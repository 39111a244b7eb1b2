"""What the runtime asks for: container starts (of a pod's shim) and execs
(of the launcher).

Pure functions from records to the JSON requests that shim.py and
execproc.py act on. A container is forked by its pod's shim, the sandbox
holder, so it starts in the pod's IPC, UTS and network namespaces (a
hostNetwork pod's holder has the node's network and UTS) without joining
anything; it gets a PID namespace of its own (or the holder's, with
shareProcessNamespace) and a mount namespace holding the pod's files and
its volumes. An exec joins every namespace of the container's process, its
mount namespace included. Without isolation there is nothing to join.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kubi.node.runtime.host.container import container_env
from kubi.node.runtime.host.records import ContainerRecord, SandboxRecord


@dataclasses.dataclass
class Settings:
    """Runtime-wide choices that shape every request."""

    isolated: bool
    cgroup_root: str
    log_max_bytes: int
    log_max_files: int


def pod_files(sandbox_dir: str | Path) -> dict[str, str]:
    """Node paths a container sees replaced by the pod's own files."""
    return {"/etc/hosts": f"{sandbox_dir}/hosts",
            "/etc/resolv.conf": f"{sandbox_dir}/resolv.conf",
            "/etc/hostname": f"{sandbox_dir}/hostname",
            "/dev/shm": f"{sandbox_dir}/shm"}


def process(record: ContainerRecord, sandbox: SandboxRecord, settings: Settings, *,
            argv: list[str], tty: bool, join: list[str], cgroup_join: list[str]
            ) -> dict[str, Any]:
    """The process description container.py executes (container.ProcessSpec)."""
    c = record.config
    return {
        "argv": argv,
        "env": container_env(c.env, hostname=sandbox.config.hostname, uid=c.run_as_user,
                             tty=tty),
        "cwd": c.working_dir, "uid": c.run_as_user, "gid": c.run_as_group, "tty": tty,
        "cgroup_join": cgroup_join,
        "join": join if settings.isolated else [],
    }


def shim_request(record: ContainerRecord, sandbox: SandboxRecord, settings: Settings, *,
                 sandbox_dir: str | Path, status_path: str | Path, cgroup_join: list[str]
                 ) -> dict[str, Any]:
    c = record.config
    spec = process(record, sandbox, settings, argv=c.argv, tty=c.tty, join=[],
                   cgroup_join=cgroup_join)
    if settings.isolated:
        spec.update(new_mount_ns=True, mount_proc=True, pod_files=pod_files(sandbox_dir),
                    mounts=[{"host_path": m.host_path, "container_path": m.container_path,
                             "readonly": m.readonly, "is_file": m.is_file} for m in c.mounts])
    share_pid = settings.isolated and sandbox.config.share_process_namespace
    return {
        "op": "start", "container_id": record.id, "status_path": str(status_path),
        "log_path": c.log_path, "log_max_bytes": settings.log_max_bytes,
        "log_max_files": settings.log_max_files,
        "own_pid_ns": settings.isolated and not share_pid,
        "stdin": c.stdin, "stdin_once": c.stdin_once,
        "cgroup": record.cgroup, "cgroup_root": settings.cgroup_root,
        "memory_limit": c.memory_limit_bytes, "cpu_millis": c.cpu_limit_millis,
        "process": spec,
    }


def exec_request(record: ContainerRecord, sandbox: SandboxRecord, settings: Settings, *,
                 argv: list[str], tty: bool, cgroup_join: list[str]) -> dict[str, Any]:
    return {
        "op": "exec", "pid_ns": settings.isolated,
        "target": {"pid": record.pid, "start_time": record.start_time},
        "process": process(record, sandbox, settings, argv=argv, tty=tty,
                           join=["ipc", "uts", "net", "mnt"], cgroup_join=cgroup_join),
    }
