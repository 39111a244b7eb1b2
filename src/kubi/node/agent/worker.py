"""One pod's worker: reconcile the runtime with the pod until the pod is gone.

A worker loops: look at what the runtime holds for its pod, decide
(`actions.compute_pod_actions`), act (create the sandbox, kill and start
containers through `containers.ContainerOps`), report the status, then sleep
until woken — by a change of the pod, a container state change seen by the
relist, a probe result, or a back-off running out — or until the periodic
resync. Once the pod is being deleted (or has vanished from the API) the
worker terminates it: preStop hooks, SIGTERM, the grace period, SIGKILL,
the final status, then the pod object's deletion with gracePeriodSeconds 0
and a uid precondition, and the runtime's leftovers are removed.

A pod whose containers are all done for good (restartPolicy Never or
OnFailure) is finished: its sandbox is stopped and its containers kept, so
its logs stay readable, until the pod is deleted. An evicted pod (`evict`)
is finished the same way, whatever its restart policy, and reports phase
Failed with reason Evicted.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from kubi.api.meta import parse_time
from kubi.node.agent import dnsfiles
from kubi.node.agent.actions import KillInfo, PodActions, compute_pod_actions, is_sidecar
from kubi.node.agent.backoff import pod_key_prefix
from kubi.node.agent.containers import RUNTIME_ERRORS, ContainerOps, container_spec
from kubi.node.agent.context import NodeContext
from kubi.node.agent.pleg import view_states
from kubi.node.agent.podruntime import PodRuntime
from kubi.node.agent.podstatus import StatusInputs, WaitingReason, build_pod_status
from kubi.node.agent.probes import LIVENESS, STARTUP
from kubi.node.runtime.base import CREATED, RUNNING, SANDBOX_READY, Runtime, SandboxConfig

log = logging.getLogger(__name__)

RESYNC = 10.0
ERROR_RETRY = 1.0
EVICTED = "Evicted"


def deletion_grace(pod: dict[str, Any]) -> int | None:
    """The grace period of a pod being deleted, None while it is not."""
    md = pod["metadata"]
    if not md.get("deletionTimestamp"):
        return None
    return int(md.get("deletionGracePeriodSeconds") or 0)


def unchanged_but_for(before: set[tuple[str, str]], after: set[tuple[str, str]]) -> bool:
    """Whether a pod's sandboxes and containers (pleg.view_states) went from
    `before` to `after` only by what a sync itself does: create and start
    containers, make a sandbox. An exit, a stopped sandbox or anything gone
    is news the worker has yet to act on."""
    if {key for key, _ in before} - {key for key, _ in after}:
        return False
    return all(state in (CREATED, RUNNING, SANDBOX_READY) for _, state in after - before)


def pod_key(pod: dict[str, Any]) -> str:
    md = pod["metadata"]
    return f"{md.get('namespace', '')}/{md['name']}"


def log_directory(root: Path, pod: dict[str, Any]) -> Path:
    """Where a pod's container logs live, as upstream lays out /var/log/pods."""
    md = pod["metadata"]
    return root / f"{md.get('namespace', '')}_{md['name']}_{md.get('uid', '')}"


