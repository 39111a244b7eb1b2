"""Pod-template workloads: ReplicationController (v1), and apps/v1 ReplicaSet,
Deployment and ControllerRevision; StatefulSet and DaemonSet live in their own
modules, imported at the end so that importing this one registers them all.

Every workload's `spec.template` gets the PodSpec defaults. Validation follows
upstream's apps and core validators: a selector that must be present, non-empty
and match the template's labels, a template whose restartPolicy is Always, and
the kind's own fields. apps/v1 selectors are immutable once created.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import FieldError, forbidden, invalid, not_supported, required
from kubi.api.hooks import defaulter, validator
from kubi.api.kinds import meta
from kubi.api.kinds.podspec_defaults import default_pod_template
from kubi.api.kinds.podspec_validation import validate_pod_template_spec

SELECTOR_MISMATCH = "`selector` does not match template `labels`"


# -- shared helpers --------------------------------------------------------------------


def default_workload_template(obj: dict) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        default_pod_template(spec.get("template"))


def validate_meta(
    obj: dict, old: dict | None, name_fn: meta.NameFn = meta.dns1123_subdomain
) -> list[FieldError]:
    md = obj.get("metadata") or {}
    if old is None:
        return meta.validate_object_meta(md, namespaced=True, name_fn=name_fn)
    return meta.validate_object_meta_update(md, old.get("metadata") or {})


def nonnegative(spec: dict, key: str, path: str) -> list[FieldError]:
    return meta.validate_nonnegative(spec.get(key, 0), f"{path}.{key}")


def validate_selector(spec: dict, path: str, kind: str) -> list[FieldError]:
    """A metav1.LabelSelector that must be set and not empty."""
    sel = spec.get("selector")
    if sel is None:
        return [required(f"{path}.selector")]
    errs = meta.validate_label_selector(sel, f"{path}.selector")
    if not (sel.get("matchLabels") or sel.get("matchExpressions")):
        errs.append(
            invalid(
                f"{path}.selector",
                meta.go_label_selector(sel),
                f"empty selector is invalid for {kind}",
            )
        )
    return errs


def selector_mismatch(sel: Any, template: dict, path: str) -> list[FieldError]:
    """`<path>.metadata.labels: Invalid value: map[...]: selector does not match...`.

    A missing selector matches nothing (so it is reported here too, as upstream
    does); an empty one matches everything and is not checked.
    """
    labels = (template.get("metadata") or {}).get("labels")
    if sel is None or (
        _normal_selector(sel) != ({}, []) and not meta.selector_matches(sel, labels)
    ):
        return [
            invalid(
                f"{path}.metadata.labels",
                meta.GoLiteral(meta.go_string_map(labels)),
                SELECTOR_MISMATCH,
            )
        ]
    return []


def selector_usable(sel: Any) -> bool:
    """Whether a selector converts to a label selector at all (else template checks are skipped)."""
    return sel is None or not meta.validate_label_selector(sel, "")


def restart_always(template: dict, path: str, kind: str) -> list[FieldError]:
    spec = template.get("spec") or {}
    errs: list[FieldError] = []
    policy = spec.get("restartPolicy") or ""
    if policy != "Always":
        errs.append(not_supported(f"{path}.spec.restartPolicy", policy, ("Always",)))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                f"{path}.spec.activeDeadlineSeconds",
                f"activeDeadlineSeconds in {kind} is not Supported",
            )
        )
    return errs


def template_for_replicas(spec: dict, path: str, kind: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet (also used by Deployments)."""
    sel = spec.get("selector")
    if not selector_usable(sel):
        return [invalid(f"{path}.selector", meta.go_label_selector(sel), "invalid label selector")]
    template = spec.get("template")
    tpath = f"{path}.template"
    if not isinstance(template, dict):
        return [required(tpath)]
    errs = selector_mismatch(sel, template, tpath)
    errs.extend(validate_pod_template_spec(template, tpath))
    errs.extend(restart_always(template, tpath, kind))
    return errs


def selector_immutable(obj: dict, old: dict | None) -> list[FieldError]:
    if old is None:
        return []
    new_sel = (obj.get("spec") or {}).get("selector")
    old_sel = (old.get("spec") or {}).get("selector")
    if _normal_selector(new_sel) != _normal_selector(old_sel):
        return [invalid("spec.selector", meta.go_label_selector(new_sel), meta.FIELD_IMMUTABLE)]
    return []


def _normal_selector(sel: Any) -> tuple[Any, Any]:
    sel = sel or {}
    return (sel.get("matchLabels") or {}, sel.get("matchExpressions") or [])


