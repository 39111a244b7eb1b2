"""Per-kind behaviour that the generic REST layer calls: defaulting, preparing
and validation, registered by kind.

Upstream gives each resource a "strategy"; kubi keeps the generic parts (uid,
resourceVersion, generation, status/spec separation) in the API server and lets
each kind register only what is its own:

- a defaulter mutates a decoded object in place (it runs on every write, and on
  nested templates through the kind's own code);
- a preparer sets server-owned fields on create (e.g. a new Pod's
  `status.phase: Pending`) and may look at the old object on update;
- a validator returns the list of FieldErrors for an object, given the old
  object on update (None on create), and `subresource` ("" or "status").

Kinds register at import time of their module; `load()` imports them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from kubi.api.errors import FieldError

Defaulter = Callable[[dict], None]
Preparer = Callable[[dict, "dict | None"], None]
Validator = Callable[[dict, "dict | None", str], list[FieldError]]

_defaulters: dict[tuple[str, str], list[Defaulter]] = {}
_preparers: dict[tuple[str, str], list[Preparer]] = {}
_validators: dict[tuple[str, str], list[Validator]] = {}

# The modules that register kind behaviour; imported once by load().
_MODULES = (
    "kubi.api.kinds",
)


def defaulter(api_version: str, kind: str) -> Callable[[Defaulter], Defaulter]:
    def register(fn: Defaulter) -> Defaulter:
        _defaulters.setdefault((api_version, kind), []).append(fn)
        return fn

    return register


def preparer(api_version: str, kind: str) -> Callable[[Preparer], Preparer]:
    def register(fn: Preparer) -> Preparer:
        _preparers.setdefault((api_version, kind), []).append(fn)
        return fn

    return register


def validator(api_version: str, kind: str) -> Callable[[Validator], Validator]:
    def register(fn: Validator) -> Validator:
        _validators.setdefault((api_version, kind), []).append(fn)
        return fn

    return register


def apply_defaults(obj: dict) -> None:
    for fn in _defaulters.get((obj.get("apiVersion", ""), obj.get("kind", "")), ()):
        fn(obj)


def prepare(obj: dict, old: dict | None) -> None:
    for fn in _preparers.get((obj.get("apiVersion", ""), obj.get("kind", "")), ()):
        fn(obj, old)


def validate(obj: dict, old: dict | None, subresource: str = "") -> list[FieldError]:
    errors: list[FieldError] = []
    for fn in _validators.get((obj.get("apiVersion", ""), obj.get("kind", "")), ()):
        errors.extend(fn(obj, old, subresource))
    return errors


_loaded = False


def load() -> None:
    global _loaded
    if _loaded:
        return
    for name in _MODULES:
        importlib.import_module(name)
    _loaded = True