class PodWorker:
    def __init__(self, ctx: NodeContext, runtime: Runtime, pod: dict[str, Any], *,
                 handler: str = "host") -> None:
        self.ctx = ctx
        self.runtime = runtime
        self.handler = handler
        self.pod = pod
        self.key = pod_key(pod)
        self.uid: str = pod["metadata"].get("uid", "")
        self.log_dir = log_directory(ctx.log_root, pod)
        self.pod_dir = ctx.pod_root / self.uid
        self.reasons: dict[str, WaitingReason] = {}
        self.view = PodRuntime(self.uid)
        # What the runtime held when the current (or last) sync decided what to do.
        self._acted_on: set[tuple[str, str]] = set()
        self.pod_ip = (pod.get("status") or {}).get("podIP", "") or ""
        stored_start = parse_time((pod.get("status") or {}).get("startTime"))
        self.start_time = stored_start or ctx.clock()
        self.finished = False
        self.removed = False
        self.done = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The sync or termination under way, which a deletion (or a shorter grace
        # period) interrupts so that it takes effect at once.
        self._step: asyncio.Future[float | None] | None = None
        self._interrupted = False
        self._network_warned = False
        # Once this pod's volumes have failed, its sandbox waits for them again.
        self._volumes_failed = False
        # The eviction message once the node evicted the pod (phase Failed, reason Evicted).
        self.eviction: str | None = None
        self.ops = ContainerOps(self)

    # ---- what the agent calls

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"pod-{self.key}")

    def update(self, pod: dict[str, Any], *, wake: bool = True) -> None:
        before = deletion_grace(self.pod)
        self.pod = pod
        after = deletion_grace(pod)
        if after is not None and (before is None or after < before):
            self._interrupt()
            wake = True
        if wake:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def observed(self) -> set[tuple[str, str]]:
        """The pod's sandboxes and containers with their states, as the worker
        last saw them (pleg.view_states)."""
        return view_states(self.view.sandboxes, self.view.containers)

    def vanished(self, pod: dict[str, Any] | None = None) -> None:
        """The pod is gone from the API: stop what runs without reporting."""
        if pod is not None:
            self.pod = pod
        self.removed = True
        self._interrupt()
        self._wake.set()

    def evict(self, message: str) -> None:
        """End the pod as the eviction manager does: record Evicted, stop every
        container for good and report phase Failed with reason Evicted."""
        if self.eviction is not None or self.finished or self.deleting or self.removed:
            return
        self.eviction = message
        self.ctx.event(self.pod, "", "Warning", EVICTED, message)
        self.finished = True
        self._wake.set()

    def _interrupt(self) -> None:
        if self._step is not None and not self._step.done():
            self._interrupted = True
            self._step.cancel()

    async def stop(self) -> None:
        """Stop working on the pod (the agent shuts down); its containers keep running."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def terminate_now(self) -> None:
        """Shut the pod's containers down and remove them (the node is being drained)."""
        await self.stop()
        await self._terminate(report=False)

    @property
    def deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    # ---- the loop

    async def _run(self) -> None:
        try:
            while True:
                terminating = self.removed or self.deleting
                step = self._terminate(report=not self.removed) if terminating else self.sync()
                self._step = asyncio.ensure_future(step)
                # Events wait while pods start (controllers/eventhold.py); a termination
                # mostly waits for grace periods, and holds nothing back.
                hold = None if terminating else self.ctx.event_hold
                if hold is not None:
                    hold.work_started()
                try:
                    due = await self._step
                except asyncio.CancelledError:
                    if not self._interrupted:
                        raise
                    # Interrupted by a deletion: start over with the new intent.
                    self._interrupted = False
                    continue
                except Exception:
                    log.exception("syncing pod %s failed", self.key)
                    due = self.ctx.clock() + ERROR_RETRY
                finally:
                    if hold is not None:
                        hold.work_ended()
                if terminating:
                    return
                if not unchanged_but_for(self._acted_on, self.observed()):
                    # Something ended while the sync ran: the relist will not
                    # wake us for what our last look already holds.
                    self._wake.set()
                await self._sleep(due)
        finally:
            self.done.set()

    async def _sleep(self, due: float | None) -> None:
        timeout = RESYNC if due is None else max(0.0, min(RESYNC, due - self.ctx.clock()))
        # asyncio.timeout, unlike wait_for, never swallows a cancellation that
        # arrives just as the event is set.
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    async def observe(self) -> PodRuntime:
        sandboxes = [s for s in await self.runtime.list_pod_sandboxes() if s.uid == self.uid]
        containers = []
        for own in sandboxes:
            containers.extend(await self.runtime.list_containers(own.id))
        self.view = PodRuntime.collect(self.uid, sandboxes, containers)
        sandbox = self.view.sandbox
        if sandbox is not None and sandbox.ip:
            self.pod_ip = sandbox.ip
        elif sandbox is not None and self.view.sandbox_ready and not self.pod_ip:
            # A sandbox without an address of its own shares the node's network.
            self.pod_ip = self.ctx.host_ip
        return self.view

    async def sync(self) -> float | None:
        """One reconciliation; when to come back at the latest (None: on the next event)."""
        view = await self.observe()
        self._acted_on = self.observed()
        if self.finished:
            if view.live():
                # Ended for good, yet something still runs (a status written
                # elsewhere, or an agent restart mid-way): stop it.
                await self._kill_all(view, {})
                await self._finish()
            else:
                self.report(view)
            return None
        probes = self.ctx.probes
        actions = compute_pod_actions(self.pod, view,
                                      liveness=lambda cid: probes.result(LIVENESS, cid),
                                      startup=lambda cid: probes.result(STARTUP, cid))
        if actions.create_sandbox and actions.sandbox_id:
            self.ctx.event(self.pod, "", "Normal", "SandboxChanged",
                           "Pod sandbox changed, it will be killed and re-created.")
        if actions.kill_pod:
            await self._kill_pod(view, actions)
            if not actions.create_sandbox:
                await self._finish()
                return None
        else:
            live = {c.id for c in view.live()}
            for info in actions.containers_to_kill.values():
                if info.container_id in live:
                    await self.ops.kill(info)
        if actions.create_sandbox:
            ready = await self._sandbox_and_volumes()
        elif actions.init_to_start or actions.containers_to_start:
            ready = await self._volumes_ready()
        else:
            ready = True
        if not ready:
            self.report(await self.observe())
            return self.ctx.clock() + self.ctx.retry_delay
        due = await self._start_containers(actions)
        view = await self.observe()
        self.ops.ensure_probes(view)
        await self.ops.prune(view)
        self.report(view)
        return due

    async def _start_containers(self, actions: PodActions) -> float | None:
        view = await self.observe() if (actions.create_sandbox or actions.containers_to_kill) \
            else self.view
        spec = self.pod.get("spec") or {}
        due: float | None = None

        def later(when: float | None) -> None:
            nonlocal due
            if when is not None:
                due = when if due is None else min(due, when)

        for idx in actions.init_to_start:
            container = (spec.get("initContainers") or [])[idx]
            started, retry = await self.ops.start(container, view, init=True)
            later(retry)
            if not started and not is_sidecar(container):
                return due
        for idx in actions.containers_to_start:
            container = (spec.get("containers") or [])[idx]
            _, retry = await self.ops.start(container, view, init=False)
            later(retry)
        return due

    # ---- volumes and sandbox

    async def _volumes_ready(self) -> bool:
        try:
            await self.ctx.volumes.setup(self.pod, self.pod_dir)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = getattr(exc, "event_message", None)
            if message is None:
                message = str(exc)
            log.debug("pod %s: volumes not ready: %s", self.key, message or exc, exc_info=True)
            if message:
                self.ctx.event(self.pod, "", "Warning", "FailedMount", message)
            self._volumes_failed = True
            return False
        return True

    async def _sandbox_and_volumes(self) -> bool:
        """The volumes and then the sandbox, as the kubelet orders them, yet made
        at the same time: a token for a projected volume is a round trip to the
        API server, a sandbox mostly the kernel's work. A sandbox made for volumes
        that then fail is removed again, so such a pod shows no sandbox (no IP,
        PodReadyToStartContainers False) while it waits, as upstream's does; its
        next tries make the sandbox only once the volumes are ready."""
        if self._volumes_failed:
            return await self._volumes_ready() and await self._create_sandbox() is not None
        volumes_ready, sandbox_id = await asyncio.gather(self._volumes_ready(),
                                                         self._create_sandbox())
        if not volumes_ready and sandbox_id is not None:
            await self._discard_sandbox(sandbox_id)
        return volumes_ready and sandbox_id is not None

    async def _discard_sandbox(self, sandbox_id: str) -> None:
        try:
            await self.runtime.stop_pod_sandbox(sandbox_id)
            await self.runtime.remove_pod_sandbox(sandbox_id)
        except RUNTIME_ERRORS as exc:
            log.warning("pod %s: removing sandbox %s failed: %s", self.key, sandbox_id, exc)

    async def _create_sandbox(self) -> str | None:
        """The new sandbox's id, or None when it could not be made now."""
        spec = self.pod.get("spec") or {}
        if not spec.get("hostNetwork") and not self.ctx.network_ready():
            if not self._network_warned:
                self._network_warned = True
                self.ctx.event(self.pod, "", "Warning", "NetworkNotReady",
                               "network is not ready: container runtime network not ready: "
                               "NetworkReady=false reason:NetworkPluginNotReady message:the "
                               "node has no podCIDR yet")
            return None
        md = self.pod["metadata"]
        # The runtime makes the log directory with the first container's log.
        config = SandboxConfig(
            name=md["name"], namespace=md.get("namespace", ""), uid=self.uid,
            hostname=dnsfiles.pod_hostname(self.pod),
            # The address is not known before the sandbox exists: containers get a
            # hosts file with it bound over this one (ContainerOps._hosts_mount).
            hosts_file=dnsfiles.hosts_file(self.pod, [], node_hosts=self.ctx.node_hosts()),
            resolv_conf=dnsfiles.resolv_conf(self.pod, node_resolv=self.ctx.node_resolv()),
            host_network=bool(spec.get("hostNetwork")),
            share_process_namespace=bool(spec.get("shareProcessNamespace")),
            log_directory=str(self.log_dir),
            labels=dict(md.get("labels") or {}),
            annotations=dict(md.get("annotations") or {}),
            runtime_handler=self.handler)
        try:
            return await self.runtime.run_pod_sandbox(config)
        except RUNTIME_ERRORS as exc:
            log.warning("pod %s: creating the sandbox failed: %s", self.key, exc)
            self.ctx.event(self.pod, "", "Warning", "FailedCreatePodSandBox",
                           f"Failed to create pod sandbox: {exc}")
            return None

    async def _stop_sandboxes(self, view: PodRuntime) -> None:
        for sandbox in view.sandboxes:
            if sandbox.state == SANDBOX_READY:
                try:
                    await self.runtime.stop_pod_sandbox(sandbox.id)
                except RUNTIME_ERRORS as exc:
                    log.warning("pod %s: stopping sandbox failed: %s", self.key, exc)

    # ---- stopping

    async def _kill_pod(self, view: PodRuntime, actions: PodActions) -> None:
        await self._kill_all(view, actions.containers_to_kill)
        await self._stop_sandboxes(await self.observe())

    async def _kill_all(self, view: PodRuntime, messages: dict[str, KillInfo]) -> None:
        kills = [messages.get(c.id) or KillInfo(c.id, c.name) for c in view.live()]
        await asyncio.gather(*(self.ops.kill(info) for info in kills))

    async def _finish(self) -> None:
        """Every container is done for good: stop the sandbox, report the end."""
        self.finished = True
        view = await self.observe()
        await self._stop_sandboxes(view)
        self.report(await self.observe())

    async def _terminate(self, *, report: bool) -> None:
        """Kill what runs (again, if a shorter grace period interrupted the last
        try), report the end, have the pod object deleted, remove the leftovers."""
        self.ctx.probes.stop_restarting_probes(self.uid)
        view = await self.observe()
        await self._kill_all(view, {})
        await self._stop_sandboxes(await self.observe())
        view = await self.observe()
        if report:
            self.report(view, terminal=True)
            self.ctx.statuses.delete_pod(self.key, self.uid)
        await self._remove(view)

    async def _remove(self, view: PodRuntime) -> None:
        self.ctx.probes.forget_pod(self.uid)
        for c in view.containers:
            try:
                await self.runtime.remove_container(c.id)
            except RUNTIME_ERRORS as exc:
                log.debug("pod %s: removing container %s: %s", self.key, c.id, exc)
        for sandbox in view.sandboxes:
            try:
                await self.runtime.remove_pod_sandbox(sandbox.id)
            except RUNTIME_ERRORS as exc:
                log.warning("pod %s: removing sandbox failed: %s", self.key, exc)
        try:
            await self.ctx.volumes.teardown(self.pod, self.pod_dir)
        except Exception:
            log.exception("pod %s: tearing down volumes failed", self.key)
        shutil.rmtree(self.log_dir, ignore_errors=True)
        shutil.rmtree(self.pod_dir, ignore_errors=True)
        self.ctx.backoff.forget_prefix(pod_key_prefix(self.pod))

    # ---- status

    def report(self, view: PodRuntime, *, terminal: bool = False) -> None:
        probes = self.ctx.probes
        terminal = terminal or (self.finished and not view.running())
        inputs = StatusInputs(
            host_ip=self.ctx.host_ip, scheme=self.ctx.scheme, pod_ip=self.pod_ip,
            start_time=self.start_time, terminal=terminal, reasons=dict(self.reasons),
            started=lambda s: probes.started(s, container_spec(self.pod, s.name)),
            ready=lambda s: probes.ready(s, container_spec(self.pod, s.name)))
        pod = self.pod
        if self.eviction is not None:
            # A terminal phase already reported stands, and conditions follow it.
            pod = {**pod, "status": {**(pod.get("status") or {}), "phase": "Failed"}}
        status = build_pod_status(pod, view, inputs)
        if self.eviction is not None:
            status.update(reason=EVICTED, message=self.eviction)
        self.ctx.statuses.set_status(self.key, self.uid, status)

    # ---- what the endpoint asks

    def running(self, container_id: str) -> bool:
        return any(c.id == container_id and c.state == RUNNING for c in self.view.containers)
