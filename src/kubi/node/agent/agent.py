"""The node agent: one real node of the cluster, as the kubelet is.

`Agent.start()` brings the node up in the kubelet's order: serve the HTTPS
endpoint (its port goes into the Node's daemonEndpoints), register the Node
with the machine's capacity, addresses and nodeInfo, keep its Lease and
status fresh, and watch the pods bound to it (one informer, field selector
`spec.nodeName`). The runtime comes up once the control plane has given the
node a podCIDR when it needs one (a `RuntimeFactory` receives the CIDR);
until then the node reports NotReady and pods wait. The endpoint needs the
TLS files (a serving certificate, and the CA whose client certificates it
accepts); without them it serves plain HTTP on loopback only.

With the runtime up, the agent first looks at what it already holds: pods
still present keep their running containers (their workers adopt them), and
sandboxes of pods deleted meanwhile are torn down. Then each pod gets a
`PodWorker`; the relist wakes workers on container state changes. Pods whose
RuntimeClass names the `sim` handler are simulated by `kubi.node.sim` on
this same node instead. `stop()` leaves pods running (a restarted agent
adopts them); `stop(drain=True)` removes them from the machine first.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.client.informer import Informer
from kubi.controllers.eventhold import EventHold
from kubi.controllers.events import NORMAL, EventBroadcaster
from kubi.node.agent import machine as machine_facts
from kubi.node.agent import node as node_report
from kubi.node.agent.containerconfig import LABEL_GRACE_PERIOD, EnvResolver, api_env_resolver
from kubi.node.agent.context import NodeContext, NoVolumes, PodHooks, PodVolumes, VolumeService
from kubi.node.agent.endpoints import WorkerEndpoints
from kubi.node.agent.pleg import PERIOD, Relist
from kubi.node.agent.probes import ProbeManager
from kubi.node.agent.server import AgentServer
from kubi.node.agent.tls import server_context
from kubi.node.agent.worker import PodWorker, log_directory
from kubi.node.heartbeat import TRANSIENT, NodeHeartbeat, register_node
from kubi.node.nodestatus import allocatable
from kubi.node.runtime.base import Runtime
from kubi.node.sim.ipam import IPAM
from kubi.node.sim.pods import NodeSlot, SimPodLifecycle
from kubi.node.status import TERMINAL_PHASES
from kubi.node.status_manager import PODS, PodStatusManager

log = logging.getLogger(__name__)

NODES = Resource("", "v1", "nodes", False, "Node")
SERVICES = Resource("", "v1", "services", True, "Service")
SIM_HANDLER = "sim"
RUNTIME_VERSION = "kubi-host://0.1"
REGISTRATION_RETRY_MAX = 7.0
RUNTIME_RETRY = 5.0

# Builds the runtime once the node's podCIDR is known.
RuntimeFactory = Callable[[str | None], Awaitable[Runtime]]


def sim_pod_cidr(pod_cidr: str | None) -> str | None:
    """The upper half of the node's podCIDR, where simulated pods take addresses."""
    if not pod_cidr:
        return None
    net = ipaddress.ip_network(pod_cidr, strict=False)
    if net.prefixlen >= net.max_prefixlen - 1:
        return str(net)
    return str(list(net.subnets(1))[1])


