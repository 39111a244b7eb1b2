"""Pod addresses from the node's podCIDR, kept in a file under the data dir.

The first host address is the bridge's (the pods' gateway); pods get the
others, each owned by a sandbox id. Like CNI's host-local plugin, allocation
continues after the last address handed out, so a freed address is not
reused at once (a peer may still hold it in a cache). The JSON file is read
and rewritten under an exclusive flock, so several processes on one node
cannot hand out the same address, and a restarted agent finds every
allocation it made.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
    def __init__(self, path: Path, cidr: str) -> None:
        self.path = path
        self.cidr = str(ipaddress.ip_network(cidr, strict=False))
        self._lock_fd: int | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The file's data under an exclusive lock; write back by setting `dirty`."""
        if self._lock_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                    0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            data = self._load()
            yield data
            if data.pop("dirty", False):
                tmp = f"{self.path}.tmp"
                with open(tmp, "w") as f:
                    f.write(json.dumps(data))
                os.replace(tmp, self.path)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            data = {}
        data.setdefault("allocations", {})
        data.setdefault("last", None)
        return data

    def allocate(self, owner: str) -> str:
        """The owner's address, allocating one on the first call."""
        with self._locked() as data:
            allocations: dict[str, str] = data["allocations"]
            if owner in allocations:
                return allocations[owner]
            address = next_free(self.cidr, set(allocations.values()), data["last"])
            allocations[owner] = address
            data.update(last=address, dirty=True)
            return address

    def release(self, owner: str) -> str | None:
        with self._locked() as data:
            released: str | None = data["allocations"].pop(owner, None)
            data["dirty"] = released is not None
            return released

    def allocations(self) -> dict[str, str]:
        with self._locked() as data:
            return dict(data["allocations"])

    def remove(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        for path in (self.path, Path(f"{self.path}.lock")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
