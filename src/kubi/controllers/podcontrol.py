"""Creating, deleting and patching a controller's pods, with upstream's events.

`pod_from_template` turns a PodTemplateSpec into the Pod a controller asks
for: the template's labels, annotations, finalizers and spec, the controller
ownerReference, and `generateName: <owner>-` so the API server appends five
random characters. `PodControl` performs the writes and records the events
that `kubectl describe` shows (`SuccessfulCreate` "Created pod: <name>",
`FailedCreate` "Error creating: <error>", `SuccessfulDelete`, `FailedDelete`).
`slow_start_batch` runs many creates in doubling batches (1, 2, 4, ...) and
stops at the first failing batch, so a quota error costs a handful of
requests instead of hundreds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.controllers.events import (
    NAMESPACE_TERMINATING_CAUSE,
    NORMAL,
    WARNING,
    EventRecorder,
    has_status_cause,
)

PODS = Resource("", "v1", "pods", True, "Pod")

SLOW_START_INITIAL_BATCH_SIZE = 1

FAILED_CREATE = "FailedCreate"
SUCCESSFUL_CREATE = "SuccessfulCreate"
FAILED_DELETE = "FailedDelete"
SUCCESSFUL_DELETE = "SuccessfulDelete"


class NoLabels(Exception):
    def __init__(self) -> None:
        super().__init__("unable to create pods, no labels")


def pod_name_prefix(owner_name: str) -> str:
    """`<owner>-` unless that would be too long for a pod name prefix."""
    prefix = f"{owner_name}-"
    return prefix if len(prefix) <= 253 else owner_name


def pod_from_template(template: dict[str, Any], owner: dict[str, Any],
                      controller_ref: dict[str, Any] | None) -> dict[str, Any]:
    tmd = template.get("metadata") or {}
    metadata: dict[str, Any] = {
        "generateName": pod_name_prefix(owner["metadata"]["name"]),
        "labels": dict(tmd.get("labels") or {}),
    }
    if tmd.get("annotations"):
        metadata["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        metadata["finalizers"] = list(tmd["finalizers"])
    if controller_ref is not None:
        metadata["ownerReferences"] = [dict(controller_ref)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        # A JSON round trip: a deep copy, many times faster than copy.deepcopy.
        "spec": orjson.loads(orjson.dumps(template.get("spec") or {})),
    }


async def slow_start_batch(count: int, initial_batch_size: int,
                           fn: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """Call `fn` `count` times in doubling concurrent batches; stop after a failing batch.

    Returns the number of successful calls and the first error, if any.
    """
    remaining = count
    successes = 0
    batch = min(remaining, initial_batch_size)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for err in errors:
            if isinstance(err, asyncio.CancelledError):
                raise err
        successes += batch - len(errors)
        if errors:
            first = errors[0]
            if not isinstance(first, Exception):
                raise first
            return successes, first
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


class PodControl:
    """Pod writes on behalf of a controller, each recorded as an event on the owner."""

    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder

    async def create_pod(self, namespace: str, template: dict[str, Any], owner: dict[str, Any],
                         controller_ref: dict[str, Any], *, owner_kind: str,
                         owner_api_version: str) -> dict[str, Any]:
        pod = pod_from_template(template, owner, controller_ref)
        if not pod["metadata"]["labels"]:
            raise NoLabels()
        try:
            created = await self.client.create(PODS, pod, namespace)
        except StatusError as err:
            # Nothing to tell the user when the whole namespace is going away.
            if not has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
                self.recorder.event(owner, WARNING, FAILED_CREATE, f"Error creating: {err}",
                                    kind=owner_kind, api_version=owner_api_version)
            raise
        self.recorder.event(owner, NORMAL, SUCCESSFUL_CREATE,
                            f"Created pod: {created['metadata']['name']}",
                            kind=owner_kind, api_version=owner_api_version)
        return created

    async def delete_pod(self, namespace: str, name: str, owner: dict[str, Any], *,
                         owner_kind: str, owner_api_version: str) -> None:
        try:
            await self.client.delete(PODS, name, namespace)
        except StatusError as err:
            if err.code == 404:
                raise
            self.recorder.event(owner, WARNING, FAILED_DELETE, f"Error deleting: {err}",
                                kind=owner_kind, api_version=owner_api_version)
            raise
        self.recorder.event(owner, NORMAL, SUCCESSFUL_DELETE, f"Deleted pod: {name}",
                            kind=owner_kind, api_version=owner_api_version)

    async def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.client.patch(PODS, name, patch, namespace, patch_type="strategic")
