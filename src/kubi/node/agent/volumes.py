"""The node's volumes, as the kubelet's volume manager keeps them: `NodeVolumes`.

`setup` readies every volume of a pod with `kubi.node.volumes` before its
containers start. A volume that fails is retried with exponential back-off
(0.5 s doubling to 2 min 2 s, cleared when an object it reads changes); each
failed try is one FailedMount event, and the pod waits in ContainerCreating.
`mounts` turns a container's volumeMounts into runtime mounts; `teardown`
unmounts and deletes what setup made. imagePullSecrets are resolved on each
setup (`pullsecrets`), a missing one being a Warning event.

Between syncs, once started: the ConfigMaps and Secrets the pods use are
watched (`watched`), and a change refreshes the volumes reading them (and
wakes the pods, so one waiting in CreateContainerConfigError starts at once);
every minute all configMap, secret, downwardAPI and projected volumes are
refreshed anyway, which carries label and annotation changes. Every ten
seconds emptyDir usage is measured; a pod over a `sizeLimit` is evicted.
As root the pods' directories are a tmpfs of their own (`pods_tmpfs`), as
what they hold is small and ends with the pod: creating a pod's directories
and files there costs microseconds, where a disk file system can take a
tenth of a millisecond for each one. An emptyDir on disk is then a directory
beside them (`<pods>-emptydir/<uid>/<name>`) bound into the pod's. The tmpfs is
a shared mount, so that containers of other pods never keep a volume's mounts
alive after teardown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.node import volumes
from kubi.node.agent.context import PodHooks
from kubi.node.agent.pullsecrets import (
    FAILED_TO_RETRIEVE,
    PullSecretError,
    RegistryCredential,
    failed_message,
    pull_secret_names,
    registry_credentials,
)
from kubi.node.agent.tokens import ServiceAccountTokens
from kubi.node.agent.watched import CONFIGMAP, SECRET, ObjectRef, WatchedObjects, pod_references
from kubi.node.runtime.base import Mount
from kubi.node.volumes.base import PROJECTED_SOURCES, VolumeContext
from kubi.node.volumes.fieldpath import with_kubelet_annotations
from kubi.node.volumes.mounts import container_mounts

log = logging.getLogger(__name__)

PVCS = Resource("", "v1", "persistentvolumeclaims", True, "PersistentVolumeClaim")
PVS = Resource("", "v1", "persistentvolumes", False, "PersistentVolume")
REFRESH_PERIOD = 60.0
# The pods' directories as root: a tmpfs (programs in volumes must run).
POD_ROOT_TMPFS = "mode=0755"
USAGE_PERIOD = 10.0
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 122.0
FAILED_MOUNT = "FailedMount"
WARNING = "Warning"


def backoff_delay(failures: int) -> float:
    """Seconds before the next try after `failures` failed ones in a row."""
    return min(BACKOFF_INITIAL * 2 ** max(failures - 1, 0), BACKOFF_MAX)


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait for `event` at most `timeout` seconds. (Python 3.11's wait_for can
    swallow a cancellation that meets the event being set; asyncio.wait cannot.)"""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()


class VolumesNotReady(Exception):
    """Some volumes are not set up. `event_message` is the one failure the
    caller should still record, "" when every failure has had its event."""

    def __init__(self, messages: list[str], unreported: str = "") -> None:
        super().__init__("; ".join(messages))
        self.messages = messages
        self.event_message = unreported


@dataclass
class _Retry:
    failures: int
    not_before: float
    message: str


@dataclass
class _PodState:
    seen_ns: int
    host_paths: dict[str, str] = field(default_factory=dict)
    retries: dict[str, _Retry] = field(default_factory=dict)
    credentials: list[RegistryCredential] = field(default_factory=list)


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _namespace(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("namespace") or "default")


