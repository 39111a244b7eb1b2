"""The EndpointSlice controller: discovery.k8s.io/v1 slices for Services with selectors.

Handlers map Service changes, pod changes that can move an endpoint, and
changes to our slices made by someone else into Service keys (slice events
wait a second, so a burst of them costs one sync). `sync(key)` reads the
cached Service, its pods, its managed slices and the Nodes, lets
`endpointslice_reconciler.reconcile` decide, then creates, updates and
deletes slices, recording each write in the `EndpointSliceTracker` so the
next sync waits until the informer has caught up. Slices of a deleted
Service go with it through their ownerReference (the garbage collector).
Failed syncs retry with this controller's own backoff, 1 s doubling to
1000 s as upstream's, since the queue forgets failures once sync returns.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.client.informer import object_key
from kubi.controllers.base import QueueController
from kubi.controllers.endpointslice_reconciler import SlicePlan, reconcile
from kubi.controllers.endpointslice_rules import (
    CONTROLLER_NAME,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    MAX_ENDPOINTS_PER_SLICE,
)
from kubi.controllers.endpointslice_tracker import EndpointSliceTracker
from kubi.controllers.endpointutil import (
    NODES,
    SERVICES,
    TriggerTimeTracker,
    manages_endpoints,
    selects,
    service_selector,
    services_selecting,
    services_to_update,
)
from kubi.controllers.events import (
    NAMESPACE_TERMINATING_CAUSE,
    WARNING,
    EventRecorder,
    has_status_cause,
)
from kubi.controllers.manager import ControllerContext
from kubi.controllers.podcontrol import PODS

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")

EVENT_COMPONENT = "endpoint-slice-controller"
SERVICE_INDEX = "endpointslice-service"
SLICE_CHANGE_MIN_DELAY = 1.0
RETRY_BASE_DELAY = 1.0
RETRY_MAX_DELAY = 1000.0
STALE_RETRY = 0.05


class NodesMissing(Exception):
    """Some selected pods name Nodes that do not exist (yet); their endpoints wait."""


def _service_of_slice(endpoint_slice: Obj) -> tuple[str, ...]:
    """Index value: the Service key of a slice this controller manages."""
    md = endpoint_slice.get("metadata") or {}
    labels = md.get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != CONTROLLER_NAME or not labels.get(LABEL_SERVICE_NAME):
        return ()
    return (f"{md.get('namespace', '')}/{labels[LABEL_SERVICE_NAME]}",)


def _managed(endpoint_slice: Obj) -> bool:
    labels = (endpoint_slice.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_MANAGED_BY) == CONTROLLER_NAME


def _service_name_key(endpoint_slice: Obj) -> str | None:
    md = endpoint_slice.get("metadata") or {}
    name = (md.get("labels") or {}).get(LABEL_SERVICE_NAME)
    return f"{md.get('namespace', '')}/{name}" if name else None


class EndpointSliceController(QueueController):
    name = "endpointslice"
    workers = 5

    def __init__(self, ctx: ControllerContext, *,
                 max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
                 batch_period: float = 0.0) -> None:
        super().__init__()
        self.client = ctx.client
        self.max_endpoints_per_slice = max_endpoints_per_slice
        self.batch_period = batch_period
        self.recorder: EventRecorder = ctx.recorder(EVENT_COMPONENT)
        self.triggers = TriggerTimeTracker()
        self.tracker = EndpointSliceTracker()
        self._failures: dict[str, int] = {}
        self.services = ctx.informers.get(SERVICES)
        self.pods = ctx.informers.get(PODS)
        self.nodes = ctx.informers.get(NODES)
        self.slices = ctx.informers.get(ENDPOINT_SLICES)
        self.slices.add_index(SERVICE_INDEX, _service_of_slice)
        self.services.on_add(self._service_changed)
        self.services.on_update(lambda old, cur: self._service_changed(cur))
        self.services.on_delete(self._service_changed)
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_added)
        self.slices.on_add(self._slice_added)
        self.slices.on_update(self._slice_updated)
        self.slices.on_delete(self._slice_deleted)

    # ---- handlers: map changes to Service keys

    def _service_changed(self, service: Obj) -> None:
        self.queue.add(object_key(service))

    def _pod_added(self, pod: Obj) -> None:
        md = pod.get("metadata") or {}
        services = self.services.in_namespace(md.get("namespace", ""))
        for key in services_selecting(services, md.get("labels")):
            self.queue.add_after(key, self.batch_period)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        services = self.services.in_namespace((cur.get("metadata") or {}).get("namespace", ""))
        for key in services_to_update(services, old, cur):
            self.queue.add_after(key, self.batch_period)

    def _queue_for_slice(self, endpoint_slice: Obj) -> None:
        key = _service_name_key(endpoint_slice)
        if key is not None:
            self.queue.add_after(key, max(SLICE_CHANGE_MIN_DELAY, self.batch_period))

    def _slice_added(self, endpoint_slice: Obj) -> None:
        if _managed(endpoint_slice) and self.tracker.should_sync(endpoint_slice):
            self._queue_for_slice(endpoint_slice)

    def _slice_updated(self, old: Obj, cur: Obj) -> None:
        # Labels do not bump the generation, so a moved service-name label is caught here.
        if _service_name_key(old) != _service_name_key(cur):
            self._queue_for_slice(cur)
            self._queue_for_slice(old)
            return
        if _managed(old) != _managed(cur) or (_managed(cur) and self.tracker.should_sync(cur)):
            self._queue_for_slice(cur)

    def _slice_deleted(self, endpoint_slice: Obj) -> None:
        if _managed(endpoint_slice) and self.tracker.has(endpoint_slice) \
                and not self.tracker.handle_deletion(endpoint_slice):
            self._queue_for_slice(endpoint_slice)  # someone else deleted it

    # ---- sync

    async def sync(self, key: str) -> None:
        try:
            await self._sync(key)
        except (StatusError, NodesMissing, TimeoutError, aiohttp.ClientError, OSError) as err:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            delay = min(RETRY_BASE_DELAY * 2 ** min(failures, 20), RETRY_MAX_DELAY)
            log.info("endpointslice: syncing %s failed (%s); retrying in %.0fs", key, err, delay)
            self.queue.add_after(key, delay)
        else:
            self._failures.pop(key, None)

    async def _sync(self, key: str) -> None:
        namespace = key.partition("/")[0]
        service = self.services.get(key)
        if service is None:
            self.triggers.delete_service(key)
            self.tracker.delete_service(key)
            return
        if not manages_endpoints(service):
            return
        selector = service_selector(service)
        pods = [pod for pod in self.pods.in_namespace(namespace)
                if selects(selector, (pod.get("metadata") or {}).get("labels"))]
        slices = [s for s in self.slices.by_index(SERVICE_INDEX, key)
                  if not (s.get("metadata") or {}).get("deletionTimestamp")]
        if self.tracker.stale_slices(service, slices):
            log.debug("endpointslice %s: informer behind our last write, retrying", key)
            self.queue.add_after(key, STALE_RETRY)
            return
        # Computed even when nothing gets written, so the tracker stays current.
        trigger_time = self.triggers.compute(service, pods)
        plan = reconcile(service, pods, slices, nodes=self.nodes.cache,
                         trigger_time=trigger_time,
                         max_endpoints_per_slice=self.max_endpoints_per_slice)
        try:
            await self._apply(service, plan)
            if plan.errors:
                raise NodesMissing("; ".join(plan.errors))
        except (StatusError, NodesMissing) as err:
            md = service["metadata"]
            self.recorder.event(service, WARNING, "FailedToUpdateEndpointSlices",
                                f"Error updating Endpoint Slices for Service "
                                f"{md['namespace']}/{md['name']}: {err}",
                                kind="Service", api_version="v1")
            raise

    async def _apply(self, service: Obj, plan: SlicePlan) -> None:
        md = service["metadata"]
        where = f"for Service {md['namespace']}/{md['name']}"
        for endpoint_slice in plan.create:
            try:
                created = await self.client.create(ENDPOINT_SLICES, endpoint_slice,
                                                   md["namespace"])
            except StatusError as err:
                if has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
                    return  # every create fails in a terminating namespace
                raise _wrapped(err, f"failed to create EndpointSlice {where}") from err
            self.tracker.update(created)
        for endpoint_slice in plan.update:
            name = endpoint_slice["metadata"]["name"]
            try:
                updated = await self.client.replace(ENDPOINT_SLICES, endpoint_slice)
            except StatusError as err:
                raise _wrapped(err, f"failed to update {name} EndpointSlice {where}") from err
            self.tracker.update(updated)
        for endpoint_slice in plan.delete:
            name = endpoint_slice["metadata"]["name"]
            try:
                await self.client.delete(ENDPOINT_SLICES, name, md["namespace"])
            except StatusError as err:
                if err.code != 404:
                    raise _wrapped(err, f"failed to delete {name} EndpointSlice {where}") from err
                continue
            self.tracker.expect_deletion(endpoint_slice)


def _wrapped(err: StatusError, context: str) -> StatusError:
    """The same Status error, its message prefixed with what was being done."""
    return StatusError(err.code, err.reason, f"{context}: {err}", details=err.details)


def endpointslice_controller(ctx: ControllerContext) -> EndpointSliceController:
    return EndpointSliceController(ctx)
