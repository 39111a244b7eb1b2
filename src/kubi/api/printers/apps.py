"""Table printers for the `apps` group.

Deployments and StatefulSets summarise readiness as `ready/desired`;
ReplicaSets show desired, current and ready replicas as integers. The wide
columns list the template's containers and images and the selector, which
ReplicaSets print with `<none>` when empty but Deployments leave blank, as
upstream does. ControllerRevisions name their controller as
`kind.group/name` in lower case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubi.api.printers._common import (
    AGE,
    NAME,
    NONE,
    Column,
    Obj,
    Printer,
    age,
    container_cells,
    format_label_selector,
    int_field,
    items,
    metadata,
    name_of,
    section,
    selector_string,
    template_containers,
    wide,
)

_CONTAINERS = wide("Containers", "Names of the containers in the pod template.")
_IMAGES = wide("Images", "Images of the containers in the pod template.")
_SELECTOR = wide("Selector", "Label query over the pods this object manages.")


def _deployment_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = section(obj, "spec"), section(obj, "status")
    names, images = container_cells(template_containers(obj))
    selector = selector_string(section(spec, "selector"))
    return [
        name_of(obj),
        f"{int_field(status, 'readyReplicas')}/{int_field(spec, 'replicas', 1)}",
        int_field(status, "updatedReplicas"),
        int_field(status, "availableReplicas"),
        age(obj, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


def _replicaset_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = section(obj, "spec"), section(obj, "status")
    names, images = container_cells(template_containers(obj))
    return [
        name_of(obj),
        int_field(spec, "replicas", 1),
        int_field(status, "replicas"),
        int_field(status, "readyReplicas"),
        age(obj, now),
        names,
        images,
        format_label_selector(section(spec, "selector")),
    ]


def _statefulset_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = section(obj, "spec"), section(obj, "status")
    names, images = container_cells(template_containers(obj))
    return [
        name_of(obj),
        f"{int_field(status, 'readyReplicas')}/{int_field(spec, 'replicas', 1)}",
        age(obj, now),
        names,
        images,
    ]


def controller_name(obj: Obj) -> str:
    """The managing controller as `kind.group/name`, `<none>` without one."""
    for ref in items(metadata(obj), "ownerReferences"):
        if ref.get("controller") is not True:
            continue
        api_version = ref.get("apiVersion") or ""
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        kind = ref.get("kind") or ""
        name = ref.get("name") or ""
        if not kind and not group:
            return name
        qualified = f"{kind}.{group}" if group else kind
        return f"{qualified.lower()}/{name}"
    return NONE


def _controllerrevision_cells(obj: Obj, now: datetime) -> list[Any]:
    return [name_of(obj), controller_name(obj), int_field(obj, "revision"), age(obj, now)]


PRINTERS: dict[tuple[str, str], Printer] = {
    ("apps", "deployments"): Printer(
        (
            NAME,
            Column("Ready", description="Ready replicas out of desired replicas."),
            Column("Up-to-date", description="Replicas running the latest pod template."),
            Column("Available", description="Replicas available to serve."),
            AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _deployment_cells,
    ),
    ("apps", "replicasets"): Printer(
        (
            NAME,
            Column("Desired", "integer", "Requested number of replicas."),
            Column("Current", "integer", "Number of replicas that exist."),
            Column("Ready", "integer", "Number of ready replicas."),
            AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _replicaset_cells,
    ),
    ("apps", "statefulsets"): Printer(
        (
            NAME,
            Column("Ready", description="Ready replicas out of desired replicas."),
            AGE,
            _CONTAINERS,
            _IMAGES,
        ),
        _statefulset_cells,
    ),
    ("apps", "controllerrevisions"): Printer(
        (
            NAME,
            Column("Controller", description="The object that owns this revision."),
            Column("Revision", description="Revision number of the captured state."),
            AGE,
        ),
        _controllerrevision_cells,
    ),
}
