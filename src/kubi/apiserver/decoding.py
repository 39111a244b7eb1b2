"""Request bodies to objects: JSON, YAML and Kubernetes protobuf, then the
schema checks every write body gets (unknown fields per `fieldValidation`,
wrong types), with upstream's error texts.

A body that cannot be decoded is a 400 BadRequest, never a 500: this is the
one place where client bytes become dicts.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from kubi.api import schema
from kubi.api.catalog import ResourceType
from kubi.api.errors import BadRequest, UnsupportedMediaType
from kubi.api.kinds._shared import go_json_syntax_error

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader  # type: ignore[misc]


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """YAML as Kubernetes reads it: timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header; none means JSON, as kubectl's
    `scale --current-replicas` sends a PUT without one."""
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower()


def load_yaml(text: bytes | str) -> object:
    return yaml.load(text, Loader=_Loader)


def _unrecognized(kind: str, problem: str, body: bytes) -> BadRequest:
    """Upstream's wording for a body it cannot decode, with a summary of the body."""
    if body[:1] == b"{":
        summary = body[:30].decode("utf-8", "replace")
    else:
        summary = body[:30].hex()
    if len(body) > 30:
        summary += " ..."
    return BadRequest(f"the object provided is unrecognized (must be of type {kind}): "
                      f"{problem} ({summary})")


def decode_body(content_type: str | None, body: bytes, kind: str = "") -> dict:
    mt = media_type(content_type)
    if not body:
        raise BadRequest("the request body is empty")
    if mt in (JSON, "*/*", "application/merge-patch+json"):
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            problem = go_json_syntax_error(body.decode("utf-8", "replace")) or "invalid JSON"
            raise _unrecognized(kind, f"couldn't get version/kind; json parse error: {problem}",
                                body) from None
    elif mt in (YAML, "application/x-yaml", "text/yaml"):
        try:
            obj = load_yaml(body)
        except yaml.YAMLError as exc:
            raise _unrecognized(kind, f"error converting YAML to JSON: {_yaml_problem(exc)}",
                                body) from None
    elif mt == PROTOBUF:
        from kubi.api import protobuf

        try:
            obj = protobuf.decode_object(body)
        except ValueError as exc:
            raise BadRequest(f"unable to decode protobuf body: {exc}") from None
    else:
        raise UnsupportedMediaType(mt)
    if not isinstance(obj, dict):
        raise BadRequest("Object 'Kind' is missing in the request body: it is not an object")
    return obj


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"yaml: line {mark.line + 1}: {problem}"
    return f"yaml: {problem}"


def check_fields(
    rt: ResourceType, obj: dict, field_validation: str, warnings: list[str],
    only: frozenset[str] | None = None, within: dict[str, frozenset[str]] | None = None,
) -> None:
    """Apply the schema to a decoded write body, in place.

    Wrong types are always a 400. Unknown fields are a 400 under Strict, a
    warning under Warn and silently dropped under Ignore; they are never stored.
    Empty optional maps and lists are dropped, as upstream's decoding does.
    With `only`, the top-level fields outside it are skipped: they are known
    to be as stored, so they passed these checks already; `within` narrows a
    top-level map further, to the fields it names.
    """
    node = schema.for_kind(rt.group, rt.version, rt.kind)
    if node is None:
        return
    if only is not None:
        checked = [k for k in obj if k in only or k in ("apiVersion", "kind")]
        parts = {k: names for k, names in (within or {}).items()
                 if k in checked and type(obj[k]) is dict}
        view = {k: ({n: obj[k][n] for n in obj[k] if n in parts[k]} if k in parts else obj[k])
                for k in checked}
        _check_fields(rt, node, view, field_validation, warnings)
        for key in checked:
            if key in parts:
                whole, part = obj[key], view.get(key) or {}
                for name in parts[key]:
                    if name in part:
                        whole[name] = part[name]
                    else:
                        whole.pop(name, None)  # dropped as empty or unknown
            elif key in view:
                obj[key] = view[key]
            else:
                del obj[key]  # dropped as empty or unknown
        return
    _check_fields(rt, node, obj, field_validation, warnings)


def _check_fields(rt: ResourceType, node: Any, obj: dict, field_validation: str,
                  warnings: list[str]) -> None:
    problem = schema.check_types(node, obj)
    if problem:
        raise BadRequest(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {problem}'
        )
    schema.drop_empty_collections(node, obj)
    unknown = schema.find_unknown_fields(node, obj)
    if not unknown:
        return
    if field_validation == "Strict":
        listed = ", ".join(f'unknown field "{path}"' for path in unknown)
        raise BadRequest(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
            f"strict decoding error: {listed}"
        )
    if field_validation == "Warn":
        warnings.extend(f'unknown field "{path}"' for path in unknown)
    schema.prune_unknown(node, obj)


def field_validation_mode(value: str | None) -> str:
    if not value:
        # Upstream's default for a request that does not say is Warn.
        return "Warn"
    for mode in ("Strict", "Warn", "Ignore"):
        if value.lower() == mode.lower():
            return mode
    raise BadRequest(
        f"fieldValidation parameter unsupported: {value}; supported values: Ignore, Warn, Strict"
    )


def default_field_manager(user_agent: str) -> str:
    """Upstream names an anonymous manager after the client: the User-Agent up to '/'."""
    prefix = (user_agent or "").split("/", 1)[0].strip()
    return prefix[:128] if prefix else "unknown"