def validate_counts(
    status: dict, path: str, keys: tuple[str, ...], pairs: tuple[tuple[str, str, str], ...]
) -> list[FieldError]:
    """Status counters: each non-negative, and bounded by another (`cannot be greater than ...`)."""
    errs: list[FieldError] = []
    for key in keys:
        errs.extend(meta.validate_nonnegative(status.get(key, 0), f"{path}.{key}"))
    for small, big, msg in pairs:
        if (status.get(small) or 0) > (status.get(big) or 0):
            errs.append(invalid(f"{path}.{small}", status.get(small) or 0, msg))
    return errs


def collision_count(status: dict, old_status: dict) -> list[FieldError]:
    new, old = status.get("collisionCount"), old_status.get("collisionCount")
    if old is not None and (new is None or new < old):
        return [invalid("status.collisionCount", new or 0, "cannot be decremented")]
    return []


_GREATER = "cannot be greater than status.replicas"
_REPLICA_STATUS_KEYS = (
    "replicas",
    "fullyLabeledReplicas",
    "readyReplicas",
    "availableReplicas",
    "observedGeneration",
)
_REPLICA_STATUS_PAIRS = (
    ("fullyLabeledReplicas", "replicas", _GREATER),
    ("readyReplicas", "replicas", _GREATER),
    ("availableReplicas", "replicas", _GREATER),
    ("availableReplicas", "readyReplicas", "cannot be greater than readyReplicas"),
)


def _status_update(obj: dict, old: dict, checks: list[FieldError]) -> list[FieldError]:
    errs = meta.validate_object_meta_update(obj.get("metadata") or {}, old.get("metadata") or {})
    return errs + checks


# -- ReplicationController (v1) -----------------------------------------------------------


