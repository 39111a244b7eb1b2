"""The names of kubi's admission plugins, in upstream's order: what
`--disable-admission-plugins` accepts (the plugins are in admission.py; this
module stays free of imports so the command line can read it cheaply)."""

from __future__ import annotations

from collections.abc import Iterable

PRIORITY = "Priority"
SERVICE_ACCOUNT = "ServiceAccount"
DEFAULT_TOLERATION_SECONDS = "DefaultTolerationSeconds"
PLUGINS = (PRIORITY, SERVICE_ACCOUNT, DEFAULT_TOLERATION_SECONDS)


def unknown_plugins(names: Iterable[str]) -> list[str]:
    return [name for name in names if name not in PLUGINS]
