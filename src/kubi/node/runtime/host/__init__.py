"""The `host` runtime: pods as Linux namespaces, containers as node processes.

`HostRuntime` (runtime.py) is the asyncio side the agent calls. The process
side is synchronous and lives in a separate fork server (launcher.py) that
starts each pod's namespace holder (holder.py) and each container's shim
(shim.py, container.py); those keep running when the agent restarts. The
process side must not import asyncio, so `HostRuntime` is loaded lazily.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HostRuntime"]


def __getattr__(name: str) -> Any:
    if name == "HostRuntime":
        from kubi.node.runtime.host.runtime import HostRuntime
        return HostRuntime
    raise AttributeError(name)
