"""Validation shared by every kind: labels, annotations, ObjectMeta and label
selectors, with Kubernetes' exact messages.

The name and value format checks (`is_qualified_name`, `dns1123_subdomain`, ...)
live in `names` and are re-exported here, so kinds need only this module.
`validate_object_meta` and `validate_object_meta_update` assume that the generic
layer has already generated the name and carried over the system fields (uid,
creationTimestamp, generation, deletion fields) from the stored object.
`GoLiteral` and the `go_*` helpers render bad values the way Go's `%#v` shows
them in upstream's messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubi.api.errors import FieldError, forbidden, invalid, required, too_long
from kubi.api.kinds.names import (  # noqa: F401  (re-exported: part of this module's API)
    DNS1123_LABEL_MAX,
    DNS1123_SUBDOMAIN_MAX,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    empty_error,
    inclusive_range_error,
    is_c_identifier,
    is_config_map_key,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_dns1123_subdomain_with_underscore,
    is_env_var_name,
    is_http_header_name,
    is_in_range,
    is_qualified_name,
    is_strict_env_var_name,
    is_valid_label_value,
    is_valid_percent,
    is_valid_port_name,
    is_valid_port_num,
    max_len_error,
    path_segment_name,
    regex_error,
)

NameFn = Callable[[str, bool], list[str]]

FIELD_IMMUTABLE = "field is immutable"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


# -- ObjectMeta ---------------------------------------------------------------------


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, value in (labels or {}).items():
        errs.extend(invalid(path, key, m) for m in is_qualified_name(key))
        errs.extend(invalid(path, value, m) for m in is_valid_label_value(str(value)))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    total = 0
    for key, value in (annotations or {}).items():
        # Annotation keys are case-insensitive qualified names.
        errs.extend(invalid(path, key, m) for m in is_qualified_name(key.lower()))
        total += len(key.encode()) + len(str(value).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs or []:
        api_version = ref.get("apiVersion", "") or ""
        version = api_version.rsplit("/", 1)[-1] if api_version.count("/") <= 1 else ""
        kind = ref.get("kind", "") or ""
        if not version:
            errs.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid(f"{path}.kind", kind, "must not be empty"))
        if not ref.get("name"):
            errs.append(invalid(f"{path}.name", ref.get("name", ""), "must not be empty"))
        if not ref.get("uid"):
            errs.append(invalid(f"{path}.uid", ref.get("uid", ""), "must not be empty"))
        if api_version == "v1" and kind == "Event":
            errs.append(invalid(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name', '')}"
            if first_controller:
                errs.append(
                    invalid(
                        path,
                        refs,
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names = list(finalizers or [])
    for name in names:
        errs.extend(invalid(path, name, m) for m in is_qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(
            invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set")
        )
    return errs


STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def validate_kube_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    """Built-in kinds also require unprefixed finalizers to be one of the standard ones."""
    errs: list[FieldError] = []
    for i, name in enumerate(finalizers or []):
        ipath = f"{path}[{i}]"
        errs.extend(invalid(ipath, name, m) for m in is_qualified_name(name))
        if "/" not in name and name not in STANDARD_FINALIZERS:
            errs.append(
                invalid(
                    ipath,
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return errs


def validate_nonnegative(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, (int, float)) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def validate_object_meta(
    meta: dict,
    *,
    namespaced: bool,
    name_fn: NameFn,
    path: str = "metadata",
    builtin: bool = True,
) -> list[FieldError]:
    """ObjectMeta on create: name (or generateName), namespace, labels and friends.

    `builtin` adds the extra finalizer-name rule that Kubernetes' own kinds have
    (custom resources go without it).
    """
    errs: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs.extend(
            invalid(f"{path}.generateName", generate_name, m) for m in name_fn(generate_name, True)
        )
    name = meta.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in name_fn(name, False))
    errs.extend(_validate_meta_common(meta, namespaced=namespaced, path=path))
    if builtin:
        errs.extend(validate_kube_finalizers(meta.get("finalizers"), f"{path}.finalizers"))
    return errs


def _validate_meta_common(meta: dict, *, namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(required(f"{path}.namespace"))
        else:
            errs.extend(
                invalid(f"{path}.namespace", namespace, m) for m in dns1123_label(namespace)
            )
    elif namespace:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    errs.extend(validate_nonnegative(meta.get("generation"), f"{path}.generation"))
    errs.extend(_validate_meta_maps(meta, path))
    return errs


def _validate_meta_maps(meta: dict, path: str) -> list[FieldError]:
    return [
        *validate_labels(meta.get("labels"), f"{path}.labels"),
        *validate_annotations(meta.get("annotations"), f"{path}.annotations"),
        *validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"),
        *validate_finalizers(meta.get("finalizers"), f"{path}.finalizers"),
    ]


def validate_object_meta_update(
    new: dict, old: dict, path: str = "metadata", *, builtin: bool = True
) -> list[FieldError]:
    """ObjectMeta on update: identity is immutable, and a deleting object gains no finalizers."""
    errs: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
        if added:
            shown = "[]string{" + ", ".join(f'"{f}"' for f in added) + "}"
            errs.append(
                forbidden(
                    f"{path}.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {shown}",
                )
            )
    for key in ("name", "namespace"):
        if (new.get(key) or "") != (old.get(key) or ""):
            errs.append(invalid(f"{path}.{key}", new.get(key) or "", FIELD_IMMUTABLE))
    # An update that leaves uid out keeps the stored one (upstream fills it in).
    if new.get("uid") and new.get("uid") != old.get("uid"):
        errs.append(invalid(f"{path}.uid", new["uid"], FIELD_IMMUTABLE))
    errs.extend(_validate_meta_maps(new, path))
    if builtin:
        errs.extend(validate_kube_finalizers(new.get("finalizers"), f"{path}.finalizers"))
    return errs


class GoLiteral:
    """A bad value already rendered the way Go's `%#v` prints it (structs, nil maps)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"GoLiteral({self.text!r})"


