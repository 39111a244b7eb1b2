"""Which fields each kind exposes to field selectors, and their values.

Two upstream tables are mirrored apart because they disagree: the labels a kind
accepts (its registered conversion function, else only `metadata.name` and
`metadata.namespace`, each refusing in its own words), and the values its
registry computes as a flat string map (`spec.hostNetwork` is `"true"`). A label
accepted but absent from the map reads as "", like upstream's `status.podIPs`;
apps/v1 ReplicaSets compute `status.replicas` but do not accept it, as in v1.33.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubi.api.errors import go_quote

_META = ("metadata.name", "metadata.namespace")
_NOT_SUPPORTED = "field label not supported: {label}"

# (group, kind) -> (accepted labels, refusal message).
_LABELS: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("", "Pod"): (
        frozenset(
            {
                *_META,
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
                "spec.host",  # older clients' name for spec.nodeName
            }
        ),
        _NOT_SUPPORTED,
    ),
    ("", "Node"): (frozenset({"metadata.name", "spec.unschedulable"}), _NOT_SUPPORTED),
    ("", "ReplicationController"): (frozenset({*_META, "status.replicas"}), _NOT_SUPPORTED),
    ("", "Event"): (
        frozenset(
            {
                *_META,
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            }
        ),
        _NOT_SUPPORTED,
    ),
    ("", "Namespace"): (frozenset({"metadata.name", "status.phase"}), _NOT_SUPPORTED),
    ("", "Secret"): (frozenset({*_META, "type"}), _NOT_SUPPORTED),
    ("", "Service"): (frozenset({*_META, "spec.clusterIP", "spec.type"}), _NOT_SUPPORTED),
    ("batch", "Job"): (
        frozenset({*_META, "status.successful"}),
        "field label {quoted} not supported for batchv1.Job",
    ),
    ("certificates.k8s.io", "CertificateSigningRequest"): (
        frozenset({"metadata.name", "spec.signerName"}),
        _NOT_SUPPORTED,
    ),
    ("events.k8s.io", "Event"): (
        frozenset(
            {
                *_META,
                "reason",
                "type",
                "reportingController",
                "regarding.kind",
                "regarding.namespace",
                "regarding.name",
                "regarding.uid",
                "regarding.apiVersion",
                "regarding.resourceVersion",
                "regarding.fieldPath",
            }
        ),
        _NOT_SUPPORTED,
    ),
}
_DEFAULT = (
    frozenset(_META),
    '{quoted} is not a known field selector: only "metadata.name", "metadata.namespace"',
)


def supported_fields(group: str, kind: str) -> frozenset[str]:
    """The field labels the API server accepts in a field selector for this kind."""
    return _LABELS.get((group, kind), _DEFAULT)[0]


def field_label_error(group: str, kind: str, label: str) -> str | None:
    """Upstream's 400 message for a field label this kind does not accept, else None."""
    accepted, message = _LABELS.get((group, kind), _DEFAULT)
    if label in accepted:
        return None
    return message.format(label=label, quoted=go_quote(label))


def field_set(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The flat field map a field selector is matched against."""
    meta = obj.get("metadata") or {}
    fields = {
        "metadata.name": str(meta.get("name") or ""),
        "metadata.namespace": str(meta.get("namespace") or ""),
    }
    extra = _ATTRIBUTES.get((group, kind))
    if extra is not None:
        fields.update(extra(obj))
    return fields


def _get(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _text(obj: Mapping[str, Any], path: str) -> str:
    value = _get(obj, path)
    return "" if value is None else str(value)


def _flag(obj: Mapping[str, Any], path: str) -> str:
    return "true" if _get(obj, path) is True else "false"


def _count(obj: Mapping[str, Any], path: str) -> str:
    value = _get(obj, path)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def _pod(obj: Mapping[str, Any]) -> dict[str, str]:
    # Upstream reads the first of podIPs; converting a v1 pod fills podIPs from
    # podIP when only the latter is set.
    pod_ips = _get(obj, "status.podIPs") or []
    first = pod_ips[0].get("ip", "") if pod_ips and isinstance(pod_ips[0], Mapping) else ""
    node_name = _text(obj, "spec.nodeName")
    return {
        "spec.nodeName": node_name,
        "spec.host": node_name,
        "spec.restartPolicy": _text(obj, "spec.restartPolicy"),
        "spec.schedulerName": _text(obj, "spec.schedulerName"),
        "spec.serviceAccountName": _text(obj, "spec.serviceAccountName"),
        "spec.hostNetwork": _flag(obj, "spec.hostNetwork"),
        "status.phase": _text(obj, "status.phase"),
        "status.podIP": str(first or _text(obj, "status.podIP")),
        "status.nominatedNodeName": _text(obj, "status.nominatedNodeName"),
    }


_REFERENCE_FIELDS = (
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
)


def _core_event(obj: Mapping[str, Any]) -> dict[str, str]:
    reference = obj.get("involvedObject") or obj.get("regarding") or {}
    fields = {f"involvedObject.{f}": str(reference.get(f) or "") for f in _REFERENCE_FIELDS}
    controller = str(obj.get("reportingComponent") or obj.get("reportingController") or "")
    source = _text(obj, "source.component") or _text(obj, "deprecatedSource.component")
    fields.update(
        {
            "reason": _text(obj, "reason"),
            "reportingComponent": controller,
            "source": source or controller,
            "type": _text(obj, "type"),
        }
    )
    return fields


def _events_event(obj: Mapping[str, Any]) -> dict[str, str]:
    # events.k8s.io names the same attributes after its own fields.
    core = _core_event(obj)
    fields = {f"regarding.{f}": core[f"involvedObject.{f}"] for f in _REFERENCE_FIELDS}
    fields.update(
        {
            "reason": core["reason"],
            "reportingController": core["reportingComponent"],
            "type": core["type"],
        }
    )
    return fields


_ATTRIBUTES: dict[tuple[str, str], Callable[[Mapping[str, Any]], dict[str, str]]] = {
    ("", "Pod"): _pod,
    ("", "Event"): _core_event,
    ("events.k8s.io", "Event"): _events_event,
    ("", "Namespace"): lambda o: {"status.phase": _text(o, "status.phase")},
    ("", "Node"): lambda o: {"spec.unschedulable": _flag(o, "spec.unschedulable")},
    ("", "ReplicationController"): lambda o: {"status.replicas": _count(o, "status.replicas")},
    ("apps", "ReplicaSet"): lambda o: {"status.replicas": _count(o, "status.replicas")},
    ("", "Secret"): lambda o: {"type": _text(o, "type")},
    ("", "Service"): lambda o: {
        "spec.clusterIP": _text(o, "spec.clusterIP"),
        "spec.type": _text(o, "spec.type"),
    },
    ("batch", "Job"): lambda o: {"status.successful": _count(o, "status.succeeded")},
    ("certificates.k8s.io", "CertificateSigningRequest"): lambda o: {
        "spec.signerName": _text(o, "spec.signerName")
    },
}
