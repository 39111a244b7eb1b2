"""Starting and stopping one container of a pod, as the kubelet does.

Starting: respect the CrashLoopBackOff window (recording BackOff and the
waiting reason while it lasts), resolve the environment and mounts, create
and start the container, then run its postStart hook. Each step's failure
leaves a waiting reason (CreateContainerConfigError, CreateContainerError,
RunContainerError, PostStartHookError) that the status reports until a start
succeeds, and the events upstream records: Pulled, Created, Started, Failed,
BackOff, FailedPostStartHook.

Stopping: the Killing event, the preStop hook within the grace period, then
the runtime's stop with what is left of it (at least 2 s), SIGTERM then
SIGKILL. The grace period is the pod's deletion grace period, else the
probe's own for a probe kill, else terminationGracePeriodSeconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubi.node.agent import dnsfiles
from kubi.node.agent.actions import KILL_LIVENESS, KILL_STARTUP, KillInfo
from kubi.node.agent.backoff import go_duration, stable_key
from kubi.node.agent.containerconfig import (
    CREATE_CONTAINER_CONFIG_ERROR,
    CREATE_CONTAINER_ERROR,
    ContainerConfigError,
    build_container_config,
    spec_hash,
)
from kubi.node.agent.context import NodeContext
from kubi.node.agent.handlers import Target, run_hook
from kubi.node.agent.podruntime import PodRuntime
from kubi.node.agent.podstatus import WaitingReason
from kubi.node.envvars import ConfigError
from kubi.node.runtime.base import EXITED, RUNNING, ContainerStatus, Mount, RuntimeError_

if TYPE_CHECKING:
    from kubi.node.agent.worker import PodWorker

log = logging.getLogger(__name__)

MIN_GRACE = 2
DEFAULT_GRACE = 30
KEEP_ATTEMPTS = 2
# What a runtime call may fail with, short of a bug: reported, then retried.
RUNTIME_ERRORS = (RuntimeError_, OSError, LookupError, ValueError)
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
RUN_CONTAINER_ERROR = "RunContainerError"
POST_START_HOOK_ERROR = "PostStartHookError"
ETC_HOSTS = "/etc/hosts"
_LOG_NAME = re.compile(r"^(\d+)\.log(\..*)?$")


def container_spec(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if c.get("name") == name:
            return c
    return {"name": name}


def format_pod(pod: dict[str, Any]) -> str:
    """`name_namespace(uid)`, how the kubelet names a pod in messages."""
    md = pod["metadata"]
    return f"{md['name']}_{md.get('namespace', '')}({md.get('uid', '')})"


def grace_period(pod: dict[str, Any], container: dict[str, Any], reason: str) -> int:
    md, spec = pod["metadata"], pod.get("spec") or {}
    if md.get("deletionGracePeriodSeconds") is not None:
        return int(md["deletionGracePeriodSeconds"])
    probe = {KILL_LIVENESS: "livenessProbe", KILL_STARTUP: "startupProbe"}.get(reason)
    if probe and (container.get(probe) or {}).get("terminationGracePeriodSeconds") is not None:
        return int(container[probe]["terminationGracePeriodSeconds"])
    if spec.get("terminationGracePeriodSeconds") is not None:
        return int(spec["terminationGracePeriodSeconds"])
    return DEFAULT_GRACE


def restart_count_from_logs(directory: str) -> int:
    """The next attempt number judging by the log files already there (0 if none)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    counts = [int(m.group(1)) + 1 for m in map(_LOG_NAME.match, names) if m]
    return max(counts, default=0)


def _write_hosts(path: Path, text: str) -> None:
    try:
        current: str | None = path.read_text()
    except OSError:
        current = None
    if current is None:
        _create_file(path, text)
    elif current != text:
        # Containers already running keep the file they have (a bind mount
        # holds its inode): a new one replaces it.
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


