"""Pod addresses from the node's podCIDR, kept in a file of the network's state.

The first host address is the bridge's (the pods' gateway); pods get the
others, each owned by a sandbox id. Like CNI's host-local plugin, allocation
continues after the last address handed out, so a freed address is not
reused at once (a peer may still hold it in a cache). One `Ipam` owns its
file: the allocations live in memory, read from the file once, and every
change is written back (atomically) before the address is handed out, so a
restarted agent finds every allocation it made. The file is small and sits
on the network's tmpfs (podnetwork.py), so writing it costs microseconds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from pathlib import Path

import orjson

from kubi.node.runtime.host.state import replace_file


class AddressesExhausted(Exception):
    pass


def gateway_address(cidr: str) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address + 1)


def next_free(cidr: str, taken: set[str], last: str | None) -> str:
    """The first free pod address after `last`, wrapping around the range."""
    net = ipaddress.ip_network(cidr, strict=False)
    first = int(net.network_address) + 2
    final = int(net.broadcast_address) - 1
    if final < first:
        raise AddressesExhausted(f"{cidr} has no room for pods")
    start = first
    if last is not None:
        previous = int(ipaddress.ip_address(last))
        if first <= previous <= final:
            start = previous + 1
    size = final - first + 1
    for offset in range(size):
        candidate = first + (start - first + offset) % size
        text = str(ipaddress.ip_address(candidate))
        if text not in taken:
            return text
    raise AddressesExhausted(f"no free address left in {cidr}")


class Ipam:
    """The node's pod addresses: kept in memory, every change written through
    to the file before it is used, so a restarted agent finds each one."""

    def __init__(self, path: Path, cidr: str) -> None:
        self.path = path
        self.cidr = str(ipaddress.ip_network(cidr, strict=False))
        self._allocations: dict[str, str] | None = None
        self._last: str | None = None

    def _loaded(self) -> dict[str, str]:
        if self._allocations is None:
            try:
                data = json.loads(self.path.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                data = {}
            self._allocations = dict(data.get("allocations") or {})
            self._last = data.get("last")
        return self._allocations

    def _save(self) -> None:
        data = orjson.dumps({"allocations": self._allocations, "last": self._last})
        try:
            replace_file(self.path, data)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(self.path, data)

    def allocate(self, owner: str) -> str:
        """The owner's address, allocating one on the first call."""
        allocations = self._loaded()
        if owner in allocations:
            return allocations[owner]
        address = next_free(self.cidr, set(allocations.values()), self._last)
        allocations[owner] = self._last = address
        self._save()
        return address

    def release(self, owner: str) -> str | None:
        released = self._loaded().pop(owner, None)
        if released is not None:
            self._save()
        return released

    def allocations(self) -> dict[str, str]:
        return dict(self._loaded())

    def remove(self) -> None:
        """Forget every allocation and delete the file."""
        self._allocations, self._last = None, None
        for path in (self.path, Path(f"{self.path}.tmp")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
