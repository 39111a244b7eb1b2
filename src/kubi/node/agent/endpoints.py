"""What the agent's HTTPS endpoint reaches: container logs and running containers.

A request names a pod by namespace and name and a container by name; the
pod's worker knows the pod and what the runtime holds for it. Logs come from
the latest attempt of the container (its previous one with `previous`), and
a container that never ran answers with the kubelet's wording: `container
"c" in pod "p" is waiting to start: ContainerCreating`, `previous terminated
container "c" in pod "p" not found`. exec and attach need a running container,
port forwarding a ready sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kubi.node import status as st
from kubi.node.agent.server import (
    EndpointError,
    LogTarget,
    PortForwardTarget,
    StreamTarget,
    bad_request,
    not_found,
)
from kubi.node.agent.worker import PodWorker
from kubi.node.runtime.base import EXITED, RUNNING, ContainerStatus


class WorkerEndpoints:
    def __init__(self, lookup: Callable[[str], PodWorker | None]) -> None:
        self.lookup = lookup

    def _worker(self, namespace: str, pod: str, uid: str = "") -> PodWorker:
        worker = self.lookup(f"{namespace}/{pod}")
        if worker is None or (uid and worker.uid != uid):
            raise not_found(f'pods "{pod}" not found')
        return worker

    @staticmethod
    def _check_container(worker: PodWorker, pod: str, container: str) -> None:
        spec = worker.pod.get("spec") or {}
        names = {c.get("name") for c in (spec.get("initContainers") or []) +
                 (spec.get("containers") or []) + (spec.get("ephemeralContainers") or [])}
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {pod}")

    async def log_target(self, namespace: str, pod: str, container: str, *,
                         previous: bool) -> LogTarget:
        worker = self._worker(namespace, pod)
        self._check_container(worker, pod, container)
        view = await worker.observe()
        if previous:
            chosen = view.previous(container)
            if chosen is None or chosen.state != EXITED:
                raise bad_request(f'previous terminated container "{container}" in pod '
                                  f'"{pod}" not found')
        else:
            chosen = view.latest(container)
            if chosen is None:
                why = worker.reasons.get(container)
                reason = why.reason if why else (
                    st.POD_INITIALIZING if (worker.pod.get("spec") or {}).get("initContainers")
                    else st.CONTAINER_CREATING)
                raise bad_request(f'container "{container}" in pod "{pod}" is waiting to '
                                  f"start: {reason}")
        return LogTarget(self._log_path(worker, chosen),
                         running=lambda: worker.running(chosen.id))

    @staticmethod
    def _log_path(worker: PodWorker, status: ContainerStatus) -> str:
        if status.log_path:
            return status.log_path
        return str(Path(worker.log_dir) / status.name / f"{status.attempt}.log")

    async def stream_target(self, namespace: str, pod: str, container: str,
                            uid: str = "") -> StreamTarget:
        worker = self._worker(namespace, pod, uid)
        self._check_container(worker, pod, container)
        view = await worker.observe()
        latest = view.latest(container)
        if latest is None or latest.state != RUNNING:
            raise bad_request(f'container not found ("{container}")')
        return StreamTarget(worker.runtime, latest.id)

    async def port_forward_target(self, namespace: str, pod: str,
                                  uid: str = "") -> PortForwardTarget:
        worker = self._worker(namespace, pod, uid)
        view = await worker.observe()
        if view.sandbox is None or not view.sandbox_ready:
            raise EndpointError(500, "InternalError", f"failed to find sandboxID for pod "
                                                      f"{pod}_{namespace}({worker.uid})")
        return PortForwardTarget(worker.runtime, view.sandbox.id)