def _refreshable(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [v for v in (pod.get("spec") or {}).get("volumes") or []
            if volumes.volume_source(v) in PROJECTED_SOURCES]


class _References:
    """Which ConfigMaps and Secrets each pod uses, with a count per object, so
    that the set to watch is known without a union over every pod."""

    def __init__(self, by_pod: Mapping[str, set[ObjectRef]] | None = None) -> None:
        self._by_pod: dict[str, set[ObjectRef]] = {}
        self._counts: Counter[ObjectRef] = Counter()
        for uid, refs in (by_pod or {}).items():
            self.set(uid, refs)

    def set(self, uid: str, refs: set[ObjectRef]) -> None:
        old = self._by_pod.get(uid, set())
        self._by_pod[uid] = refs
        self._counts.update(refs - old)
        self._counts.subtract(old - refs)
        for ref in old - refs:
            if self._counts[ref] <= 0:
                del self._counts[ref]

    def drop(self, uid: str) -> None:
        self.set(uid, set())
        del self._by_pod[uid]

    def uses(self, uid: str, ref: ObjectRef) -> bool:
        return ref in self._by_pod.get(uid, ())

    def wanted(self) -> set[ObjectRef]:
        return set(self._counts)


class NodeVolumes:
    def __init__(self, client: Client, *, use_tmpfs: bool | None = None,
                 pods_tmpfs: bool = False, refresh_period: float = REFRESH_PERIOD,
                 usage_period: float = USAGE_PERIOD,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.client = client
        self.use_tmpfs = os.geteuid() == 0 if use_tmpfs is None else use_tmpfs
        self.pods_tmpfs = pods_tmpfs
        self.refresh_period = refresh_period
        self.usage_period = usage_period
        self.clock = clock
        self.wall_clock_ns = wall_clock_ns
        self.objects = WatchedObjects(client, on_change=self._object_changed)
        self.tokens = ServiceAccountTokens(client)
        self._pods: dict[str, _PodState] = {}
        self._refs = _References()
        self._evicted: set[str] = set()
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._hooks: PodHooks | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._teardowns: dict[str, asyncio.Future[None]] = {}

    # ---- PodVolumes

    async def setup(self, pod: dict[str, Any], pod_dir: Path) -> None:
        state = self._state(pod)
        self._refs.set(_uid(pod), pod_references(pod))
        self.objects.sync(self._wanted())
        await self._resolve_pull_secrets(pod, state)
        view = with_kubelet_annotations(pod, state.seen_ns)
        ctx = self._context(pod)
        now = self.clock()
        pending: list[str] = []
        fresh: list[str] = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name", "")
            retry = state.retries.get(name)
            if retry is not None and now < retry.not_before:
                pending.append(retry.message)
                continue
            try:
                state.host_paths[name] = await self._setup_one(view, volume, pod_dir, ctx)
            except volumes.MountError as exc:
                failures = retry.failures + 1 if retry is not None else 1
                state.retries[name] = _Retry(failures, now + backoff_delay(failures),
                                             exc.event_message)
                fresh.append(exc.event_message)
                continue
            state.retries.pop(name, None)
        if not fresh and not pending:
            return
        for message in fresh[1:]:
            self._event(pod, FAILED_MOUNT, message)
        raise VolumesNotReady(fresh + pending, fresh[0] if fresh else "")

    async def _setup_one(self, pod: dict[str, Any], volume: dict[str, Any], pod_dir: Path,
                         ctx: VolumeContext) -> str:
        try:
            path = await volumes.setup(pod, volume, str(pod_dir), ctx)
        except volumes.MountError:
            raise
        except (OSError, LookupError, ValueError, StatusError, aiohttp.ClientError) as exc:
            # An API or file system failure is this volume's problem, reported as such.
            raise volumes.MountError(volume.get("name", ""), str(exc)) from exc
        source = volume.get("hostPath")
        if source is not None and not source.get("type") and not os.path.lexists(path):
            # Without a type nothing is checked, and a missing path becomes a
            # directory, as container runtimes make it.
            try:
                await asyncio.to_thread(os.makedirs, path, 0o755, True)
            except OSError as exc:
                raise volumes.MountError(volume.get("name", ""), str(exc)) from exc
        return path

    async def mounts(self, pod: dict[str, Any], container: dict[str, Any],
                     env: Mapping[str, str], pod_dir: Path) -> list[Mount]:
        state = self._pods.get(_uid(pod))
        return container_mounts(pod, container, state.host_paths if state else {}, env)

    async def teardown(self, pod: dict[str, Any], pod_dir: Path) -> None:
        uid = _uid(pod)
        self._pods.pop(uid, None)
        self._refs.drop(uid)
        self._evicted.discard(uid)
        self._dirty.discard(uid)
        self.tokens.forget(uid)
        self.objects.sync(self._wanted())
        # A teardown interrupted by a deletion is tried again at once while its
        # thread still runs: the second call joins the first instead of racing it.
        running = self._teardowns.get(uid)
        if running is None or running.done():
            running = asyncio.ensure_future(self._teardown_pod(uid, pod_dir))
            self._teardowns[uid] = running
            running.add_done_callback(lambda done: self._teardown_done(uid, done))
        await asyncio.shield(running)

    async def _teardown_pod(self, uid: str, pod_dir: Path) -> None:
        await volumes.teardown_pod_volumes(str(pod_dir))
        disk_root = self._disk_root()
        if disk_root is not None and uid:
            await asyncio.to_thread(shutil.rmtree, os.path.join(disk_root, uid), True)

    def _teardown_done(self, uid: str, task: asyncio.Future[None]) -> None:
        if self._teardowns.get(uid) is task:
            del self._teardowns[uid]

    # ---- what the rest of the node asks

    def pull_credentials(self, uid: str) -> list[RegistryCredential]:
        """The registry credentials of the pod's imagePullSecrets, as last resolved."""
        state = self._pods.get(uid)
        return list(state.credentials) if state else []

    # ---- lifecycle

    async def start(self, hooks: PodHooks) -> None:
        self._hooks = hooks
        if self.pods_tmpfs:
            from kubi.node.runtime.host import linux

            hooks.pod_root.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(linux.ensure_tmpfs, str(hooks.pod_root), POD_ROOT_TMPFS,
                                    executable=True)
        self._tasks = [asyncio.create_task(self._refresh_loop(), name="volumes-refresh"),
                       asyncio.create_task(self._usage_loop(), name="volumes-usage")]

    async def stop(self, *, drain: bool = False) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.objects.close()
        hooks, self._hooks = self._hooks, None
        if drain and self.pods_tmpfs and hooks is not None:
            from kubi.node.runtime.host import linux

            # Every pod is gone: nothing below is left to propagate.
            await asyncio.to_thread(linux.unmount_tree, str(hooks.pod_root))

    # ---- refresh

    async def _refresh_loop(self) -> None:
        await self.refresh()
        loop = asyncio.get_running_loop()
        next_full = loop.time() + self.refresh_period
        while True:
            await _wait_event(self._dirty_event, max(0.0, next_full - loop.time()))
            self._dirty_event.clear()
            if loop.time() >= next_full:
                next_full = loop.time() + self.refresh_period
                await self.refresh()
            else:
                uids, self._dirty = self._dirty, set()
                await self.refresh(uids)

    async def refresh(self, uids: set[str] | None = None) -> None:
        """Rewrite changed content of the pods' projected-kind volumes; all pods
        (and the watches re-derived from them) when `uids` is None."""
        if self._hooks is None:
            return
        pods = self._hooks.pods()
        if uids is None:
            self._refs = _References({_uid(p): pod_references(p) for p in pods})
            self.objects.sync(self._wanted())
        for pod in pods:
            if (uids is None or _uid(pod) in uids) and \
                    not pod["metadata"].get("deletionTimestamp") and _refreshable(pod):
                await self._refresh_pod(pod, self._hooks.pod_root / _uid(pod))

    async def _refresh_pod(self, pod: dict[str, Any], pod_dir: Path) -> None:
        state = self._state(pod)
        view = with_kubelet_annotations(pod, state.seen_ns)
        ctx = self._context(pod)
        for volume in _refreshable(pod):
            try:
                await volumes.refresh(view, volume, str(pod_dir), ctx)
            except volumes.MountError as exc:
                self._event(pod, FAILED_MOUNT, exc.event_message)
            except (OSError, LookupError, ValueError, StatusError, aiohttp.ClientError) as exc:
                log.warning("pod %s: refreshing volume %s failed: %s", _uid(pod),
                            volume.get("name"), exc)

    def _object_changed(self, ref: ObjectRef) -> None:
        if self._hooks is None:
            return
        for pod in self._hooks.pods():
            uid = _uid(pod)
            if not self._refs.uses(uid, ref):
                continue
            state = self._pods.get(uid)
            if state is not None:
                # What failed for want of this object may well work now.
                state.retries.clear()
            self._dirty.add(uid)
            self._hooks.wake(uid)
        self._dirty_event.set()

    # ---- emptyDir usage

    async def _usage_loop(self) -> None:
        while True:
            await asyncio.sleep(self.usage_period)
            try:
                await self.check_usage()
            except Exception:
                log.exception("measuring emptyDir usage failed")

    async def check_usage(self) -> None:
        """Evict each pod with an emptyDir over its sizeLimit (once)."""
        if self._hooks is None:
            return
        for pod in self._hooks.pods():
            uid = _uid(pod)
            if uid in self._evicted or pod["metadata"].get("deletionTimestamp"):
                continue
            limited = volumes.size_limited_emptydirs(pod, str(self._hooks.pod_root / uid))
            if not limited:
                continue
            usage = {name: await asyncio.to_thread(volumes.usage_bytes, path)
                     for name, path, _ in limited}
            message = volumes.emptydir_eviction_message(pod, usage)
            if message:
                self._evicted.add(uid)
                self._hooks.evict(uid, message)

    # ---- helpers

    def _state(self, pod: Mapping[str, Any]) -> _PodState:
        uid = _uid(pod)
        state = self._pods.get(uid)
        if state is None:
            state = self._pods[uid] = _PodState(seen_ns=self.wall_clock_ns())
        return state

    def _wanted(self) -> set[ObjectRef]:
        return self._refs.wanted()

    def _event(self, pod: dict[str, Any], reason: str, message: str) -> None:
        if self._hooks is not None:
            self._hooks.event(pod, "", WARNING, reason, message)

    def _context(self, pod: Mapping[str, Any]) -> VolumeContext:
        async def token(audience: str, expiration: int) -> str:
            return await self.tokens.token(pod, audience, expiration)

        async def configmap(namespace: str, name: str) -> dict[str, Any] | None:
            return await self.objects.get(CONFIGMAP, namespace, name)

        async def secret(namespace: str, name: str) -> dict[str, Any] | None:
            return await self.objects.get(SECRET, namespace, name)

        return VolumeContext(get_configmap=configmap, get_secret=secret, get_pvc=self._pvc,
                             get_pv=self._pv, token=token,
                             node_allocatable=dict(self._hooks.allocatable) if self._hooks
                             else {}, use_tmpfs=self.use_tmpfs,
                             disk_root=self._disk_root())

    def _disk_root(self) -> str | None:
        """Where emptyDirs on disk live while the pods' directories are in memory."""
        if not self.pods_tmpfs or self._hooks is None:
            return None
        pods = self._hooks.pod_root
        return str(pods.with_name(f"{pods.name}-emptydir"))

    async def _pvc(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(PVCS, name, namespace)

    async def _pv(self, name: str) -> dict[str, Any] | None:
        return await self._get(PVS, name, None)

    async def _get(self, res: Resource, name: str, namespace: str | None
                   ) -> dict[str, Any] | None:
        try:
            return await self.client.get(res, name, namespace)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    async def _resolve_pull_secrets(self, pod: dict[str, Any], state: _PodState) -> None:
        """Look up the pod's imagePullSecrets; the ones missing make one event."""
        credentials: list[RegistryCredential] = []
        missing: list[str] = []
        for name in pull_secret_names(pod):
            try:
                secret = await self.objects.get(SECRET, _namespace(pod), name)
            except (StatusError, OSError, aiohttp.ClientError) as exc:
                log.info("pod %s: pull secret %s unavailable: %s", _uid(pod), name, exc)
                secret = None
            if secret is None:
                missing.append(name)
                continue
            try:
                credentials.extend(registry_credentials(secret))
            except PullSecretError as exc:
                log.warning("pod %s: pull secret %s unusable: %s", _uid(pod), name, exc)
        state.credentials = credentials
        if missing:
            self._event(pod, FAILED_TO_RETRIEVE, failed_message(missing))
