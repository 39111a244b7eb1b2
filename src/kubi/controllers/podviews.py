"""What a ReplicaSet sync reads of each pod, kept for as long as the pod is unchanged.

A ReplicaSet of 10,000 pods is synced several times a second while it scales
or rolls, and every sync asks the same of every pod: does it still count
(not finished, not being deleted), does the selector match its labels, is it
Ready and since when. A pod in the informer's cache is never changed in place
(each update arrives as a new object), so the answers are kept beside the
object they were read from and read again only for a new version. Whether the
selector matches is kept per selector object, which the controller keeps
stable for as long as the owner's selector is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubi.api.meta import parse_time
from kubi.api.selectors import LabelSelector
from kubi.controllers.podutil import is_pod_active, pod_ready_condition

Pod = dict[str, Any]


@dataclass(slots=True)
class PodView:
    pod: Pod
    active: bool
    ready: bool
    # When the Ready condition last turned True (None when not ready, or unknown).
    ready_since: float | None
    labels: dict[str, str]
    selector: LabelSelector | None = None
    matched: bool = False

    def matches(self, selector: LabelSelector) -> bool:
        if self.selector is not selector:
            self.selector = selector
            self.matched = selector.matches(self.labels)
        return self.matched

    def available(self, min_ready_seconds: int, now: float) -> bool:
        """Ready for longer than minReadySeconds (strictly, as upstream)."""
        if not self.ready:
            return False
        if not min_ready_seconds:
            return True
        return self.ready_since is not None and self.ready_since + min_ready_seconds < now

    def fully_labeled(self, template_labels: dict[str, str]) -> bool:
        labels = self.labels
        return all(labels.get(k) == v for k, v in template_labels.items())


def view_of(pod: Pod) -> PodView:
    condition = pod_ready_condition(pod)
    ready = condition is not None and condition.get("status") == "True"
    since = parse_time(condition.get("lastTransitionTime")) if ready and condition else None
    return PodView(pod, is_pod_active(pod), ready, since,
                   (pod.get("metadata") or {}).get("labels") or {})


class PodViews:
    """Views by informer key; a view is rebuilt when the cached object is a new one."""

    def __init__(self) -> None:
        self._views: dict[str, PodView] = {}

    def get(self, key: str, pod: Pod) -> PodView:
        view = self._views.get(key)
        if view is None or view.pod is not pod:
            view = self._views[key] = view_of(pod)
        return view

    def forget(self, key: str) -> None:
        self._views.pop(key, None)

    def __len__(self) -> int:
        return len(self._views)
