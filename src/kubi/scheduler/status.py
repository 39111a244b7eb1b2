"""What the scheduler writes back about a pod it could not place.

The PodScheduled condition is set to False with reason `Unschedulable` (no
node fits) or `SchedulerError` (binding failed), and the full message. As
upstream's UpdatePodCondition, nothing is written when the condition already
says exactly that, and the transition time only moves when the status does;
so a pod that keeps failing for the same reason costs no writes. The patch is
a strategic merge of `status.conditions`, keyed by condition type. Event
notes are capped at upstream's 1024 bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubi.api.meta import now_rfc3339

POD_SCHEDULED = "PodScheduled"
NOTE_LENGTH_LIMIT = 1024


def truncate_message(message: str) -> str:
    """Cut a note to the Event limit the way upstream does, ending in " ..."."""
    if len(message) <= NOTE_LENGTH_LIMIT:
        return message
    suffix = " ..."
    return message[:NOTE_LENGTH_LIMIT - len(suffix)] + suffix


def scheduled_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == POD_SCHEDULED:
            return condition
    return None


def condition_patch(pod: Mapping[str, Any], reason: str, message: str,
                    now: str | None = None) -> dict[str, Any] | None:
    """The status patch setting PodScheduled=False, or None when nothing would change."""
    old = scheduled_condition(pod)
    if old is not None and old.get("status") == "False" and old.get("reason") == reason \
            and old.get("message") == message and not old.get("lastProbeTime"):
        return None
    unchanged_status = old is not None and old.get("status") == "False"
    transition = old.get("lastTransitionTime") if unchanged_status and old else None
    condition = {
        "type": POD_SCHEDULED,
        "status": "False",
        "lastProbeTime": None,
        "lastTransitionTime": transition or now or now_rfc3339(),
        "reason": reason,
        "message": message,
    }
    return {"status": {"conditions": [condition]}}