class _NodeFile:
    """A file of the node the pods' own files start from (/etc/hosts,
    /etc/resolv.conf), read again only once it changed: every sandbox asks."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._text = ""

    def __call__(self) -> str:
        try:
            st = os.stat(self.path)
        except OSError:
            self._seen, self._text = None, ""
            return ""
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            try:
                with open(self.path) as f:
                    self._text = f.read()
            except OSError:
                return ""
            self._seen = seen
        return self._text


def _as_runtime(source: Runtime | RuntimeFactory) -> Runtime | None:
    """The runtime itself, or None when `source` is a factory that makes one."""
    return cast(Runtime, source) if hasattr(source, "run_pod_sandbox") else None


class Agent:
    def __init__(self, client: Client, *, node_name: str, runtime: Runtime | RuntimeFactory,
                 data_dir: str | Path, default_handler: str = "host", port: int = 10250,
                 bind: str = "0.0.0.0", tls_cert: str | Path | None = None,
                 tls_key: str | Path | None = None, client_ca: str | Path | None = None,
                 env: EnvResolver | None = None, volumes: PodVolumes | None = None,
                 machine: machine_facts.MachineInfo | None = None,
                 require_pod_cidr: bool = True, runtime_version: str = RUNTIME_VERSION,
                 relist_period: float = PERIOD, heartbeat: float = 10.0,
                 status_workers: int = 16, events: EventBroadcaster | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.node_name = node_name
        self.data_dir = Path(data_dir)
        self.default_handler = default_handler
        self.require_pod_cidr = require_pod_cidr
        self.runtime_version = runtime_version
        self.relist_period = relist_period
        self.heartbeat_interval = heartbeat
        self.clock = clock
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.machine = machine or machine_facts.gather(self.data_dir, node_name)
        self.allocatable = allocatable(node_report.capacity(self.machine))
        self._runtime_source = runtime
        self.runtime: Runtime | None = None
        self.pod_cidr: str | None = None
        self._own_events = events is None
        self.events = events or EventBroadcaster(client)
        self.recorder = self.events.recorder("kubelet", host=node_name)
        self.pod_informer = Informer(client, PODS, field_selector=f"spec.nodeName={node_name}")
        self.node_informer = Informer(client, NODES, field_selector=f"metadata.name={node_name}")
        self.service_informer = Informer(client, SERVICES)
        self.statuses = PodStatusManager(client, lookup=self.pod_informer.get,
                                         workers=status_workers)
        self.probes = ProbeManager(self._runtime_of_sandbox, record=self._probe_event,
                                   on_change=self._wake_key, clock=clock)
        self.ctx = NodeContext(
            node_name=node_name, host_ip=self.machine.internal_ip, statuses=self.statuses,
            recorder=self.recorder, probes=self.probes,
            env=env or api_env_resolver(client, services=self.service_informer.list,
                                        allocatable=lambda: self.allocatable),
            log_root=self.data_dir / "logs", pod_root=self.data_dir / "pods",
            volumes=volumes or NoVolumes(),
            network_ready=lambda: self.pod_cidr is not None or not self.require_pod_cidr,
            node_hosts=_NodeFile("/etc/hosts"), node_resolv=_NodeFile("/etc/resolv.conf"),
            event_hold=EventHold(self.events.submit, busy=self.statuses.pending),
            clock=clock)
        self.sim = SimPodLifecycle(self.statuses, ipam=IPAM())
        self.sim_slot = NodeSlot(node_name, self.machine.internal_ip, None, self.recorder)
        self.sim.add_node(self.sim_slot)
        self.server: AgentServer | None = None
        if tls_cert and tls_key and client_ca:
            ssl_context = server_context(tls_cert, tls_key, client_ca)
        else:
            # Without TLS nothing can tell the API server from anyone else, so
            # the endpoint then only listens on loopback (tests, local tools).
            ssl_context, bind = None, "127.0.0.1"
        self._serve = (bind, port, ssl_context)
        self.port = port
        self.heartbeat: NodeHeartbeat | None = None
        self.workers: dict[str, PodWorker] = {}
        self._by_key: dict[str, PodWorker] = {}
        self._finished_uids: set[str] = set()
        self._ready = False
        self._cidr_known = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.relist: Relist | None = None

    # ---- start and stop

    async def start(self) -> None:
        self.ctx.log_root.mkdir(parents=True, exist_ok=True)
        self.ctx.pod_root.mkdir(parents=True, exist_ok=True)
        bind, port, ssl_context = self._serve
        self.server = AgentServer(WorkerEndpoints(self._by_key.get), bind=bind, port=port,
                                  ssl_context=ssl_context, clock=self.clock)
        self.port = await self.server.start()
        if self._own_events:
            self.events.start()
        node = await self._register()
        self._set_pod_cidr(node)
        self.node_informer.on_add(self._set_pod_cidr)
        self.node_informer.on_update(lambda old, new: self._set_pod_cidr(new))
        self.node_informer.start()
        self.heartbeat = NodeHeartbeat(
            self.client, node, status=self._node_status, lookup=self.node_informer.get,
            renew_interval=self.heartbeat_interval,
            status_update_interval=self.heartbeat_interval)
        await self.heartbeat.beat()
        self.heartbeat.start()
        for reason, message in node_report.starting_events(self.node_name):
            self._node_event(reason, message)
        self.statuses.start()
        self.service_informer.start()
        self.pod_informer.on_add(self._on_pod)
        self.pod_informer.on_update(lambda old, new: self._on_pod(new))
        self.pod_informer.on_delete(self._on_pod_deleted)
        self.pod_informer.start()
        await self.pod_informer.wait_synced()
        if isinstance(self.ctx.volumes, VolumeService):
            await self.ctx.volumes.start(self._pod_hooks())
        if _as_runtime(self._runtime_source) is not None:
            await self._bring_up_runtime()
        else:
            self._spawn(self._keep_bringing_up_runtime(), "agent-runtime")

    async def stop(self, *, drain: bool = False) -> None:
        """Stop the agent; with `drain`, first remove every pod from the machine."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.pod_informer.stop()
        workers = list(self.workers.values())
        if drain:
            await asyncio.gather(*(w.terminate_now() for w in workers), return_exceptions=True)
        else:
            await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        if isinstance(self.ctx.volumes, VolumeService):
            await self.ctx.volumes.stop(drain=drain)
        self.sim.close()
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        await self.node_informer.stop()
        await self.service_informer.stop()
        await self.probes.close()
        await self.statuses.stop()
        if self.server is not None:
            await self.server.stop()
        if self.runtime is not None:
            await self.runtime.close()
        if self.ctx.event_hold is not None:
            self.ctx.event_hold.release()
        if self._own_events:
            try:
                await asyncio.wait_for(self.events.flush(), 2.0)
            except TimeoutError:
                pass
            await self.events.stop()

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # ---- the Node

    async def _register(self) -> dict[str, Any]:
        desired = node_report.node_object(
            self.machine, name=self.node_name, port=self.port,
            runtime_version=self.runtime_version, default_handler=self.default_handler,
            handlers=self._handler_names())
        delay = 0.1
        while True:
            try:
                return await register_node(self.client, desired)
            except (StatusError, *TRANSIENT) as exc:
                if isinstance(exc, StatusError) and exc.code < 500 and exc.code != 429:
                    raise
                log.warning("node %s: registration failed, retrying: %s", self.node_name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REGISTRATION_RETRY_MAX)

    def _handler_names(self) -> list[str]:
        return sorted({self.default_handler, SIM_HANDLER})

    def _node_status(self) -> dict[str, Any]:
        ready = self._ready
        message = "" if ready else (
            "container runtime network not ready: NetworkReady=false reason:"
            "NetworkPluginNotReady message:waiting for the node's podCIDR"
            if self.require_pod_cidr and self.pod_cidr is None
            else "container runtime is starting")
        return node_report.node_status(
            self.machine, name=self.node_name, port=self.port,
            runtime_version=self.runtime_version, handlers=self._handler_names(),
            pressure=machine_facts.pressure(self.data_dir), ready=ready,
            not_ready_message=message)

    def _set_pod_cidr(self, node: dict[str, Any]) -> None:
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr and self.pod_cidr is None:
            self.pod_cidr = cidr
            self.sim_slot.pod_cidr = sim_pod_cidr(cidr)
            self._cidr_known.set()
            for worker in self.workers.values():
                worker.wake()

    def _node_event(self, reason: str, message: str) -> None:
        ref = {"kind": "Node", "name": self.node_name, "uid": self.node_name}
        self.events.submit(self.recorder.make_event(ref, NORMAL, reason, message))

    # ---- the runtime

    async def _keep_bringing_up_runtime(self) -> None:
        while True:
            try:
                await self._bring_up_runtime()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("node %s: starting the runtime failed; retrying",
                              self.node_name)
                await asyncio.sleep(RUNTIME_RETRY)

    async def _bring_up_runtime(self) -> None:
        runtime = _as_runtime(self._runtime_source)
        if runtime is None:
            if self.require_pod_cidr:
                await self._cidr_known.wait()
            runtime = await cast(RuntimeFactory, self._runtime_source)(self.pod_cidr)
        await runtime.start()
        self.runtime = runtime
        if hasattr(runtime, "on_container_exit"):
            # A runtime that announces exits (the host runtime) spares its pods
            # the wait for the next relist, as upstream's evented PLEG does.
            runtime.on_container_exit = self._on_container_exit
        await self._adopt()
        log.info("node %s: runtime up, %d pods adopted", self.node_name, len(self.workers))
        self._node_event("NodeReady", f"Node {self.node_name} status is now: NodeReady")
        if self.heartbeat is not None:
            self.heartbeat.resume()
        self.relist = Relist(runtime, on_change=self._on_runtime_change,
                             period=self.relist_period)
        await self.relist.prime()
        self._spawn(self.relist.run(), "agent-relist")

    def _runtime_of_sandbox(self, sandbox_id: str) -> Runtime:
        assert self.runtime is not None
        return self.runtime

    async def _adopt(self) -> None:
        """Workers for the pods we have; teardown of what belongs to pods now gone."""
        assert self.runtime is not None
        known = {p["metadata"].get("uid") for p in self.pod_informer.list()}
        for sandbox in await self.runtime.list_pod_sandboxes():
            if sandbox.uid not in known:
                await self._clean_orphan(sandbox.uid)
        # From here on informer events start workers directly; the pods already
        # known start theirs now, with no await in between to miss one.
        self._ready = True
        for pod in self.pod_informer.list():
            self._on_pod(pod)

    async def _clean_orphan(self, uid: str) -> None:
        """Tear down what the runtime holds for a pod that no longer exists."""
        runtime = self.runtime
        assert runtime is not None
        sandboxes = [s for s in await runtime.list_pod_sandboxes() if s.uid == uid]
        if not sandboxes:
            return
        for sandbox in sandboxes:
            for c in await runtime.list_containers(sandbox.id):
                grace = int(c.labels.get(LABEL_GRACE_PERIOD) or 2)
                try:
                    await runtime.stop_container(c.id, max(2, min(grace, 30)))
                    await runtime.remove_container(c.id)
                except Exception:
                    log.exception("removing orphaned container %s failed", c.id)
            try:
                await runtime.stop_pod_sandbox(sandbox.id)
                await runtime.remove_pod_sandbox(sandbox.id)
            except Exception:
                log.exception("removing orphaned sandbox %s failed", sandbox.id)
            pod = {"metadata": {"name": sandbox.name, "namespace": sandbox.namespace,
                                "uid": uid}}
            await self._teardown_volumes(pod)
            shutil.rmtree(log_directory(self.ctx.log_root, pod), ignore_errors=True)
            shutil.rmtree(self.ctx.pod_root / uid, ignore_errors=True)
        log.info("node %s: removed the leftovers of deleted pod %s", self.node_name, uid)

    async def _teardown_volumes(self, pod: dict[str, Any]) -> None:
        try:
            await self.ctx.volumes.teardown(pod, self.ctx.pod_root / pod["metadata"]["uid"])
        except Exception:
            log.exception("tearing down the volumes of pod %s failed", pod["metadata"]["uid"])

    def _on_runtime_change(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            # Most changes a relist finds are the worker's own doing (the
            # container it just started): one it has observed needs no sync.
            if self.relist is None or worker.observed() != self.relist.states_of(uid):
                worker.wake()
            return
        if any(p["metadata"].get("uid") == uid for p in self.pod_informer.list()):
            return
        self._spawn(self._clean_orphan(uid), f"orphan-{uid}")

    def _on_container_exit(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            worker.wake()

    # ---- pods

    def _handler_of(self, pod: dict[str, Any]) -> str:
        name = (pod.get("spec") or {}).get("runtimeClassName")
        if not name:
            return self.default_handler
        return str(name)

    def _on_pod(self, pod: dict[str, Any]) -> None:
        handler = self._handler_of(pod)
        if handler == SIM_HANDLER:
            self.sim.on_pod(pod)
            return
        if not self._ready:
            return
        uid = pod["metadata"].get("uid", "")
        worker = self.workers.get(uid)
        if worker is not None:
            # The echo of the worker's own status write tells it nothing new.
            worker.update(pod, wake=not self.statuses.wrote(worker.key, pod))
            return
        if uid in self._finished_uids:
            return
        if handler != self.default_handler:
            self.ctx.event(pod, "", "Warning", "FailedCreatePodSandBox",
                           f'Failed to create pod sandbox: no runtime handler "{handler}" '
                           "on this node")
            self._finished_uids.add(uid)
            return
        assert self.runtime is not None
        worker = PodWorker(self.ctx, self.runtime, pod, handler=handler)
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            # A pod that has ended never runs again, even if the runtime lost it.
            worker.finished = True
        self.workers[uid] = worker
        self._by_key[worker.key] = worker
        worker.start()
        self._spawn(self._reap(worker), f"reap-{worker.key}")

    async def _reap(self, worker: PodWorker) -> None:
        await worker.done.wait()
        self._finished_uids.add(worker.uid)
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]
        if self._by_key.get(worker.key) is worker:
            del self._by_key[worker.key]

    def _on_pod_deleted(self, pod: dict[str, Any]) -> None:
        self.sim.on_pod_deleted(pod)
        uid = pod["metadata"].get("uid", "")
        self._finished_uids.discard(uid)
        worker = self.workers.get(uid)
        if worker is not None:
            worker.vanished(pod)

    def _pod_hooks(self) -> PodHooks:
        def wake(uid: str) -> None:
            worker = self.workers.get(uid)
            if worker is not None:
                worker.wake()

        def evict(uid: str, message: str) -> None:
            worker = self.workers.get(uid)
            if worker is not None:
                worker.evict(message)

        return PodHooks(pods=lambda: [w.pod for w in self.workers.values()],
                        pod_root=self.ctx.pod_root, wake=wake, evict=evict,
                        event=self.ctx.event, allocatable=self.allocatable)

    def _wake_key(self, key: str) -> None:
        worker = self._by_key.get(key)
        if worker is not None:
            worker.wake()

    def _probe_event(self, pod: dict[str, Any], container: str, kind: str, reason: str,
                     message: str) -> None:
        self.ctx.event(pod, container, kind, reason, message)

    # ---- lookups for the endpoint and tests

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        return self._by_key.get(f"{namespace}/{name}")


__all__ = ["Agent", "RuntimeFactory"]