@defaulter("v1", "ReplicationController")
def default_replication_controller(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if labels is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        md = obj.setdefault("metadata", {})
        if not md.get("labels"):
            md["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_workload_template(obj)


@validator("v1", "ReplicationController")
def validate_replication_controller(
    obj: dict, old: dict | None, subresource: str = ""
) -> list[FieldError]:
    if subresource == "status" and old is not None:
        status = obj.get("status") or {}
        return _status_update(
            obj, old, validate_counts(status, "status", _REPLICA_STATUS_KEYS, _REPLICA_STATUS_PAIRS)
        )
    errs = validate_meta(obj, old)
    spec = obj.get("spec") or {}
    errs.extend(nonnegative(spec, "minReadySeconds", "spec"))
    selector = spec.get("selector") or {}
    if not selector:
        errs.append(required("spec.selector"))
    errs.extend(nonnegative(spec, "replicas", "spec"))
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.append(required("spec.template"))
        return errs
    errs.extend(selector_mismatch({"matchLabels": selector}, template, "spec.template"))
    errs.extend(validate_pod_template_spec(template, "spec.template"))
    errs.extend(restart_always(template, "spec.template", "ReplicationController"))
    return errs


# -- ReplicaSet (apps/v1) -------------------------------------------------------------------


@defaulter("apps/v1", "ReplicaSet")
def default_replica_set(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_workload_template(obj)


@validator("apps/v1", "ReplicaSet")
def validate_replica_set(obj: dict, old: dict | None, subresource: str = "") -> list[FieldError]:
    if subresource == "status" and old is not None:
        status = obj.get("status") or {}
        return _status_update(
            obj, old, validate_counts(status, "status", _REPLICA_STATUS_KEYS, _REPLICA_STATUS_PAIRS)
        )
    errs = validate_meta(obj, old)
    spec = obj.get("spec") or {}
    errs.extend(nonnegative(spec, "replicas", "spec"))
    errs.extend(nonnegative(spec, "minReadySeconds", "spec"))
    # Upstream's ReplicaSet check shares its wording with Deployments.
    errs.extend(validate_selector(spec, "spec", "deployment"))
    errs.extend(template_for_replicas(spec, "spec", "ReplicaSet"))
    errs.extend(selector_immutable(obj, old))
    return errs


# -- Deployment (apps/v1) --------------------------------------------------------------------


@defaulter("apps/v1", "Deployment")
def default_deployment(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict):
        strategy = spec["strategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        for key in ("maxUnavailable", "maxSurge"):
            if rolling.get(key) is None:
                rolling[key] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_workload_template(obj)


def go_int_or_string(value: Any) -> meta.GoLiteral:
    """An intstr.IntOrString as upstream prints it in these messages."""
    if isinstance(value, str):
        return meta.GoLiteral(f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:"{value}"}}')
    number = value if isinstance(value, int) else 0
    return meta.GoLiteral(f'intstr.IntOrString{{Type:0, IntVal:{number}, StrVal:""}}')


def int_or_percent_value(value: Any) -> int:
    """The number in an int-or-percent; a string that is not a percent reads as an int (or 0)."""
    if isinstance(value, str):
        if not meta.is_valid_percent(value):
            return int(value[:-1])
        try:
            return int(value)
        except ValueError:
            return 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def positive_int_or_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str):
        return [invalid(path, go_int_or_string(value), m) for m in meta.is_valid_percent(value)]
    return meta.validate_nonnegative(value if isinstance(value, int) else 0, path)


def not_more_than_100_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and not meta.is_valid_percent(value) and int(value[:-1]) > 100:
        return [invalid(path, go_int_or_string(value), "must not be greater than 100%")]
    return []


def _validate_deployment_strategy(strategy: dict, path: str) -> list[FieldError]:
    kind = strategy.get("type") or ""
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [
                forbidden(
                    f"{path}.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            ]
        return []
    if kind == "RollingUpdate":
        if rolling is None:
            return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
        rpath = f"{path}.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errs = positive_int_or_percent(unavailable, f"{rpath}.maxUnavailable")
        errs.extend(positive_int_or_percent(surge, f"{rpath}.maxSurge"))
        if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
            errs.append(
                invalid(
                    f"{rpath}.maxUnavailable",
                    go_int_or_string(unavailable),
                    "may not be 0 when `maxSurge` is 0",
                )
            )
        errs.extend(not_more_than_100_percent(unavailable, f"{rpath}.maxUnavailable"))
        return errs
    shown = meta.GoLiteral(
        f'apps.DeploymentStrategy{{Type:"{kind}", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}'
    )
    return [not_supported(path, shown, ("Recreate", "RollingUpdate"))]


@validator("apps/v1", "Deployment")
def validate_deployment(obj: dict, old: dict | None, subresource: str = "") -> list[FieldError]:
    if subresource == "status" and old is not None:
        return _status_update(obj, old, _deployment_status(obj, old))
    errs = validate_meta(obj, old)
    spec = obj.get("spec") or {}
    errs.extend(nonnegative(spec, "replicas", "spec"))
    errs.extend(validate_selector(spec, "spec", "deployment"))
    errs.extend(template_for_replicas(spec, "spec", "ReplicaSet"))
    errs.extend(_validate_deployment_strategy(spec.get("strategy") or {}, "spec.strategy"))
    errs.extend(nonnegative(spec, "minReadySeconds", "spec"))
    if spec.get("revisionHistoryLimit") is not None:
        errs.extend(nonnegative(spec, "revisionHistoryLimit", "spec"))
    if spec.get("rollbackTo") is not None:
        errs.extend(
            meta.validate_nonnegative(
                (spec["rollbackTo"] or {}).get("revision", 0), "spec.rollback.version"
            )
        )
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errs.extend(nonnegative(spec, "progressDeadlineSeconds", "spec"))
        if deadline <= (spec.get("minReadySeconds") or 0):
            errs.append(
                invalid(
                    "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
                )
            )
    errs.extend(selector_immutable(obj, old))
    return errs


def _deployment_status(obj: dict, old: dict) -> list[FieldError]:
    status = obj.get("status") or {}
    keys = (
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    )
    if status.get("collisionCount") is not None:
        keys += ("collisionCount",)
    pairs = (
        ("updatedReplicas", "replicas", _GREATER),
        ("readyReplicas", "replicas", _GREATER),
        ("availableReplicas", "replicas", _GREATER),
        ("availableReplicas", "readyReplicas", "cannot be greater than readyReplicas"),
    )
    return validate_counts(status, "status", keys, pairs) + collision_count(
        status, old.get("status") or {}
    )


# -- ControllerRevision (apps/v1) ------------------------------------------------------------


@validator("apps/v1", "ControllerRevision")
def validate_controller_revision(
    obj: dict, old: dict | None, subresource: str = ""
) -> list[FieldError]:
    errs = validate_meta(obj, old)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    errs.extend(meta.validate_nonnegative(obj.get("revision", 0), "revision"))
    if old is not None and obj.get("data") != old.get("data"):
        errs.append(
            invalid("data", meta.GoLiteral("runtime.RawExtension{...}"), meta.FIELD_IMMUTABLE)
        )
    return errs


# Registered here so that importing this module brings in every workload kind.
from kubi.api.kinds import daemonset, statefulset  # noqa: F401
