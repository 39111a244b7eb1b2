"""Reporting a rollout's progress, and coming back in time to notice it stalled.

`sync_rollout_status` writes what `status.rollout_status` computes. When
nothing changed, a rollout still under way is requeued for the moment its
progress deadline would pass: no event arrives for a rollout that makes no
progress, so without that the ProgressDeadlineExceeded condition would wait
for an unrelated resync.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kubi.controllers.deployment.actions import DeploymentActions
from kubi.controllers.deployment.status import requeue_delay, rollout_status, same_status
from kubi.controllers.deployment.util import Obj, status

log = logging.getLogger(__name__)


async def sync_rollout_status(act: DeploymentActions, all_rss: Sequence[Obj | None],
                              new_rs: Obj | None, d: Obj) -> None:
    now = act.now()
    new_status = rollout_status(d, all_rss, new_rs, now)
    if same_status(status(d), new_status):
        requeue_stuck_deployment(act, d, new_status, now)
        return
    d["status"] = new_status
    await act.save_deployment(d)


def requeue_stuck_deployment(act: DeploymentActions, d: Obj, new_status: Obj,
                             now: float) -> float | None:
    """Schedule the progress check; returns the delay chosen (None: none needed)."""
    delay = requeue_delay(d, new_status, now)
    if delay is None:
        return None
    if delay == 0:
        # Rate limited: the condition is about to flip either way.
        act.requeue_rate_limited(d)
    else:
        log.debug("deployment %s: progress check in %.0fs", d["metadata"]["name"], delay)
        act.requeue_after(d, delay)
    return delay