def _create_file(path: Path, text: str) -> None:
    """Write a new file in one go (a file found half-written is replaced later)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    with open(fd, "w") as f:
        # Whatever the agent's umask: containers running as any user read it.
        os.fchmod(fd, 0o644)
        f.write(text)


class ContainerOps:
    def __init__(self, worker: PodWorker) -> None:
        self.worker = worker

    @property
    def ctx(self) -> NodeContext:
        return self.worker.ctx

    def _event(self, container: str, kind: str, reason: str, message: str) -> None:
        self.ctx.event(self.worker.pod, container, kind, reason, message)

    def _fail(self, name: str, reason: str, message: str) -> None:
        self.worker.reasons[name] = WaitingReason(reason, message)
        self._event(name, "Warning", "Failed", f"Error: {message}")

    # ---- starting

    def _in_backoff(self, container: dict[str, Any], view: PodRuntime) -> float | None:
        """When the container may start if it must still wait, else None (and arm the next wait)."""
        name = container.get("name", "")
        exited = next((c for c in view.attempts(name) if c.state == EXITED), None)
        if exited is None:
            return None
        pod, backoff = self.worker.pod, self.ctx.backoff
        key = stable_key(pod, name, spec_hash(container))
        wait = backoff.remaining(key, exited.finished_at)
        if wait > 0:
            self._event(name, "Warning", "BackOff",
                        f"Back-off restarting failed container {name} in pod {format_pod(pod)}")
            self.worker.reasons[name] = WaitingReason(
                CRASH_LOOP_BACK_OFF, f"back-off {go_duration(backoff.get(key))} restarting "
                f"failed container={name} pod={format_pod(pod)}")
            return self.ctx.clock() + wait
        backoff.next(key, exited.finished_at)
        return None

    async def start(self, container: dict[str, Any], view: PodRuntime, *,
                    init: bool) -> tuple[bool, float | None]:
        """Start one container; (started, when to retry if it must wait)."""
        wait_until = self._in_backoff(container, view)
        if wait_until is not None:
            return False, wait_until
        worker, name = self.worker, container.get("name", "")
        sandbox = view.sandbox
        if sandbox is None:
            return False, self.ctx.clock() + self.ctx.retry_delay
        latest = view.latest(name)
        container_logs = worker.log_dir / name
        attempt = latest.attempt + 1 if latest else restart_count_from_logs(str(container_logs))
        image = container.get("image", "")
        self._event(name, "Normal", "Pulled",
                    f'Container image "{image}" already present on machine')
        retry = self.ctx.clock() + self.ctx.retry_delay
        try:
            env, warnings = await self.ctx.env(worker.pod, container, worker.pod_ip,
                                               self.ctx.host_ip)
            for reason, message in warnings:
                self._event("", "Warning", reason, message)
            mounts = await self.ctx.volumes.mounts(worker.pod, container, env, worker.pod_dir)
            mounts += await self._hosts_mount(container, mounts)
            # The runtime makes the container's log directory, as containerd does.
            config = build_container_config(worker.pod, container, env=env, attempt=attempt,
                                            log_path=str(container_logs / f"{attempt}.log"),
                                            init=init, mounts=mounts)
        except (ContainerConfigError, ConfigError) as exc:
            self._fail(name, exc.reason, str(exc))
            return False, retry
        except Exception as exc:
            if isinstance(getattr(exc, "reason", None), str):
                self._fail(name, exc.reason, str(exc))  # type: ignore[attr-defined]
                return False, retry
            # An env or mount source failing in an unexpected way still only holds
            # this container back.
            log.exception("pod %s: configuring container %s failed", worker.key, name)
            self._fail(name, CREATE_CONTAINER_CONFIG_ERROR, "internal error, see the agent log")
            return False, retry
        try:
            container_id = await worker.runtime.create_container(sandbox.id, config)
        except RUNTIME_ERRORS as exc:
            reason = exc.reason if isinstance(exc, RuntimeError_) and \
                exc.reason.startswith("CreateContainer") else CREATE_CONTAINER_ERROR
            self._fail(name, reason, str(exc))
            return False, retry
        self._event(name, "Normal", "Created", f"Created container: {name}")
        try:
            await worker.runtime.start_container(container_id)
        except RUNTIME_ERRORS as exc:
            self._fail(name, RUN_CONTAINER_ERROR, str(exc))
            return False, None
        self._event(name, "Normal", "Started", f"Started container {name}")
        hook = (container.get("lifecycle") or {}).get("postStart")
        if hook:
            failure = await run_hook(hook, self._target(container, container_id),
                                     pod_name=format_pod(worker.pod),
                                     session=self.ctx.probes.session)
            if failure is not None:
                # The event leaves the hook's output out: it may carry secrets.
                self._event(name, "Warning", "FailedPostStartHook", "PostStartHook failed")
                await self.kill(KillInfo(container_id, name, "FailedPostStartHook"))
                worker.reasons[name] = WaitingReason(POST_START_HOOK_ERROR, failure)
                return False, None
        worker.reasons.pop(name, None)
        return True, None

    async def _hosts_mount(self, container: dict[str, Any], mounts: list[Mount]
                           ) -> list[Mount]:
        """The pod's /etc/hosts with its IP, bound into the container.

        The sandbox's own hosts file is written before the network gives the
        pod its address; as the kubelet does, each container gets a file that
        maps the pod's IP (and FQDN) instead, unless it mounts its own. The
        file is written in the event loop: the pods' directories are a tmpfs
        wherever containers get mounts (agent/volumes.py)."""
        worker = self.worker
        spec = worker.pod.get("spec") or {}
        if spec.get("hostNetwork") or not worker.pod_ip or \
                any(m.container_path == ETC_HOSTS for m in mounts):
            return []
        path = worker.pod_dir / "etc-hosts"
        _write_hosts(path, dnsfiles.hosts_file(worker.pod, [worker.pod_ip]))
        return [Mount(host_path=str(path), container_path=ETC_HOSTS, is_file=True)]

    def _target(self, container: dict[str, Any], container_id: str) -> Target:
        return Target(self.worker.runtime, container_id, container, self.worker.pod_ip)

    # ---- stopping

    async def kill(self, info: KillInfo) -> None:
        worker = self.worker
        container = container_spec(worker.pod, info.name)
        grace = grace_period(worker.pod, container, info.reason)
        self._event(info.name, "Normal", "Killing",
                    info.message or f"Stopping container {info.name}")
        hook = (container.get("lifecycle") or {}).get("preStop")
        if hook and grace > 0:
            began = self.ctx.clock()
            try:
                failure = await asyncio.wait_for(
                    run_hook(hook, self._target(container, info.container_id),
                             pod_name=format_pod(worker.pod), session=self.ctx.probes.session,
                             timeout=grace), grace)
            except TimeoutError:
                failure = None
            if failure is not None:
                self._event(info.name, "Warning", "FailedPreStopHook", "PreStopHook failed")
            grace -= int(self.ctx.clock() - began)
        try:
            await worker.runtime.stop_container(info.container_id, max(grace, MIN_GRACE))
        except RUNTIME_ERRORS as exc:
            log.warning("pod %s: stopping container %s failed: %s", worker.key, info.name, exc)
        self.ctx.probes.forget(info.container_id)

    # ---- probes and garbage

    def ensure_probes(self, view: PodRuntime) -> None:
        worker = self.worker
        reported = {s.get("containerID"): s for s in
                    ((worker.pod.get("status") or {}).get("containerStatuses") or []) +
                    ((worker.pod.get("status") or {}).get("initContainerStatuses") or [])}
        for status in view.running():
            container = container_spec(worker.pod, status.name)
            before = reported.get(f"{self.ctx.scheme}://{status.id}") or {}
            self.ctx.probes.ensure(worker.pod, container, status, worker.pod_ip, worker.key,
                                   was_started=bool(before.get("started")),
                                   was_ready=bool(before.get("ready")))

    async def prune(self, view: PodRuntime) -> None:
        """Keep the current and the previous attempt of each container; drop older ones."""
        seen: dict[str, int] = {}
        for status in view.containers:
            seen[status.name] = seen.get(status.name, 0) + 1
            if seen[status.name] <= KEEP_ATTEMPTS or status.state == RUNNING:
                continue
            await self._remove(status)

    async def _remove(self, status: ContainerStatus) -> None:
        try:
            await self.worker.runtime.remove_container(status.id)
        except RUNTIME_ERRORS as exc:
            log.debug("pod %s: removing container %s: %s", self.worker.key, status.id, exc)
            return
        if status.log_path and status.log_path.startswith(str(self.worker.log_dir)):
            try:
                os.unlink(status.log_path)
            except OSError:
                pass
