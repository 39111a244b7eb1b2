"""Who a write is recorded as, and the checks on `fieldManager` and managedFields.

A request that names no `fieldManager` is recorded under its User-Agent's
product token (`kubectl/v1.33.0 (linux/amd64) ...` becomes `kubectl`), with
unprintable characters dropped and the result cut to 128 bytes. Apply requests
must name their manager. The same length and character rules apply to the
`manager` of each managedFields entry a client writes directly.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import FieldError, Invalid, forbidden, invalid, required, too_long

FIELD_MANAGER_MAX_LENGTH = 128
MAX_SUBRESOURCE_NAME_LENGTH = 256


def default_manager(user_agent: str) -> str:
    """The manager name for a request without `fieldManager` (upstream's prefixFromUserAgent)."""
    prefix = user_agent.split("/", 1)[0]
    out = []
    size = 0
    for ch in prefix:
        if not ch.isprintable():
            continue
        width = len(ch.encode("utf-8", "surrogatepass"))
        if size + width > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += width
    return "".join(out)


def manager_or_user_agent(field_manager: str | None, user_agent: str) -> str:
    return field_manager if field_manager else default_manager(user_agent)


def field_manager_errors(field_manager: str, path: str = "fieldManager") -> list[FieldError]:
    errors: list[FieldError] = []
    if len(field_manager.encode("utf-8", "surrogatepass")) > FIELD_MANAGER_MAX_LENGTH:
        errors.append(too_long(path, "", FIELD_MANAGER_MAX_LENGTH))
    position = 0
    for ch in field_manager:
        if not ch.isprintable():
            errors.append(
                invalid(
                    path,
                    field_manager,
                    f"invalid character U+{ord(ch):04X} (at position {position})",
                )
            )
        position += len(ch.encode("utf-8", "surrogatepass"))
    return errors


def validate_field_manager(
    field_manager: str | None,
    *,
    apply: bool = False,
    force: bool | None = None,
    options_kind: str = "PatchOptions",
) -> None:
    """Raise upstream's 422 for bad write options: `PatchOptions.meta.k8s.io "" is invalid`.

    `apply` makes the manager mandatory; `force` given on a non-apply patch is
    refused. `options_kind` is CreateOptions/UpdateOptions/PatchOptions.
    """
    errors: list[FieldError] = []
    if options_kind == "PatchOptions":
        if apply:
            if not field_manager:
                errors.append(required("fieldManager", "is required for apply patch"))
        elif force is not None:
            errors.append(forbidden("force", "may not be specified for non-apply patch"))
    errors.extend(field_manager_errors(field_manager or ""))
    if errors:
        raise Invalid(options_kind, "", errors, "meta.k8s.io")


def validate_managed_fields(entries: Any, path: str = "metadata.managedFields") -> list[FieldError]:
    """The checks ObjectMeta validation runs on managedFields a client sent."""
    errors: list[FieldError] = []
    if not isinstance(entries, list):
        return errors
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        where = f"{path}[{index}]"
        operation = entry.get("operation")
        if operation not in ("Apply", "Update"):
            errors.append(
                invalid(f"{where}.operation", operation or "", "must be `Apply` or `Update`")
            )
        fields_type = entry.get("fieldsType")
        if fields_type and fields_type != "FieldsV1":
            errors.append(invalid(f"{where}.fieldsType", fields_type, "must be `FieldsV1`"))
        errors.extend(field_manager_errors(str(entry.get("manager") or ""), f"{where}.manager"))
        subresource = str(entry.get("subresource") or "")
        if len(subresource) > MAX_SUBRESOURCE_NAME_LENGTH:
            errors.append(too_long(f"{where}.subresource", "", MAX_SUBRESOURCE_NAME_LENGTH))
    return errors
