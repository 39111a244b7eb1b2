"""The `host` runtime: pods as Linux namespaces, containers as node processes.

`HostRuntime` (runtime.py) is the asyncio side the agent calls. The process
side is synchronous: a fork server (launcher.py) starts each pod's
namespace holder (holder.py), which stays as the pod's shim (podshim.py)
and starts and serves its containers (shim.py, container.py); holders keep
running when the agent restarts. The process side must not import asyncio,
so `HostRuntime` is loaded lazily.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HostRuntime"]


def __getattr__(name: str) -> Any:
    if name == "HostRuntime":
        from kubi.node.runtime.host.runtime import HostRuntime
        return HostRuntime
    raise AttributeError(name)
