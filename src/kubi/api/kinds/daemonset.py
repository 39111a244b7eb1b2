"""apps/v1 DaemonSet: defaults and validation as upstream v1.33 has them.

Defaults: a RollingUpdate strategy with maxUnavailable 1 and maxSurge 0,
revisionHistoryLimit 10, and the PodSpec defaults on the template. Validation
checks the template as a full PodSpec (restartPolicy Always), and requires
exactly one of maxUnavailable and maxSurge to be non-zero.
"""

from __future__ import annotations

from kubi.api.errors import FieldError, invalid, not_supported, required
from kubi.api.hooks import defaulter, validator
from kubi.api.kinds import meta
from kubi.api.kinds.podspec_validation import validate_pod_template_spec
from kubi.api.kinds.workloads import (
    SELECTOR_MISMATCH,
    collision_count,
    default_workload_template,
    go_int_or_string,
    int_or_percent_value,
    nonnegative,
    not_more_than_100_percent,
    positive_int_or_percent,
    restart_always,
    selector_immutable,
    selector_usable,
    validate_counts,
    validate_meta,
)


@defaulter("apps/v1", "DaemonSet")
def default_daemon_set(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_workload_template(obj)


def _validate_strategy(strategy: dict, path: str) -> list[FieldError]:
    kind = strategy.get("type") or ""
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        shown = meta.GoLiteral(
            f'&apps.DaemonSetUpdateStrategy{{Type:"{kind}", RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}'
        )
        return [not_supported(path, shown, ("RollingUpdate", "OnDelete"))]
    rolling = strategy.get("rollingUpdate")
    if rolling is None:
        return [required(f"{path}.rollingUpdate")]
    rpath = f"{path}.rollingUpdate"
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = positive_int_or_percent(unavailable, f"{rpath}.maxUnavailable")
    errs.extend(positive_int_or_percent(surge, f"{rpath}.maxSurge"))
    errs.extend(not_more_than_100_percent(unavailable, f"{rpath}.maxUnavailable"))
    errs.extend(not_more_than_100_percent(surge, f"{rpath}.maxSurge"))
    has_unavailable = int_or_percent_value(unavailable) != 0
    has_surge = int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        errs.append(
            invalid(
                f"{rpath}.maxSurge",
                go_int_or_string(surge),
                "may not be set when maxUnavailable is non-zero",
            )
        )
    elif not has_unavailable and not has_surge:
        errs.append(required(f"{rpath}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errs


@validator("apps/v1", "DaemonSet")
def validate_daemon_set(obj: dict, old: dict | None, subresource: str = "") -> list[FieldError]:
    if subresource == "status" and old is not None:
        return _status_update(obj, old)
    errs = validate_meta(obj, old)
    spec = obj.get("spec") or {}
    sel = spec.get("selector")
    errs.extend(meta.validate_label_selector(sel, "spec.selector"))
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    labels = (template.get("metadata") or {}).get("labels")
    if selector_usable(sel) and (sel is None or not meta.selector_matches(sel, labels)):
        errs.append(
            invalid(
                "spec.template.metadata.labels",
                meta.GoLiteral(meta.go_string_map(labels)),
                SELECTOR_MISMATCH,
            )
        )
    if sel is not None and not (sel.get("matchLabels") or sel.get("matchExpressions")):
        errs.append(
            invalid(
                "spec.selector",
                meta.go_label_selector(sel),
                "empty selector is invalid for daemonset",
            )
        )
    errs.extend(validate_pod_template_spec(template, "spec.template"))
    errs.extend(restart_always(template, "spec.template", "DaemonSet"))
    errs.extend(nonnegative(spec, "minReadySeconds", "spec"))
    errs.extend(nonnegative(spec, "templateGeneration", "spec"))
    errs.extend(_validate_strategy(spec.get("updateStrategy") or {}, "spec.updateStrategy"))
    if spec.get("revisionHistoryLimit") is not None:
        errs.extend(nonnegative(spec, "revisionHistoryLimit", "spec"))
    errs.extend(selector_immutable(obj, old))
    return errs


def _status_update(obj: dict, old: dict) -> list[FieldError]:
    status = obj.get("status") or {}
    keys = (
        "currentNumberScheduled",
        "numberMisscheduled",
        "desiredNumberScheduled",
        "numberReady",
        "observedGeneration",
        "updatedNumberScheduled",
        "numberAvailable",
        "numberUnavailable",
    )
    if status.get("collisionCount") is not None:
        keys += ("collisionCount",)
    errs = meta.validate_object_meta_update(obj.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(validate_counts(status, "status", keys, ()))
    return errs + collision_count(status, old.get("status") or {})
