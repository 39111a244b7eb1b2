"""One StatefulSet sync: revisions, the plan, its execution, status, history.

`StatefulSetControl.update` is upstream's UpdateStatefulSet: it settles the
current and update revisions, asks `plan_sync` what to do, runs the plan,
writes the status even when a step failed, and trims the revision history
to revisionHistoryLimit. Under OrderedReady the steps of a phase run one
after another; under Parallel in slow-start batches (1, 2, 4, ... up to
500). The first failure ends the sync and is raised after the status is
written, so the work queue retries with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from kubi.api.errors import StatusError
from kubi.api.selectors import LabelSelector
from kubi.client.client import Client, Resource
from kubi.controllers.statefulset.history import ControllerHistory
from kubi.controllers.statefulset.identity import name_of, pod_revision, spec
from kubi.controllers.statefulset.plan import (
    Action,
    Phase,
    Plan,
    Step,
    plan_sync,
    with_deleted_for_update,
)
from kubi.controllers.statefulset.revisions import revisions_to_truncate
from kubi.controllers.statefulset.statefulpods import StatefulPodControl
from kubi.controllers.statefulset.status import (
    SetStatus,
    complete_rolling_update,
    needs_write,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

STATEFULSETS = Resource("apps", "v1", "statefulsets", True, "StatefulSet")
MAX_BATCH_SIZE = 500
STATUS_UPDATE_RETRIES = 5
DEFAULT_HISTORY_LIMIT = 10


class WriteTracker(Protocol):
    """Told of each pod write before it is sent, and of its failure, if it fails."""

    def expect(self, sts: Obj, pod: Obj, verb: str) -> None: ...

    def failed(self, pod: Obj, verb: str) -> None: ...


async def run_in_batches(steps: list[Step], run: Callable[[Step], Awaitable[None]]) -> None:
    """Run `run` over `steps` in doubling concurrent batches; stop after a failing batch."""
    index, size = 0, 1
    while index < len(steps):
        batch = steps[index:index + size]
        results = await asyncio.gather(*(run(step) for step in batch), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        index += len(batch)
        size = min(2 * size, MAX_BATCH_SIZE)


class StatefulSetControl:
    def __init__(self, client: Client, pods: StatefulPodControl, history: ControllerHistory,
                 tracker: WriteTracker) -> None:
        self.client = client
        self.pods = pods
        self.history = history
        self.tracker = tracker

    async def update(self, sts: Obj, pods: list[Obj], selector: LabelSelector) -> SetStatus:
        revisions = self.history.revisions_of(sts, selector)
        current, update, collisions = await self.history.current_and_update(sts, revisions)
        namespace = sts["metadata"].get("namespace", "")
        plan = plan_sync(sts, pods, current=current, update=update, collision_count=collisions,
                         lookup=self.pods.lookup(namespace), now=time.time())
        status, error = await self._execute(sts, plan)
        status = complete_rolling_update(sts, status)
        try:
            await self._write_status(sts, status)
        except Exception as status_error:  # noqa: BLE001 - the first failure wins
            if error is None:
                error = status_error
            else:
                log.error("StatefulSet %s/%s: could not update status: %s", namespace,
                          name_of(sts), status_error)
        live = {name_of(current), name_of(update), *(pod_revision(pod) for pod in pods)}
        limit = spec(sts).get("revisionHistoryLimit")
        for revision in revisions_to_truncate(
                revisions, live=live, limit=DEFAULT_HISTORY_LIMIT if limit is None else int(limit)):
            await self.history.delete(revision)
        if error is not None:
            raise error
        return status

    # ---- running the plan

    async def _execute(self, sts: Obj, plan: Plan) -> tuple[SetStatus, Exception | None]:
        status = plan.status
        for phase in plan.phases:
            deleted, error = await self._run_phase(sts, plan, phase)
            status = with_deleted_for_update(status, deleted)
            if error is not None:
                return status, error
        return status, None

    async def _run_phase(self, sts: Obj, plan: Plan,
                         phase: Phase) -> tuple[int, Exception | None]:
        """Run a phase's steps; returns the rolling-update deletions made and the failure."""
        rolling = phase.name == "rolling-update"
        deleted = 0

        async def run(step: Step) -> None:
            nonlocal deleted
            for action in step.actions:
                try:
                    await self._act(sts, plan, step.pod, action)
                except StatusError as err:
                    # A pod the rolling update meant to delete that is gone counts as deleted.
                    if not (rolling and err.code == 404):
                        raise
            if rolling:
                deleted += 1

        try:
            if plan.monotonic:
                for step in phase.steps:
                    await run(step)
            else:
                await run_in_batches(phase.steps, run)
        except Exception as err:  # noqa: BLE001 - reported after the status is written
            return deleted, err
        return deleted, None

    async def _act(self, sts: Obj, plan: Plan, pod: Obj, action: Action) -> None:
        if action is Action.CREATE:
            await self._tracked(sts, pod, "create", self.pods.create_pod(sts, pod))
        elif action is Action.DELETE:
            await self._tracked(sts, pod, "delete", self.pods.delete_pod(sts, pod))
        elif action is Action.CREATE_CLAIMS:
            await self.pods.create_missing_claims(sts, pod)
        elif action is Action.UPDATE:
            await self.pods.update_pod(plan.update_set, pod)
        elif action is Action.FIX_CLAIM_OWNERS:
            await self.pods.fix_claim_owners(plan.update_set, pod)

    async def _tracked(self, sts: Obj, pod: Obj, verb: str, write: Awaitable[Any]) -> None:
        self.tracker.expect(sts, pod, verb)
        try:
            await write
        except BaseException:
            self.tracker.failed(pod, verb)
            raise

    # ---- status

    async def _write_status(self, sts: Obj, status: SetStatus) -> None:
        if not needs_write(sts, status):
            return
        md = sts["metadata"]
        typed = {"apiVersion": "apps/v1", "kind": "StatefulSet"}
        current = sts
        for attempt in range(STATUS_UPDATE_RETRIES):
            try:
                await self.client.replace(STATEFULSETS,
                                          {**typed, **current, "status": status.to_wire()},
                                          subresource="status")
                return
            except StatusError as err:
                if err.code != 409 or attempt == STATUS_UPDATE_RETRIES - 1:
                    raise
            current = await self.client.get(STATEFULSETS, md["name"], md.get("namespace"))
