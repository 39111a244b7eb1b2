"""managedFields entries: decoding, encoding, identities and the cap on updaters.

An object's `metadata.managedFields` is decoded into a dict keyed by manager
identity: (manager, operation, apiVersion, subresource), where an applier's
identity leaves the apiVersion out so that it stays one entry across versions.
Encoding sorts entries as upstream does (operation, time, manager, apiVersion,
subresource) and writes each entry's fields in the order of the Go struct,
leaving out empty ones. Updaters beyond ten are folded, oldest first, into one
`ancient-changes` entry per apiVersion.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from kubi.api.managed.fieldset import FieldsError, Tree, from_wire, to_wire, union
from kubi.api.managed.typed import go_json, go_quote

APPLY = "Apply"
UPDATE = "Update"
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"

Ident = tuple[str, str, str, str]  # manager, operation, apiVersion ("" for Apply), subresource


class ManagedFieldsError(ValueError):
    """managedFields that cannot be decoded."""


@dataclass(slots=True)
class Entry:
    api_version: str
    applied: bool
    fields: Tree
    time: str | None = None
    # The fieldsV1 document of `fields` when it is already known to be in
    # upstream's serialization order (decoded from what this server stored),
    # so encoding it again is not needed.
    wire: Tree | None = None


def ident(manager: str, operation: str, api_version: str, subresource: str = "") -> Ident:
    return (manager, operation, "" if operation == APPLY else api_version, subresource)


def identifier_json(key: Ident) -> str:
    """The identity as upstream spells it (the order in which it sorts managers)."""
    manager, operation, api_version, subresource = key
    parts = []
    if manager:
        parts.append('"manager":' + go_json(manager))
    parts.append('"operation":' + go_json(operation))
    if api_version:
        parts.append('"apiVersion":' + go_json(api_version))
    if subresource:
        parts.append('"subresource":' + go_json(subresource))
    return "{" + ",".join(parts) + "}"


def label(key: Ident) -> str:
    """How conflict messages name a manager: `"kubectl-edit" using apps/v1`."""
    manager, operation, api_version, subresource = key
    text = go_quote(manager)
    if subresource:
        text += f" with subresource {go_quote(subresource)}"
    if operation == UPDATE:
        text += f" using {api_version}"
    return text


# ---- wire form -----------------------------------------------------------------------

_UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
_seconds_cache: dict[str, int] = {}


def _normal_time(value: Any) -> str | None:
    if not value or type(value) is not str:
        return None
    if _UTC_SECONDS.match(value):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def time_seconds(value: str | None) -> int:
    if not value:
        return 0
    found = _seconds_cache.get(value)
    if found is None:
        try:
            found = int(dt.datetime.fromisoformat(value).timestamp())
        except ValueError:
            found = 0
        if len(_seconds_cache) > 1024:
            _seconds_cache.clear()
        _seconds_cache[value] = found
    return found


def decode(raw: Any, *, stored: bool = False) -> dict[Ident, Entry]:
    """The entries of a managedFields list; ManagedFieldsError when malformed.

    `stored` says the list is one this server encoded (a live object's): its
    field sets are canonical and ordered already, so they are taken as they
    are, without the validating walk, and encode to themselves."""
    managed: dict[Ident, Entry] = {}
    if not raw:
        return managed
    if stored and type(raw) is list:
        for item in raw:
            fields = item.get("fieldsV1") or {}
            operation = item.get("operation")
            api_version = item.get("apiVersion") or ""
            key = ident(item.get("manager") or "", operation, api_version,
                        item.get("subresource") or "")
            managed[key] = Entry(api_version, operation == APPLY, fields,
                                 _normal_time(item.get("time")), fields)
        return managed
    if type(raw) is not list:
        raise ManagedFieldsError("managedFields must be a list")
    for index, item in enumerate(raw):
        if type(item) is not dict:
            raise ManagedFieldsError(f"managed fields entry {index} must be an object")
        operation = item.get("operation")
        if operation != APPLY and operation != UPDATE:
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        api_version = item.get("apiVersion")
        if not api_version or type(api_version) is not str:
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = item.get("fieldsType")
        if not fields_type:
            raise ManagedFieldsError(f"missing fieldsType in managed fields entry {index}")
        if fields_type != "FieldsV1":
            raise ManagedFieldsError(
                f"invalid fieldsType {go_quote(str(fields_type))} in managed fields entry {index}"
            )
        try:
            fields = from_wire(item.get("fieldsV1"))
        except FieldsError as exc:
            raise ManagedFieldsError(f"error decoding set: {exc}") from None
        manager = item.get("manager") or ""
        subresource = item.get("subresource") or ""
        if type(manager) is not str or type(subresource) is not str:
            raise ManagedFieldsError("manager and subresource must be strings")
        key = ident(manager, operation, api_version, subresource)
        managed[key] = Entry(
            api_version, operation == APPLY, fields, _normal_time(item.get("time"))
        )
    return managed


def encode(managed: dict[Ident, Entry]) -> list[dict[str, Any]]:
    """The managedFields list, sorted as upstream sorts it; [] when nothing is managed."""
    rows = []
    for key, entry in managed.items():
        manager, _, _, subresource = key
        operation = APPLY if entry.applied else UPDATE
        rows.append(
            (
                (operation, time_seconds(entry.time), manager, entry.api_version, subresource),
                key,
                entry,
            )
        )
    rows.sort(key=lambda row: row[0])
    out = []
    for (operation, _, manager, api_version, subresource), _, entry in rows:
        item: dict[str, Any] = {}
        if manager:
            item["manager"] = manager
        item["operation"] = operation
        item["apiVersion"] = api_version
        if entry.time:
            item["time"] = entry.time
        item["fieldsType"] = "FieldsV1"
        item["fieldsV1"] = entry.wire if entry.wire is not None else to_wire(entry.fields)
        if subresource:
            item["subresource"] = subresource
        out.append(item)
    return out


def cap_update_managers(managed: dict[Ident, Entry], limit: int = MAX_UPDATE_MANAGERS) -> None:
    """Fold the oldest updaters into `ancient-changes` entries until at most `limit` remain."""
    updaters = [key for key, entry in managed.items() if not entry.applied]
    if len(updaters) <= limit:
        return
    updaters.sort(key=lambda k: (time_seconds(managed[k].time), identifier_json(k)))
    first_of_version: dict[str, Ident] = {}
    count = len(updaters)
    for key in updaters:
        if count <= limit:
            break
        entry = managed[key]
        version = entry.api_version
        bucket = ident(ANCIENT_CHANGES, UPDATE, version)
        first = first_of_version.get(version)
        if first is None or key == bucket:
            first_of_version.setdefault(version, key)
            continue
        if bucket not in managed:
            # The version's oldest entry becomes the bucket.
            moved = managed.pop(first)
            managed[bucket] = Entry(version, False, moved.fields, moved.time)
        held = managed[bucket]
        managed[bucket] = Entry(version, False, union(entry.fields, held.fields), entry.time)
        del managed[key]
        count -= 1