def go_string_map(value: Any) -> str:
    """A map[string]string as `%#v` shows it, including the nil map."""
    if value is None:
        return "map[string]string(nil)"
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(value.items()))
    return "map[string]string{" + inner + "}"


def _go_string_slice(values: Any) -> str:
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def _go_requirement(expr: dict) -> str:
    key, op = expr.get("key", ""), expr.get("operator", "")
    values = _go_string_slice(expr.get("values"))
    return f'v1.LabelSelectorRequirement{{Key:"{key}", Operator:"{op}", Values:{values}}}'


def go_label_selector(sel: Any) -> GoLiteral:
    """A metav1.LabelSelector as `%#v` prints it in upstream's messages."""
    sel = sel or {}
    exprs = sel.get("matchExpressions")
    if exprs is None:
        shown = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = ", ".join(_go_requirement(e) for e in exprs)
        shown = "[]v1.LabelSelectorRequirement{" + items + "}"
    return GoLiteral(
        f"v1.LabelSelector{{MatchLabels:{go_string_map(sel.get('matchLabels'))}, "
        f"MatchExpressions:{shown}}}"
    )


def immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    """`<path>: Invalid value: <new>: field is immutable` when the values differ."""
    return [] if new == old else [invalid(path, new, FIELD_IMMUTABLE)]


# -- label selectors -------------------------------------------------------------


def validate_label_selector(sel: Any, path: str) -> list[FieldError]:
    """A metav1.LabelSelector: matchLabels and matchExpressions (operators, values)."""
    if not sel:
        return []
    errs = validate_labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        epath = f"{path}.matchExpressions[{i}]"
        op = expr.get("operator", "")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(
                    required(
                        f"{epath}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    forbidden(
                        f"{epath}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errs.append(invalid(f"{epath}.operator", op, "not a valid selector operator"))
        key = expr.get("key", "")
        errs.extend(invalid(f"{epath}.key", key, m) for m in is_qualified_name(key))
        for j, value in enumerate(values):
            errs.extend(
                invalid(f"{epath}.values[{j}]", value, m) for m in is_valid_label_value(value)
            )
    return errs


def selector_matches(sel: dict | None, labels: dict | None) -> bool:
    """Whether a metav1.LabelSelector selects an object with these labels.

    An empty selector matches everything, as upstream's LabelSelectorAsSelector
    makes it; callers that want "empty matches nothing" check for that first.
    """
    labels = labels or {}
    sel = sel or {}
    for key, value in (sel.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in sel.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
