"""core/v1 Event: its shape on the wire and its validation, as upstream v1.33
has them.

Events are stored once, in the core/v1 shape, and served both as core/v1 and
as events.k8s.io/v1 (see `misc`). Upstream validates every event with a lenient
"legacy" rule set; only writes through events.k8s.io/v1 add the strict rules
(eventTime required, deprecated fields unset, most fields immutable). Both rule
sets live here, over the core/v1 shape, so that field paths read as upstream's.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import FieldError, invalid, required
from kubi.api.hooks import defaulter, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import dns_subdomain, meta_create, meta_update, qualified_name

REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024

# Fields an events.k8s.io/v1 update may not change, in upstream's order.
_FROZEN = (
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "reason",
    "type",
    "eventTime",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
)
# Upstream's internal field is ReportingController; core/v1 names it reportingComponent.
_PATH_NAMES = {"reportingComponent": "reportingController"}


@defaulter("v1", "Event")
def default_event(obj: dict) -> None:
    """Give the fields core/v1 always serializes their empty values."""
    obj.setdefault("involvedObject", {})
    obj.setdefault("source", {})
    for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
        obj.setdefault(key, None)
    for key in ("reportingComponent", "reportingInstance"):
        if obj.get(key) is None:
            obj[key] = ""


def _length_limit(obj: dict, key: str, limit: int, path: str) -> list[FieldError]:
    if len(obj.get(key) or "") > limit:
        return [invalid(path, "", f"can have at most {limit} characters")]
    return []


def legacy_event_errors(obj: dict) -> list[FieldError]:
    """The rules every event passes, whichever API wrote it."""
    errs: list[FieldError] = []
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    involved_ns = (obj.get("involvedObject") or {}).get("namespace") or ""
    mismatch = invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    if not obj.get("eventTime"):
        # Old-style events: the namespaces must agree ("default" stands in for none).
        if not involved_ns:
            if namespace not in ("", "default"):
                errs.append(mismatch)
        elif namespace != involved_ns:
            errs.append(mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(mismatch)
        controller = obj.get("reportingComponent") or ""
        if not controller:
            errs.append(required("reportingController"))
        errs.extend(qualified_name(controller, "reportingController"))
        if not obj.get("reportingInstance"):
            errs.append(required("reportingInstance"))
        errs.extend(
            _length_limit(obj, "reportingInstance", REPORTING_INSTANCE_LIMIT, "reportingInstance")
        )
        if not obj.get("action"):
            errs.append(required("action"))
        errs.extend(_length_limit(obj, "action", ACTION_LIMIT, "action"))
        if not obj.get("reason"):
            errs.append(required("reason"))
        errs.extend(_length_limit(obj, "reason", REASON_LIMIT, "reason"))
        errs.extend(_length_limit(obj, "message", NOTE_LIMIT, "message"))
    errs.extend(dns_subdomain(namespace, "namespace"))
    return errs


def _series_errors(obj: dict) -> list[FieldError]:
    series = obj.get("series")
    if series is None:
        return []
    errs: list[FieldError] = []
    if (series.get("count") or 0) < 2:
        errs.append(invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errs.append(required("series.lastObservedTime"))
    return errs


def strict_event_errors(obj: dict, old: dict | None) -> list[FieldError]:
    """The extra rules for writes through events.k8s.io/v1, over the core/v1 shape."""
    if old is not None:
        errs = meta_update(obj, old)
        if obj.get("series") != old.get("series"):
            errs.extend(_series_errors(obj))
        for key in _FROZEN:
            errs.extend(
                m.immutable(
                    _frozen_value(obj, key), _frozen_value(old, key), _PATH_NAMES.get(key, key)
                )
            )
        return errs
    errs = meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain)
    errs.extend(_series_errors(obj))
    if not obj.get("eventTime"):
        errs.append(required("eventTime"))
    kind = obj.get("type") or ""
    if kind not in ("Normal", "Warning"):
        errs.append(invalid("type", "", f"has invalid value: {kind}"))
    for key in ("firstTimestamp", "lastTimestamp", "count"):
        if obj.get(key):
            errs.append(invalid(key, "", "needs to be unset"))
    source = obj.get("source") or {}
    if source.get("component") or source.get("host"):
        errs.append(invalid("source", "", "needs to be unset"))
    return errs


def _frozen_value(obj: dict, key: str) -> Any:
    # Absent and empty are the same value to upstream's typed structs.
    value = obj.get(key)
    return value if value not in (None, "", 0, {}) else None


@validator("v1", "Event")
def validate_event(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    # core/v1 applies only the generic metadata rules on top of the legacy ones.
    if old is None:
        meta = obj.get("metadata") or {}
        errs = m.validate_object_meta(
            meta, namespaced=True, name_fn=m.path_segment_name, builtin=False
        )
    else:
        errs = m.validate_object_meta_update(
            obj.get("metadata") or {}, old.get("metadata") or {}, builtin=False
        )
    return errs + legacy_event_errors(obj)
